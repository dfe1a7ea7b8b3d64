import type { StoreReads } from '../store/types.js';
import { formatUidSet, type SeqRange } from './sequence.js';
import { atom, untagged } from './serializer.js';

/**
 * VANISHED responses (RFC 7162 §3.2.10): expunged messages named by UID, which replace `* n EXPUNGE` once
 * QRESYNC is enabled. `(EARLIER)` reports messages the client may still hold from an earlier session (SELECT
 * with QRESYNC, UID FETCH … VANISHED); it does not change the message count.
 */

/** UIDs per VANISHED line, so a line stays short whatever the gaps between them. */
const PER_LINE = 1000;
/** Tombstones read from the store at a time. */
const PAGE = 1000;

/** `* VANISHED [(EARLIER)] <uid-set>` lines for ascending UIDs. */
export function vanishedLines(uids: readonly number[], earlier: boolean): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < uids.length; i += PER_LINE) {
    const set = formatUidSet(uids.slice(i, i + PER_LINE));
    out.push(untagged([atom('VANISHED'), ...(earlier ? [atom('(EARLIER)')] : []), atom(set)]));
  }
  return out;
}

/** Whether a UID is in a set of UID ranges; `*` stands for every UID from its other end on. */
export function inUidSet(ranges: readonly SeqRange[], uid: number): boolean {
  return ranges.some(({ from, to }) => {
    const a = from === '*' ? Infinity : from;
    const b = to === '*' ? Infinity : to;
    return uid >= Math.min(a, b) && uid <= Math.max(a, b);
  });
}

/**
 * Sends `* VANISHED (EARLIER)` for the UIDs expunged from the folder with a MODSEQ above `sinceModseq`, within
 * `within` when given, leaving out those the session still shows (`shown`: they are reported as they leave its
 * view, without EARLIER, so the client's message count stays right). Reads and sends one page at a time.
 */
export async function sendVanishedSince(
  store: StoreReads,
  folderId: number,
  sinceModseq: number,
  within: readonly SeqRange[] | null,
  shown: (uid: number) => boolean,
  send: (data: Buffer) => Promise<void>,
): Promise<void> {
  let after = 0;
  for (;;) {
    const page = await store.listExpunged(folderId, sinceModseq, after, PAGE);
    const uids = page.filter((uid) => (!within || inUidSet(within, uid)) && !shown(uid));
    for (const line of vanishedLines(uids, true)) await send(line);
    if (page.length < PAGE) return;
    after = page[page.length - 1]!;
  }
}
