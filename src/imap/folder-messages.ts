import type { MailboxEvent, MessageSummary, Notifier, Store } from '../store/types.js';
import { hasFlag } from './flags.js';

/** What SELECT reports of a folder's messages, derived from a list once, not per SELECT. */
export interface FolderOverview {
  /** Ascending; shared by every caller: copy before changing it. */
  uids: readonly number[];
  /** The keywords (flags not starting with a backslash) some message has, in order of first use. */
  keywords: readonly string[];
  /** The index of the first message without \Seen, or -1. */
  firstUnseen: number;
}

/**
 * The clear state of a selected folder's messages (UID, MODSEQ, flags, size, internal date), kept once per
 * folder for every session of this process that has it selected, and kept current incrementally: loaded when
 * the first session selects the folder, then changed by the notifier's events (new UIDs read with
 * `listMessagesSince`, flags and expunges applied as they are announced). SELECT, SEARCH, EXPUNGE and FETCH of
 * flags read it instead of listing the folder per command.
 *
 * Changes no event announced (a command-line tool writing the database, a notification still on its way from
 * another process) are caught by the folder's HIGHESTMODSEQ: each read compares it with the highest MODSEQ this
 * state has seen and re-reads the folder when the database is ahead. An event that arrives while the folder is
 * being read is applied again once the read returns; applying an event twice changes nothing (a flag change
 * applies only over an older MODSEQ).
 */
export class FolderMessages {
  #messages: MessageSummary[] = [];
  /** The highest MODSEQ the state reflects (of the folder when it was read, or of an event since). */
  #seenModseq = 0;
  #reload = true;
  #newMail = false;
  readonly #expunged = new Set<number>();
  /** Events received while the folder is being read: applied again when it returns. */
  #replay: MailboxEvent[] | null = null;
  #refreshing: Promise<void> | null = null;
  /** Bumped by every change of the list (in place or replaced): the overview is derived again after one. */
  #version = 0;
  #overview: { version: number; value: FolderOverview } | null = null;
  /** Sessions holding this state (SharedFolders drops it at zero). */
  holders = 0;

  constructor(
    private readonly store: Store,
    readonly folderId: number,
  ) {}

  /** How many messages the state holds now. */
  get size(): number {
    return this.#messages.length;
  }

  /** Notifier listener (for the folder's mailbox). */
  onEvent(event: MailboxEvent): void {
    if (event.kind === 'resync') {
      this.#reload = true;
      return;
    }
    if (event.folderId !== this.folderId) return;
    this.#replay?.push(event);
    this.#apply(event);
  }

  #apply(event: MailboxEvent): void {
    if (event.kind === 'resync') return;
    if (event.modseq > this.#seenModseq) this.#seenModseq = event.modseq;
    if (event.kind === 'exists') this.#newMail = true;
    else if (event.kind === 'expunge') this.#expunged.add(event.uid);
    else {
      const index = indexOfUid(this.#messages, event.uid);
      const current = index >= 0 ? this.#messages[index]! : null;
      // Unknown UID: not read yet (the next read of new mail brings it as it is now) or gone.
      if (current && event.modseq > current.modseq) {
        this.#messages[index] = { ...current, flags: event.flags, modseq: event.modseq };
        this.#version++;
      }
    }
  }

  #replace(messages: MessageSummary[]): void {
    this.#messages = messages;
    this.#version++;
  }

  /** The overview of a list `list()` returned: kept while the state does not change, so a SELECT again is cheap. */
  overview(messages: readonly MessageSummary[]): FolderOverview {
    const current = messages === this.#messages;
    if (current && this.#overview?.version === this.#version) return this.#overview.value;
    const keywords = new Set<string>();
    for (const m of messages) for (const f of m.flags) if (!f.startsWith('\\')) keywords.add(f);
    const value = { uids: messages.map((m) => m.uid), keywords: [...keywords], firstUnseen: messages.findIndex((m) => !hasFlag(m.flags, '\\Seen')) };
    if (current) this.#overview = { version: this.#version, value };
    return value;
  }

  /** The folder's messages in UID order. The array is replaced, never changed in place: callers may keep it. */
  async list(): Promise<readonly MessageSummary[]> {
    const folder = await this.store.getFolderById(this.folderId);
    if (!folder) {
      this.#replace([]);
      return this.#messages;
    }
    if (folder.highestModseq > this.#seenModseq) this.#reload = true;
    // A read in flight counts as a change still to apply: it took the flags that asked for it before it returned.
    while (this.#reload || this.#newMail || this.#expunged.size > 0 || this.#refreshing) {
      await (this.#refreshing ??= this.#refresh().finally(() => (this.#refreshing = null)));
    }
    return this.#messages;
  }

  /** The message with this UID in a list `list()` returned, or null. */
  static find(messages: readonly MessageSummary[], uid: number): MessageSummary | null {
    const index = indexOfUid(messages, uid);
    return index >= 0 ? messages[index]! : null;
  }

  async #refresh(): Promise<void> {
    if (this.#reload) {
      this.#reload = false;
      this.#newMail = false;
      this.#replay = [];
      try {
        const folder = await this.store.getFolderById(this.folderId);
        const messages = await this.store.listMessages(this.folderId);
        this.#replace(messages);
        this.#seenModseq = Math.max(this.#seenModseq, folder?.highestModseq ?? 0);
        for (const event of this.#replay) this.#apply(event);
      } catch (err) {
        this.#reload = true;
        throw err;
      } finally {
        this.#replay = null;
      }
    } else if (this.#newMail) {
      this.#newMail = false;
      this.#replay = [];
      try {
        const last = this.#messages[this.#messages.length - 1]?.uid ?? 0;
        const fresh = await this.store.listMessagesSince(this.folderId, last);
        const base = this.#messages;
        const lastNow = base[base.length - 1]?.uid ?? 0;
        this.#replace(base.concat(fresh.filter((m) => m.uid > lastNow)));
        for (const event of this.#replay) if (event.kind !== 'exists') this.#apply(event);
      } catch (err) {
        this.#newMail = true;
        throw err;
      } finally {
        this.#replay = null;
      }
    }
    if (this.#expunged.size > 0) {
      const gone = this.#expunged;
      const kept = this.#messages.filter((m) => !gone.has(m.uid));
      this.#replace(kept);
      // An expunge of a UID not read yet must still apply when it is read; those below the last UID are done.
      const last = kept[kept.length - 1]?.uid ?? 0;
      for (const uid of [...gone]) if (uid <= last || !this.#newMail) gone.delete(uid);
    }
  }
}

function indexOfUid(messages: readonly MessageSummary[], uid: number): number {
  let lo = 0;
  let hi = messages.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = messages[mid]!.uid;
    if (v === uid) return mid;
    if (v < uid) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

export interface SharedFoldersOptions {
  /** How long a folder no session holds any more keeps its state (a client selecting it again, reconnecting). */
  lingerMs?: number;
  /** At most this many folders kept without a holder; the longest unused goes first. */
  maxLingering?: number;
  /** And at most this many messages in them all (memory: about 150 bytes each). */
  maxLingeringMessages?: number;
}

/**
 * The `FolderMessages` of the folders this process's sessions have selected, one per folder. A folder no
 * session holds lingers a while (bounded in time and number), so that selecting it again, as clients do on
 * every reconnection, does not list it again.
 */
export class SharedFolders {
  readonly #open = new Map<number, { state: FolderMessages; unsubscribe: () => void; timer: NodeJS.Timeout | null }>();
  /** Folders without a holder, oldest release first. */
  readonly #lingering = new Set<number>();
  readonly #lingerMs: number;
  readonly #maxLingering: number;
  readonly #maxLingeringMessages: number;

  constructor(
    private readonly store: Store,
    private readonly notifier: Notifier,
    options: SharedFoldersOptions = {},
  ) {
    this.#lingerMs = options.lingerMs ?? 60_000;
    this.#maxLingering = options.maxLingering ?? 64;
    this.#maxLingeringMessages = options.maxLingeringMessages ?? 200_000;
  }

  acquire(mailboxId: number, folderId: number): FolderMessages {
    let entry = this.#open.get(folderId);
    if (!entry) {
      const state = new FolderMessages(this.store, folderId);
      entry = { state, unsubscribe: this.notifier.subscribe(mailboxId, (event) => state.onEvent(event)), timer: null };
      this.#open.set(folderId, entry);
    }
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = null;
    this.#lingering.delete(folderId);
    entry.state.holders++;
    return entry.state;
  }

  release(state: FolderMessages): void {
    const entry = this.#open.get(state.folderId);
    if (!entry || entry.state !== state || --state.holders > 0) return;
    this.#lingering.add(state.folderId);
    entry.timer = setTimeout(() => this.#drop(state.folderId), this.#lingerMs).unref();
    const lingeringMessages = () => [...this.#lingering].reduce((n, id) => n + (this.#open.get(id)?.state.size ?? 0), 0);
    while (this.#lingering.size > this.#maxLingering || (this.#lingering.size > 0 && lingeringMessages() > this.#maxLingeringMessages)) {
      this.#drop(this.#lingering.values().next().value!);
    }
  }

  #drop(folderId: number): void {
    const entry = this.#open.get(folderId);
    if (!entry || entry.state.holders > 0) return;
    if (entry.timer) clearTimeout(entry.timer);
    entry.unsubscribe();
    this.#open.delete(folderId);
    this.#lingering.delete(folderId);
  }

  /** Drops every folder (server shutdown). */
  close(): void {
    for (const folderId of [...this.#open.keys()]) {
      const entry = this.#open.get(folderId)!;
      if (entry.timer) clearTimeout(entry.timer);
      entry.unsubscribe();
    }
    this.#open.clear();
    this.#lingering.clear();
  }

  /** How many folders have a state: held, or lingering (for tests). */
  get size(): number {
    return this.#open.size;
  }
}
