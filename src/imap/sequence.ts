import { ImapSyntaxError } from './tokenizer.js';

/**
 * Sequence sets (RFC 9051 §9 `sequence-set`): `1`, `2:4`, `7:*`, `*`, comma-separated. `*` is the largest
 * number in use; ranges may be written either way round.
 */

export type SeqNumber = number | '*';
export interface SeqRange {
  from: SeqNumber;
  to: SeqNumber;
}

const MAX = 0xffffffff;

function seqNumber(text: string): SeqNumber {
  if (text === '*') return '*';
  if (!/^[1-9]\d{0,9}$/.test(text) || Number(text) > MAX) throw new ImapSyntaxError(`Invalid sequence number: ${text.slice(0, 20)}`);
  return Number(text);
}

export function parseSequenceSet(text: string): SeqRange[] {
  if (!text) throw new ImapSyntaxError('Empty sequence set');
  return text.split(',').map((part) => {
    const [a, b, extra] = part.split(':');
    if (extra !== undefined || a === undefined) throw new ImapSyntaxError('Invalid sequence set');
    const from = seqNumber(a);
    return { from, to: b === undefined ? from : seqNumber(b) };
  });
}

function bounds(range: SeqRange, star: number): [number, number] {
  const a = range.from === '*' ? star : range.from;
  const b = range.to === '*' ? star : range.to;
  return a <= b ? [a, b] : [b, a];
}

/** First index in the sorted array whose value is >= v. */
function lowerBound(sorted: readonly number[], v: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Ascending indexes, each once, of half-open intervals [from, to). Built from the intervals rather than through a
 * set and a sort of every index: `UID FETCH 1:* (FLAGS)` on 100,000 messages spent 53 ms that way.
 */
function indexesOf(intervals: [number, number][]): number[] {
  intervals.sort((x, y) => x[0] - y[0]);
  const out: number[] = [];
  let next = 0;
  for (const [from, to] of intervals) {
    for (let i = Math.max(from, next); i < to; i++) out.push(i);
    next = Math.max(next, to);
  }
  return out;
}

/**
 * Message indexes (0-based, ascending, no duplicates) selected by a set of message sequence numbers;
 * null when a number is beyond the messages in the mailbox (the command is then answered BAD).
 */
export function resolveSequenceNumbers(ranges: readonly SeqRange[], count: number): number[] | null {
  const intervals: [number, number][] = [];
  for (const range of ranges) {
    if (count === 0) return null;
    const [a, b] = bounds(range, count);
    if (b > count) return null;
    intervals.push([a - 1, b]);
  }
  return indexesOf(intervals);
}

/**
 * Message indexes selected by a set of UIDs over the sorted UID list. UIDs that do not exist are ignored,
 * and `n:*` always includes the last message (RFC 9051 §6.4.9).
 */
export function resolveUids(ranges: readonly SeqRange[], uids: readonly number[]): number[] {
  const intervals: [number, number][] = [];
  const star = uids[uids.length - 1] ?? 0;
  for (const range of ranges) {
    if (uids.length === 0) break;
    const [a, b] = bounds(range, star);
    intervals.push([lowerBound(uids, a), lowerBound(uids, b + 1)]);
    if (range.from === '*' || range.to === '*') intervals.push([uids.length - 1, uids.length]);
  }
  return indexesOf(intervals);
}

/** A UID set for response codes (COPYUID): ascending runs joined, `1:3,7`, in the order given. */
export function formatUidSet(uids: readonly number[]): string {
  const parts: string[] = [];
  let i = 0;
  while (i < uids.length) {
    const start = uids[i]!;
    let end = start;
    while (i + 1 < uids.length && uids[i + 1] === end + 1) end = uids[++i]!;
    parts.push(start === end ? String(start) : `${start}:${end}`);
    i++;
  }
  return parts.join(',');
}
