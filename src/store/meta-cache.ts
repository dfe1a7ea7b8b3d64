import type { MessageMeta } from '../mime/types.js';

/**
 * Which message an entry is for: its row id, and what tells a message from a later one given the same id (SQLite
 * gives a new row the id of a removed one when that one had the highest): its folder and UID (UIDs are never
 * reused in a folder) and its internal date.
 */
export interface MessageRef {
  id: number;
  folderId: number;
  uid: number;
  internalDate: number;
}

interface Entry extends Omit<MessageRef, 'id'> {
  mailboxId: number;
  meta: MessageMeta;
  cost: number;
}

const same = (entry: Entry, mailboxId: number, ref: MessageRef) =>
  entry.mailboxId === mailboxId && entry.folderId === ref.folderId && entry.uid === ref.uid && entry.internalDate === ref.internalDate;

/**
 * Opened message metadata (envelope, MIME structure), bounded by an estimate of the memory it takes. Opening a
 * message's metadata costs a decryption and a JSON parse; IMAP clients fetch the same envelopes over and over
 * (every resynchronisation, every sort). Metadata never changes once a message is stored, so an entry is valid
 * for the message's whole life; an entry is given out only for the message it was opened for (`MessageRef`). Kept in process memory only, like any message a session is serving
 * (docs/decisions/0014-imap-folder-state.md).
 *
 * Two generations instead of a strict LRU list: entries go into the young one, and an entry of the old one that is
 * used moves back to the young one. Only when the budget is full is anything dropped: the old generation's entries,
 * oldest first (one iterator walks it, so each is passed once), and when it is empty the young one becomes the old
 * one. A working set within the budget is thus never evicted; beyond it, what was not used for longest goes first.
 * (Turning the generations over at half the budget, as before, dropped entries of a working set between half
 * the budget and the whole of it: on the IMAP bench's mixed load, 42 MB of metadata in the 64 MB budget, a
 * 256 MB budget had given 15–23 % more commands/s.) Every operation is O(1) amortised; a strict LRU over a Map
 * (delete and insert on each hit, evict from the front) made V8 walk the holes the deletions leave at the front of
 * the table, and cost more than the hits saved.
 */
export class MetaCache {
  #young = new Map<number, Entry>();
  #old = new Map<number, Entry>();
  /** Walks the old generation in insertion order: the next entry to drop (keys deleted meanwhile are skipped). */
  #oldCursor: Iterator<number> = this.#old.keys();
  #youngBytes = 0;
  #oldBytes = 0;

  /**
   * `maxBytes`: the budget, each entry estimated at twice its sealed size plus 128 bytes (a parsed envelope and
   * structure take about 1.5 times their sealed JSON on V8's heap). 0 turns the cache off.
   */
  constructor(readonly maxBytes: number) {}

  /** The metadata of this message of this mailbox (an entry opened with another mailbox's key is not given out). */
  get(mailboxId: number, ref: MessageRef): MessageMeta | undefined {
    const young = this.#young.get(ref.id);
    if (young) return same(young, mailboxId, ref) ? young.meta : undefined;
    const old = this.#old.get(ref.id);
    if (!old || !same(old, mailboxId, ref)) return undefined;
    this.#old.delete(ref.id);
    this.#oldBytes -= old.cost;
    this.#addYoung(ref.id, old);
    return old.meta;
  }

  set(mailboxId: number, ref: MessageRef, meta: MessageMeta, sealedSize: number): void {
    const cost = sealedSize * 2 + 128;
    if (cost > this.maxBytes / 2) return;
    this.#remove(ref.id);
    this.#addYoung(ref.id, { mailboxId, folderId: ref.folderId, uid: ref.uid, internalDate: ref.internalDate, meta, cost });
  }

  get size(): number {
    return this.#young.size + this.#old.size;
  }

  /** The estimated memory held: at most `maxBytes`. */
  get bytes(): number {
    return this.#youngBytes + this.#oldBytes;
  }

  #remove(messageId: number): void {
    const young = this.#young.get(messageId);
    if (young) {
      this.#young.delete(messageId);
      this.#youngBytes -= young.cost;
    }
    const old = this.#old.get(messageId);
    if (old) {
      this.#old.delete(messageId);
      this.#oldBytes -= old.cost;
    }
  }

  #addYoung(messageId: number, entry: Entry): void {
    while (this.#youngBytes + this.#oldBytes + entry.cost > this.maxBytes) {
      if (this.#old.size === 0) {
        if (this.#young.size === 0) break; // nothing left to drop (an entry above the budget is refused by `set`)
        this.#old = this.#young;
        this.#oldBytes = this.#youngBytes;
        this.#oldCursor = this.#old.keys();
        this.#young = new Map();
        this.#youngBytes = 0;
        continue;
      }
      const next = this.#oldCursor.next();
      if (next.done) break; // unreachable: a non-empty generation has a key ahead of its cursor
      const dropped = this.#old.get(next.value);
      if (!dropped) continue; // used meanwhile (moved to the young generation) or replaced
      this.#old.delete(next.value);
      this.#oldBytes -= dropped.cost;
    }
    this.#young.set(messageId, entry);
    this.#youngBytes += entry.cost;
  }
}
