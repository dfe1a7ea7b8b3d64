import { aad, Keyring, openJson, sealJson } from '../crypto/seal.js';
import { openChunks, pieces, sealChunks } from '../crypto/seal-stream.js';
import { deriveSearchKey, indexEntry, IndexPrefix } from '../imap/search/blind-index.js';
import { Content } from '../imap/search/text.js';
import { buildMessageMeta } from '../mime/meta.js';
import { readOnce } from './blobs.js';
import { MetaCache, type MessageRef } from './meta-cache.js';
import type { MessageMeta } from '../mime/types.js';
import type { AppendedMessage, FolderRow, MailboxRow, MessageRow, Store, StoreTx } from './types.js';

/**
 * Seals and opens message content with the owning mailbox's data key. Every reader and writer of message
 * bodies and header-derived data goes through here, so nothing readable reaches the store.
 */
export class SealedMail {
  readonly #metas: MetaCache;

  constructor(
    readonly store: Store,
    private readonly keyring: Keyring,
    /** Memory for opened metadata (`MetaCache`); 0: none kept. */
    options: { metaCacheBytes?: number } = {},
  ) {
    this.#metas = new MetaCache(options.metaCacheBytes ?? 0);
  }

  key(mailbox: MailboxRow): Buffer {
    return this.keyring.mailboxKey(mailbox.address, mailbox.wrappedKey);
  }

  /** The key of the mailbox's SEARCH blind index (docs/decisions/0010-search-blind-index.md). */
  searchKey(mailbox: MailboxRow): Buffer {
    return deriveSearchKey(this.key(mailbox));
  }

  sealMeta(mailbox: MailboxRow, meta: MessageMeta): Buffer {
    return sealJson(this.key(mailbox), meta, aad.messageMeta(mailbox.id));
  }

  /** The metadata of a message row; a whole row (`MessageRef`) is kept for the next time (treat it as read-only). */
  openMeta(mailbox: MailboxRow, row: Pick<MessageRow, 'sealedMeta'> & Partial<MessageRef>): MessageMeta {
    const ref = isRef(row) ? row : null;
    const cached = ref ? this.#metas.get(mailbox.id, ref) : undefined;
    if (cached) return cached;
    const meta = openJson<MessageMeta>(this.key(mailbox), row.sealedMeta, aad.messageMeta(mailbox.id));
    if (ref) this.#metas.set(mailbox.id, ref, meta, row.sealedMeta.length);
    return meta;
  }

  /** The metadata of a message already opened and still kept, without reading its row. */
  cachedMeta(mailbox: MailboxRow, message: MessageRef): MessageMeta | undefined {
    return this.#metas.get(mailbox.id, message);
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
   * segment, never whole, and the message's entry in the SEARCH blind index is written with it. A message given
   * as a stream needs its `meta` (built from the headers beforehand), and a unit of work that may run again must
   * pass a fresh stream each run (a spent one is refused). The caller publishes the `exists` event after the commit.
   */
  async append(
    tx: StoreTx,
    mailbox: MailboxRow,
    /** The folder's row, or its exact name when the caller has not read it (INBOX at delivery). */
    folder: Pick<FolderRow, 'id'> | string,
    raw: Buffer | AsyncIterable<Buffer>,
    options: { flags?: string[]; internalDate?: number; meta?: MessageMeta } = {},
  ): Promise<AppendedMessage & { folderId: number }> {
    let meta = options.meta;
    if (!meta) {
      if (!Buffer.isBuffer(raw)) throw new Error('a message appended as a stream needs its meta');
      meta = buildMessageMeta(raw);
    }
    const target = typeof folder === 'string' ? folder : folder.id;
    const message = { sealedMeta: this.sealMeta(mailbox, meta), flags: options.flags ?? [], internalDate: options.internalDate ?? Date.now() };
    if (Buffer.isBuffer(raw)) {
      // Size known up front: blob and row in one step (one round trip on PostgreSQL for most messages).
      const sealed = sealChunks(this.key(mailbox), aad.blob(mailbox.id), pieces(raw));
      const search = indexEntry(this.searchKey(mailbox), new Content(raw), meta.mime);
      return tx.appendMessageWithBody(mailbox.id, target, sealed, { ...message, size: raw.length }, search);
    }
    let size = 0;
    const prefix = new IndexPrefix();
    const counted = async function* (source: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
      readOnce(source);
      for await (const chunk of source) {
        size += chunk.length;
        prefix.add(chunk);
        yield chunk;
      }
    };
    const folderId = typeof target === 'number' ? target : (await tx.getFolder(mailbox.id, target))?.id;
    if (folderId === undefined) throw new Error(`mailbox ${mailbox.id} has no folder ${target}`);
    const blobId = await tx.insertBlob(mailbox.id, sealChunks(this.key(mailbox), aad.blob(mailbox.id), counted(raw)));
    const appended = await tx.appendMessage(folderId, { ...message, blobId, size });
    await tx.indexMessage(appended.id, indexEntry(this.searchKey(mailbox), new Content(prefix.bytes()), meta.mime, prefix.complete));
    return { ...appended, folderId };
  }
}

function isRef(row: Partial<MessageRef>): row is MessageRef {
  return row.id !== undefined && row.folderId !== undefined && row.uid !== undefined && row.internalDate !== undefined;
}
