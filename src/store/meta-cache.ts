import type { MessageMeta } from '../mime/types.js';

/**
 * Opened message metadata (envelope, MIME structure), most recently used first, bounded by an estimate of the
 * memory it takes. Opening a message's metadata costs a decryption and a JSON parse; IMAP clients fetch the same
 * envelopes over and over (every resynchronisation, every sort). Metadata never changes once a message is stored,
 * so an entry is valid for the message row's whole life. Kept in process memory only, like any message a session
 * is serving (docs/decisions/0014-imap-folder-state.md).
 */
export class MetaCache {
  readonly #entries = new Map<number, { mailboxId: number; meta: MessageMeta; cost: number }>();
  #bytes = 0;

  /** `maxBytes`: the budget, estimated as three times the sealed size of each entry (0 turns the cache off). */
  constructor(readonly maxBytes: number) {}

  /** The metadata of a message of this mailbox (an entry opened with another mailbox's key is not given out). */
  get(mailboxId: number, messageId: number): MessageMeta | undefined {
    const entry = this.#entries.get(messageId);
    if (!entry || entry.mailboxId !== mailboxId) return undefined;
    this.#entries.delete(messageId);
    this.#entries.set(messageId, entry);
    return entry.meta;
  }

  set(mailboxId: number, messageId: number, meta: MessageMeta, sealedSize: number): void {
    const cost = sealedSize * 3;
    if (cost > this.maxBytes) return;
    const old = this.#entries.get(messageId);
    if (old) {
      this.#bytes -= old.cost;
      this.#entries.delete(messageId);
    }
    this.#entries.set(messageId, { mailboxId, meta, cost });
    this.#bytes += cost;
    for (const [id, entry] of this.#entries) {
      if (this.#bytes <= this.maxBytes) break;
      this.#entries.delete(id);
      this.#bytes -= entry.cost;
    }
  }

  get size(): number {
    return this.#entries.size;
  }
}
