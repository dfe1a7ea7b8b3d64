import { aad, Keyring, open, openJson, seal, sealJson } from '../crypto/seal.js';
import { buildMessageMeta } from '../mime/meta.js';
import type { MessageMeta } from '../mime/types.js';
import type { AppendedMessage, FolderRow, MailboxRow, MessageRow, Store, StoreTx } from './types.js';

/**
 * Seals and opens message content with the owning mailbox's data key. Every reader and writer of message
 * bodies and header-derived data goes through here, so nothing readable reaches the store.
 */
export class SealedMail {
  constructor(
    readonly store: Store,
    private readonly keyring: Keyring,
  ) {}

  key(mailbox: MailboxRow): Buffer {
    return this.keyring.mailboxKey(mailbox.address, mailbox.wrappedKey);
  }

  sealBody(mailbox: MailboxRow, raw: Buffer): Buffer {
    return seal(this.key(mailbox), raw, aad.blob(mailbox.id));
  }

  sealMeta(mailbox: MailboxRow, meta: MessageMeta): Buffer {
    return sealJson(this.key(mailbox), meta, aad.messageMeta(mailbox.id));
  }

  openMeta(mailbox: MailboxRow, row: Pick<MessageRow, 'sealedMeta'>): MessageMeta {
    return openJson<MessageMeta>(this.key(mailbox), row.sealedMeta, aad.messageMeta(mailbox.id));
  }

  async openBody(mailbox: MailboxRow, row: Pick<MessageRow, 'blobId'>): Promise<Buffer> {
    const sealed = await this.store.getBlob(row.blobId);
    if (!sealed) throw new Error(`blob ${row.blobId} is missing`);
    return open(this.key(mailbox), sealed, aad.blob(mailbox.id));
  }

  /**
   * Seals and appends one message inside the caller's unit of work. The caller publishes the `exists`
   * event after the commit.
   */
  async append(
    tx: StoreTx,
    mailbox: MailboxRow,
    folder: FolderRow,
    raw: Buffer,
    options: { flags?: string[]; internalDate?: number; meta?: MessageMeta } = {},
  ): Promise<AppendedMessage> {
    const meta = options.meta ?? buildMessageMeta(raw);
    const blobId = await tx.insertBlob(mailbox.id, this.sealBody(mailbox, raw));
    return tx.appendMessage(folder.id, {
      blobId,
      sealedMeta: this.sealMeta(mailbox, meta),
      flags: options.flags ?? [],
      internalDate: options.internalDate ?? Date.now(),
      size: raw.length,
    });
  }
}
