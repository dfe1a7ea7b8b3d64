import { aad, Keyring, openJson, sealJson } from '../crypto/seal.js';
import { openChunks, pieces, sealChunks } from '../crypto/seal-stream.js';
import { buildMessageMeta } from '../mime/meta.js';
import { readOnce } from './blobs.js';
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

  sealMeta(mailbox: MailboxRow, meta: MessageMeta): Buffer {
    return sealJson(this.key(mailbox), meta, aad.messageMeta(mailbox.id));
  }

  openMeta(mailbox: MailboxRow, row: Pick<MessageRow, 'sealedMeta'>): MessageMeta {
    return openJson<MessageMeta>(this.key(mailbox), row.sealedMeta, aad.messageMeta(mailbox.id));
  }

  /**
   * The message, opened segment by segment as it is read from the store. Plaintext is handed out before the
   * end is authenticated: an error at the end (`SealError`, a cut or altered blob) means the whole message is
   * bad, and what was already passed on must be discarded.
   */
  async *openBodyStream(mailbox: MailboxRow, row: Pick<MessageRow, 'blobId'>): AsyncIterable<Buffer> {
    const sealed = await this.store.readBlob(row.blobId);
    if (!sealed) throw new Error(`blob ${row.blobId} is missing`);
    yield* openChunks(this.key(mailbox), aad.blob(mailbox.id), sealed);
  }

  /** The whole message, returned once every segment is authenticated (IMAP FETCH builds its reply from it). */
  async openBody(mailbox: MailboxRow, row: Pick<MessageRow, 'blobId'>): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const part of this.openBodyStream(mailbox, row)) parts.push(part);
    return Buffer.concat(parts);
  }

  /**
   * Seals and appends one message inside the caller's unit of work; the body is sealed and stored segment by
   * segment, never whole. A message given as a stream needs its `meta` (built from the headers beforehand),
   * and a unit of work that may run again must pass a fresh stream each run (a spent one is refused).
   * The caller publishes the `exists` event after the commit.
   */
  async append(
    tx: StoreTx,
    mailbox: MailboxRow,
    folder: FolderRow,
    raw: Buffer | AsyncIterable<Buffer>,
    options: { flags?: string[]; internalDate?: number; meta?: MessageMeta } = {},
  ): Promise<AppendedMessage> {
    let meta = options.meta;
    if (!meta) {
      if (!Buffer.isBuffer(raw)) throw new Error('a message appended as a stream needs its meta');
      meta = buildMessageMeta(raw);
    }
    let size = 0;
    const counted = async function* (source: Buffer | AsyncIterable<Buffer>): AsyncIterable<Buffer> {
      if (Buffer.isBuffer(source)) {
        size = source.length;
        yield* pieces(source);
        return;
      }
      readOnce(source);
      for await (const chunk of source) {
        size += chunk.length;
        yield chunk;
      }
    };
    const blobId = await tx.insertBlob(mailbox.id, sealChunks(this.key(mailbox), aad.blob(mailbox.id), counted(raw)));
    return tx.appendMessage(folder.id, {
      blobId,
      sealedMeta: this.sealMeta(mailbox, meta),
      flags: options.flags ?? [],
      internalDate: options.internalDate ?? Date.now(),
      size,
    });
  }
}
