import type { MimeNode } from '../../mime/types.js';
import { hasFlag } from '../flags.js';
import { resolveSequenceNumbers, resolveUids } from '../sequence.js';
import { SEARCH_HEADER_NAMES } from '../../mime/types.js';
import { MONTHS, type Day, type SearchKey } from './keys.js';
import { Content, fold } from './text.js';

/**
 * Applies a SEARCH tree to messages. Keys on what the store keeps in clear (flags, sizes, dates, UIDs,
 * MODSEQs) are decided without opening anything; keys on the header fields the metadata keeps (From, To, Cc,
 * Bcc, Subject, Date) from the metadata; other keys on headers or text open the message (unless the blind
 * index rules it out, `SearchContext.mayMatch`). All match as RFC 9051 §6.4.4 says: a case-insensitive substring
 * of the field or text, after decoding encoded words, transfer encodings and charsets (src/imap/search/text.ts).
 */

/** What the evaluator reads of a message's clear state (a `MessageSummary` is one). */
export interface SearchMessage {
  uid: number;
  flags: string[];
  size: number;
  internalDate: number; // ms since epoch
  modseq: number;
}

export interface SearchContext {
  /** All UIDs of the folder, ascending (index + 1 = sequence number). */
  uids: readonly number[];
  /** UIDs saved by `SEARCH RETURN (SAVE)` (RFC 5182), for `$`. */
  saved: ReadonlySet<number>;
  now: number;
  /**
   * For each header or text key the blind index could narrow (src/imap/search/candidates.ts), the UIDs it cannot
   * rule out; a key absent here may match any message. A message outside the set does not match the key, so it
   * is decided without being opened.
   */
  mayMatch?: ReadonlyMap<SearchKey, ReadonlySet<number>>;
}

/** The decrypted message, for content keys. */
export type OpenMessage = () => Promise<Buffer>;

const DAY_MS = 86_400_000;

/** Whether the tree needs message content (the caller then opens candidates). */
export function needsContent(key: SearchKey): boolean {
  switch (key.k) {
    case 'header':
    case 'body':
    case 'text':
      return true;
    case 'date':
      return key.of === 'sent';
    case 'not':
      return needsContent(key.key);
    case 'or':
      return needsContent(key.a) || needsContent(key.b);
    case 'and':
      return key.keys.some(needsContent);
    default:
      return false;
  }
}

/**
 * Whether metadata alone can decide every content key of the tree: header keys on the fields the metadata keeps
 * (`SEARCH_HEADER_NAMES`) and the sent date, besides the clear columns. A message whose metadata lacks a field (a
 * value longer than the limit) is still opened.
 */
export function metaDecides(key: SearchKey): boolean {
  switch (key.k) {
    case 'header':
      return (SEARCH_HEADER_NAMES as readonly string[]).includes(key.field);
    case 'body':
    case 'text':
      return false;
    case 'not':
      return metaDecides(key.key);
    case 'or':
      return metaDecides(key.a) && metaDecides(key.b);
    case 'and':
      return key.keys.every(metaDecides);
    default:
      return true;
  }
}

/** Whether the tree has a MODSEQ criterion (the response then carries `(MODSEQ n)`, RFC 7162 §3.1.5). */
export function usesModseq(key: SearchKey): boolean {
  switch (key.k) {
    case 'modseq':
      return true;
    case 'not':
      return usesModseq(key.key);
    case 'or':
      return usesModseq(key.a) || usesModseq(key.b);
    case 'and':
      return key.keys.some(usesModseq);
    default:
      return false;
  }
}

/** Sets of sequence numbers or UIDs, and folded search strings, worked out once per search, not once per message. */
class SetCache {
  readonly #sets = new Map<SearchKey, Set<number>>();
  readonly #needles = new Map<SearchKey, string>();
  constructor(private readonly ctx: SearchContext) {}

  needle(key: Extract<SearchKey, { k: 'header' | 'body' | 'text' }>): string {
    let needle = this.#needles.get(key);
    if (needle === undefined) this.#needles.set(key, (needle = fold(key.value)));
    return needle;
  }

  has(key: Extract<SearchKey, { k: 'seq' | 'uid' }>, m: SearchMessage): boolean {
    let set = this.#sets.get(key);
    if (!set) {
      const { uids } = this.ctx;
      const indexes = key.k === 'uid' ? resolveUids(key.set, uids) : (resolveSequenceNumbers(key.set, uids.length) ?? seqsWithin(key, uids.length));
      set = new Set(indexes.map((i) => uids[i]!));
      this.#sets.set(key, set);
    }
    return set.has(m.uid);
  }
}

/** In SEARCH, a sequence number beyond the mailbox selects nothing rather than failing the command. */
function seqsWithin(key: Extract<SearchKey, { k: 'seq' }>, count: number): number[] {
  const out: number[] = [];
  for (const r of key.set) {
    const a = r.from === '*' ? count : r.from;
    const b = r.to === '*' ? count : r.to;
    for (let i = Math.min(a, b); i <= Math.min(Math.max(a, b), count); i++) out.push(i - 1);
  }
  return out;
}

function dayOf(ms: number): Day {
  return Math.floor(ms / DAY_MS);
}

function compareDay(day: Day, op: 'before' | 'on' | 'since', target: Day): boolean {
  return op === 'before' ? day < target : op === 'on' ? day === target : day >= target;
}

/** What a message's metadata tells SEARCH beyond the clear columns: a few header fields, the Date header. */
export interface MetaView {
  /** Values of header fields by lower-case name (encoded words decoded), folded (`fold`); a field absent here is unknown. */
  headers: Partial<Record<string, readonly string[]>>;
  date: string | null;
}

/**
 * Decides a key from the clear columns, and from the message's metadata when given; undefined when it needs the
 * message itself.
 */
function decideMeta(key: SearchKey, m: SearchMessage, ctx: SearchContext, sets: SetCache, view: MetaView | null = null): boolean | undefined {
  switch (key.k) {
    case 'all':
      return true;
    case 'flag':
      return hasFlag(m.flags, key.flag) === key.set;
    case 'recent':
      return !key.set;
    case 'date':
      if (key.of === 'internal') return compareDay(dayOf(m.internalDate), key.op, key.day);
      return view ? decideSent(key, sentDay(view.date)) : undefined;
    case 'age': {
      const age = (ctx.now - m.internalDate) / 1000;
      return key.op === 'older' ? age >= key.seconds : age <= key.seconds;
    }
    case 'size':
      return key.op === 'larger' ? m.size > key.n : m.size < key.n;
    case 'modseq':
      return m.modseq >= key.min;
    case 'seq':
    case 'uid':
      return sets.has(key, m);
    case 'saved':
      return ctx.saved.has(m.uid);
    case 'header':
    case 'body':
    case 'text': {
      const may = ctx.mayMatch?.get(key);
      if (may !== undefined && !may.has(m.uid)) return false;
      const values = key.k === 'header' ? view?.headers[key.field] : undefined;
      if (values === undefined) return undefined;
      // As `decideContent` over the opened message: the same values, folded the same way.
      const needle = sets.needle(key);
      return values.some((v) => v.includes(needle));
    }
    case 'not': {
      const v = decideMeta(key.key, m, ctx, sets, view);
      return v === undefined ? undefined : !v;
    }
    case 'or': {
      const a = decideMeta(key.a, m, ctx, sets, view);
      if (a === true) return true;
      const b = decideMeta(key.b, m, ctx, sets, view);
      if (b === true) return true;
      return a === false && b === false ? false : undefined;
    }
    case 'and': {
      let unknown = false;
      for (const k of key.keys) {
        const v = decideMeta(k, m, ctx, sets, view);
        if (v === false) return false;
        if (v === undefined) unknown = true;
      }
      return unknown ? undefined : true;
    }
  }
}

/** `Tue, 1 Feb 1994 21:52:25 -0800` → the day as written (RFC 9051: time and zone disregarded). */
export function sentDay(date: string | null): Day | null {
  const m = date ? /(\d{1,2})\s+([A-Za-z]{3})[a-z]*\s+(\d{2,4})/.exec(date) : null;
  if (!m) return null;
  const month = MONTHS.indexOf(m[2]!.toLowerCase());
  if (month < 0) return null;
  let year = Number(m[3]);
  if (m[3]!.length === 2) year += year < 50 ? 2000 : 1900;
  return dayOf(Date.UTC(year, month, Number(m[1])));
}

function decideSent(key: Extract<SearchKey, { k: 'date' }>, sent: Day | null): boolean {
  return sent !== null && compareDay(sent, key.op, key.day);
}

function decideContent(key: SearchKey, m: SearchMessage, ctx: SearchContext, sets: SetCache, c: Content, mime: MimeNode, sent: Day | null): boolean {
  switch (key.k) {
    case 'header': {
      const needle = sets.needle(key);
      return c.headers().some((f) => f.name === key.field && f.value.includes(needle));
    }
    case 'body':
      return c.bodyText(mime).includes(sets.needle(key));
    case 'text': {
      const needle = sets.needle(key);
      return c.headerText().includes(needle) || c.bodyText(mime).includes(needle);
    }
    case 'date':
      if (key.of === 'internal') return compareDay(dayOf(m.internalDate), key.op, key.day);
      return decideSent(key, sent);
    case 'not':
      return !decideContent(key.key, m, ctx, sets, c, mime, sent);
    case 'or':
      return decideContent(key.a, m, ctx, sets, c, mime, sent) || decideContent(key.b, m, ctx, sets, c, mime, sent);
    case 'and':
      return key.keys.every((k) => decideContent(k, m, ctx, sets, c, mime, sent));
    default:
      return decideMeta(key, m, ctx, sets)!;
  }
}

export interface Opened {
  raw: Buffer;
  mime: MimeNode;
  date: string | null;
  /** The views of `raw`, when the caller built them already (to index the message it opened). */
  content?: Content;
}

/**
 * The messages matching `key`, in the order given. `view` is called only for messages the clear columns cannot
 * decide, and `open` only for those their metadata cannot decide either, one at a time; null from either (the
 * message is gone) is no match.
 */
export async function searchMessages<M extends SearchMessage>(
  key: SearchKey,
  messages: readonly M[],
  ctx: SearchContext,
  open: (m: M) => Promise<Opened | null>,
  view?: (m: M) => Promise<MetaView | null>,
): Promise<M[]> {
  const sets = new SetCache(ctx);
  const out: M[] = [];
  for (const m of messages) {
    let decided = decideMeta(key, m, ctx, sets);
    if (decided === undefined && view) {
      const v = await view(m);
      if (v === null) continue;
      decided = decideMeta(key, m, ctx, sets, v);
    }
    if (decided === true) out.push(m);
    if (decided !== undefined) continue;
    const opened = await open(m);
    if (opened && decideContent(key, m, ctx, sets, opened.content ?? new Content(opened.raw), opened.mime, sentDay(opened.date))) out.push(m);
  }
  return out;
}
