import type { FolderRow, MailboxEvent } from '../store/types.js';
import type { FolderMessages } from './folder-messages.js';
import { atom, untagged } from './serializer.js';
import { vanishedLines } from './vanished.js';

/** How changes are reported: what the client enabled, and whether EXPUNGE may be sent now. */
export interface ReportMode {
  /** False during FETCH, STORE and SEARCH (sequence numbers must not move under them). */
  expungeAllowed: boolean;
  /** CONDSTORE: flag updates carry their MODSEQ (RFC 7162 §3.1.4). */
  condstore: boolean;
  /** QRESYNC: removals are reported as `* VANISHED <uids>` instead of `* n EXPUNGE` (RFC 7162 §3.2.10). */
  qresync: boolean;
}

/** The report mode for a session's enabled extensions. */
export function reportMode(enabled: ReadonlySet<string>, expungeAllowed = true): ReportMode {
  return { expungeAllowed, condstore: enabled.has('CONDSTORE'), qresync: enabled.has('QRESYNC') };
}

/**
 * The session's view of its selected folder: the UID of each message sequence number, and the changes other
 * sessions made that it has not reported yet. Changes are reported only between commands
 * (`flush`, called by the dispatcher before a tagged response), never inside a FETCH or STORE response.
 */
export class SelectedFolder {
  #exists = false;
  readonly #flags = new Map<number, { flags: string[]; modseq: number }>();
  readonly #expunged = new Set<number>();
  /** Changes may have been missed (`resync` event): re-read the folder at the next flush. */
  #resync = false;
  /** Flag changes with a MODSEQ above this one have not been reconciled by a resync yet. */
  #syncedModseq: number;
  /** The result saved by `SEARCH RETURN (SAVE)` (RFC 5182), as UIDs: `$` in later commands. */
  savedUids: ReadonlySet<number> = new Set();

  /** Ascending UIDs; index + 1 is the message sequence number. */
  #uids: readonly number[];
  /** `#uids` is the folder state's own array, shared with other sessions: copied before the first change. */
  #sharedUids = false;

  constructor(
    readonly folder: FolderRow,
    readonly readOnly: boolean,
    uids: readonly number[],
    private readonly sessionId: string,
    /** The folder's messages as this process knows them (shared with the other sessions that selected it). */
    readonly messages: FolderMessages,
  ) {
    // Read before the message list at SELECT, so at worst a change is reported twice, never missed.
    this.#syncedModseq = folder.highestModseq;
    this.#uids = uids;
  }

  /** Ascending UIDs; index + 1 is the message sequence number. */
  get uids(): readonly number[] {
    return this.#uids;
  }

  /** The UIDs at SELECT: an array shared with the folder state (and other sessions), not copied until it changes. */
  shareUids(uids: readonly number[]): void {
    this.#uids = uids;
    this.#sharedUids = true;
  }

  #ownUids(): number[] {
    if (this.#sharedUids) {
      this.#uids = this.#uids.slice();
      this.#sharedUids = false;
    }
    return this.#uids as number[];
  }

  get exists(): number {
    return this.uids.length;
  }

  /** Notifier listener: records a change to report later. */
  onEvent(event: MailboxEvent): void {
    if (event.kind === 'resync') {
      this.#resync = true;
      return;
    }
    if (event.folderId !== this.folder.id) return;
    if (event.kind === 'exists') this.#exists = true;
    else if (event.kind === 'expunge') this.#expunged.add(event.uid);
    else if (event.origin !== this.sessionId) this.#flags.set(event.uid, { flags: event.flags, modseq: event.modseq });
  }

  /** 1-based sequence number of a UID, or 0. */
  seqOf(uid: number): number {
    let lo = 0;
    let hi = this.uids.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.uids[mid]!;
      if (v === uid) return mid + 1;
      if (v < uid) lo = mid + 1;
      else hi = mid - 1;
    }
    return 0;
  }

  /**
   * This session removed these messages (EXPUNGE, MOVE, CLOSE): drops them from the view and, with `send`,
   * reports them (see `#drop`).
   */
  async removed(uids: readonly number[], send: ((data: Buffer) => Promise<void>) | null, qresync = false): Promise<void> {
    for (const uid of uids) this.#expunged.delete(uid);
    await this.#drop(uids, send, qresync);
  }

  /**
   * Drops messages from the view: each as `* n EXPUNGE`, numbered as the client counts after the previous one,
   * or with QRESYNC all together as `* VANISHED <uids>`. UIDs no longer in the view are left out.
   */
  async #drop(uids: readonly number[], send: ((data: Buffer) => Promise<void>) | null, qresync: boolean): Promise<void> {
    const gone: number[] = [];
    for (const uid of [...uids].sort((a, b) => a - b)) {
      this.#flags.delete(uid);
      const seq = this.seqOf(uid);
      if (seq === 0) continue;
      this.#ownUids().splice(seq - 1, 1);
      if (!send) continue;
      if (qresync) gone.push(uid);
      else await send(untagged([seq, atom('EXPUNGE')]));
    }
    if (send) for (const line of vanishedLines(gone, false)) await send(line);
  }

  /** Writes pending EXPUNGE or VANISHED (when allowed), EXISTS and FETCH FLAGS responses. */
  async flush(send: (data: Buffer | readonly Buffer[]) => Promise<void>, mode: ReportMode): Promise<void> {
    if (this.#resync) await this.#reconcile();
    const withModseq = mode.condstore || mode.qresync;
    if (mode.expungeAllowed && this.#expunged.size > 0) {
      const gone = [...this.#expunged];
      this.#expunged.clear();
      await this.#drop(gone, send, mode.qresync);
    }
    if (this.#exists) {
      this.#exists = false;
      const last = this.uids[this.uids.length - 1] ?? 0;
      const fresh = newUids(await this.messages.list(), last);
      if (fresh.length > 0) {
        this.#ownUids().push(...fresh);
        await send(untagged([this.uids.length, atom('EXISTS')]));
      }
    }
    if (this.#flags.size > 0) {
      const changes = [...this.#flags];
      this.#flags.clear();
      for (const [uid, { flags, modseq }] of changes.sort((a, b) => a[0] - b[0])) {
        const seq = this.seqOf(uid);
        const data = [atom('FLAGS'), flags.map(atom), atom('UID'), uid, ...(withModseq ? [atom('MODSEQ'), [modseq]] : [])];
        if (seq > 0) await send(untagged([seq, atom('FETCH'), data]));
      }
    }
  }

  /**
   * Re-reads the folder after a `resync` event and turns the differences into pending changes, reported
   * like the events they stand for: UIDs gone become expunges, messages whose MODSEQ rose since the last
   * reconciliation get their flags re-sent (harmless when unchanged), and new UIDs are picked up as EXISTS.
   */
  async #reconcile(): Promise<void> {
    this.#resync = false;
    const current = await this.messages.list();
    const present = new Set(current.map((m) => m.uid));
    for (const uid of this.uids) if (!present.has(uid)) this.#expunged.add(uid);
    let highest = this.#syncedModseq;
    for (const m of current) {
      if (m.modseq > this.#syncedModseq && this.seqOf(m.uid) > 0) this.#flags.set(m.uid, { flags: m.flags, modseq: m.modseq });
      if (m.modseq > highest) highest = m.modseq;
    }
    this.#syncedModseq = highest;
    for (const uid of this.#expunged) this.#flags.delete(uid);
    this.#exists = true;
  }
}

/** The UIDs above `last` of a list in UID order. */
function newUids(messages: readonly { uid: number }[], last: number): number[] {
  let i = messages.length;
  while (i > 0 && messages[i - 1]!.uid > last) i--;
  return messages.slice(i).map((m) => m.uid);
}
