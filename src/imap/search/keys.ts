import type { Args } from '../args.js';
import { parseSequenceSet, type SeqRange } from '../sequence.js';
import { ImapSyntaxError, type Token } from '../tokenizer.js';

/**
 * SEARCH criteria (RFC 9051 §6.4.4, RFC 3501 §6.4.4 for NEW/OLD/RECENT, RFC 7162 MODSEQ, RFC 5182 `$`,
 * RFC 5032 OLDER/YOUNGER) parsed into a tree. Pure: the evaluator and the index planner walk the tree.
 */

export type Day = number; // days since 1970-01-01 (UTC calendar date as written in the command)

export type SearchKey =
  | { k: 'all' }
  | { k: 'flag'; flag: string; set: boolean }
  /** RFC 3501: \Recent is never set here (no session sees a message first), so RECENT matches nothing. */
  | { k: 'recent'; set: boolean }
  | { k: 'header'; field: string; value: string }
  | { k: 'body'; value: string }
  | { k: 'text'; value: string }
  | { k: 'date'; of: 'internal' | 'sent'; op: 'before' | 'on' | 'since'; day: Day }
  | { k: 'age'; op: 'older' | 'younger'; seconds: number }
  | { k: 'size'; op: 'larger' | 'smaller'; n: number }
  | { k: 'modseq'; min: number }
  | { k: 'seq'; set: SeqRange[] }
  | { k: 'uid'; set: SeqRange[] }
  | { k: 'saved'; uid: boolean }
  | { k: 'not'; key: SearchKey }
  | { k: 'or'; a: SearchKey; b: SearchKey }
  | { k: 'and'; keys: SearchKey[] };

export type ReturnOption = 'MIN' | 'MAX' | 'ALL' | 'COUNT' | 'SAVE';

export interface SearchCommand {
  /** RETURN (…) given: answer with ESEARCH (RFC 4731); an empty list means ALL. */
  returns: ReturnOption[] | null;
  charset: string | null;
  key: SearchKey;
}

export const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const MAX_DEPTH = 64;
const MAX_KEYS = 1000;
export const SUPPORTED_CHARSETS = ['UTF-8', 'US-ASCII'];

const FLAG_KEYS: Record<string, { flag: string; set: boolean }> = {
  ANSWERED: { flag: '\\Answered', set: true },
  DELETED: { flag: '\\Deleted', set: true },
  DRAFT: { flag: '\\Draft', set: true },
  FLAGGED: { flag: '\\Flagged', set: true },
  SEEN: { flag: '\\Seen', set: true },
  UNANSWERED: { flag: '\\Answered', set: false },
  UNDELETED: { flag: '\\Deleted', set: false },
  UNDRAFT: { flag: '\\Draft', set: false },
  UNFLAGGED: { flag: '\\Flagged', set: false },
  UNSEEN: { flag: '\\Seen', set: false },
};
const HEADER_KEYS: Record<string, string> = { BCC: 'bcc', CC: 'cc', FROM: 'from', SUBJECT: 'subject', TO: 'to' };
const DATE_KEYS: Record<string, { of: 'internal' | 'sent'; op: 'before' | 'on' | 'since' }> = {
  BEFORE: { of: 'internal', op: 'before' },
  ON: { of: 'internal', op: 'on' },
  SINCE: { of: 'internal', op: 'since' },
  SENTBEFORE: { of: 'sent', op: 'before' },
  SENTON: { of: 'sent', op: 'on' },
  SENTSINCE: { of: 'sent', op: 'since' },
};

/** `1-Feb-1994` (RFC 9051 `date`), quoted or not, to a day number; throws on anything else. */
export function parseSearchDate(text: string): Day {
  const m = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(text);
  const month = m ? MONTHS.indexOf(m[2]!.toLowerCase()) : -1;
  if (!m || month < 0) throw new ImapSyntaxError(`Invalid date: ${text.slice(0, 20)}`);
  const day = Number(m[1]);
  const t = Date.UTC(Number(m[3]), month, day);
  if (new Date(t).getUTCDate() !== day) throw new ImapSyntaxError(`Invalid date: ${text.slice(0, 20)}`);
  return Math.floor(t / 86_400_000);
}

function number(text: string, what: string, max = 0xffffffff): number {
  if (!/^\d{1,20}$/.test(text) || Number(text) > max) throw new ImapSyntaxError(`Invalid ${what}`);
  return Number(text);
}

/** A reader over a flat token list (nested lists are handled by recursion). */
class KeyReader {
  #i = 0;
  constructor(
    private readonly tokens: readonly Token[],
    /** Shared by the readers of nested lists: keys parsed in the whole command. */
    readonly budget = { keys: 0 },
  ) {}

  get done(): boolean {
    return this.#i >= this.tokens.length;
  }

  next(what: string): Token {
    const t = this.tokens[this.#i++];
    if (!t) throw new ImapSyntaxError(`Missing ${what}`);
    return t;
  }

  atom(what: string): string {
    const t = this.next(what);
    if (t.type !== 'atom' || t.section) throw new ImapSyntaxError(`Expected ${what}`);
    return t.value;
  }

  astring(what: string): string {
    const t = this.next(what);
    if (t.type === 'string') return t.value.toString('utf8');
    if (t.type === 'atom' && !t.section) return t.value;
    throw new ImapSyntaxError(`Expected ${what}`);
  }
}

function parseKey(r: KeyReader, depth: number): SearchKey {
  if (depth > MAX_DEPTH) throw new ImapSyntaxError('Search criteria nested too deeply');
  if (++r.budget.keys > MAX_KEYS) throw new ImapSyntaxError('Too many search criteria');
  const t = r.next('search key');
  if (t.type === 'list') {
    if (t.items.length === 0) throw new ImapSyntaxError('Empty search key list');
    return and(parseKeys(new KeyReader(t.items, r.budget), depth + 1));
  }
  if (t.type !== 'atom' || t.section) throw new ImapSyntaxError('Expected a search key');
  const word = t.value.toUpperCase();
  const flag = FLAG_KEYS[word];
  if (flag) return { k: 'flag', ...flag };
  const header = HEADER_KEYS[word];
  if (header) return { k: 'header', field: header, value: r.astring(`${word} value`) };
  const date = DATE_KEYS[word];
  if (date) return { k: 'date', ...date, day: parseSearchDate(r.astring('date')) };
  switch (word) {
    case 'ALL':
      return { k: 'all' };
    case 'NEW':
      return { k: 'and', keys: [{ k: 'recent', set: true }, { k: 'flag', flag: '\\Seen', set: false }] };
    case 'OLD':
      return { k: 'recent', set: false };
    case 'RECENT':
      return { k: 'recent', set: true };
    case 'KEYWORD':
    case 'UNKEYWORD':
      return { k: 'flag', flag: r.atom('keyword'), set: word === 'KEYWORD' };
    case 'HEADER': {
      const field = r.astring('header field name');
      if (!/^[\x21-\x39\x3b-\x7e]+$/.test(field)) throw new ImapSyntaxError('Invalid header field name');
      return { k: 'header', field: field.toLowerCase(), value: r.astring('header value') };
    }
    case 'BODY':
      return { k: 'body', value: r.astring('BODY value') };
    case 'TEXT':
      return { k: 'text', value: r.astring('TEXT value') };
    case 'LARGER':
    case 'SMALLER':
      return { k: 'size', op: word === 'LARGER' ? 'larger' : 'smaller', n: number(r.atom('size'), 'size') };
    case 'OLDER':
    case 'YOUNGER':
      return { k: 'age', op: word === 'OLDER' ? 'older' : 'younger', seconds: number(r.atom('interval'), 'interval') };
    case 'UID': {
      const set = r.atom('UID set');
      return set === '$' ? { k: 'saved', uid: true } : { k: 'uid', set: parseSequenceSet(set) };
    }
    case 'MODSEQ': {
      // MODSEQ [entry-name entry-type-req] mod-sequence-valzer (RFC 7162 §3.1.5); the entry is ignored.
      let value = r.next('mod-sequence value');
      if (value.type === 'string') {
        r.atom('entry type');
        value = r.next('mod-sequence value');
      }
      if (value.type !== 'atom') throw new ImapSyntaxError('Expected a mod-sequence value');
      return { k: 'modseq', min: number(value.value, 'mod-sequence value', Number.MAX_SAFE_INTEGER) };
    }
    case 'NOT':
      return { k: 'not', key: parseKey(r, depth + 1) };
    case 'OR': {
      const a = parseKey(r, depth + 1);
      return { k: 'or', a, b: parseKey(r, depth + 1) };
    }
    case '$':
      return { k: 'saved', uid: false };
    default:
      if (/^[\d*]/.test(word)) return { k: 'seq', set: parseSequenceSet(t.value) };
      throw new ImapSyntaxError(`Unknown search key: ${t.value.slice(0, 30)}`);
  }
}

function parseKeys(r: KeyReader, depth: number): SearchKey[] {
  const keys: SearchKey[] = [];
  while (!r.done) keys.push(parseKey(r, depth));
  return keys;
}

function and(keys: SearchKey[]): SearchKey {
  return keys.length === 1 ? keys[0]! : { k: 'and', keys };
}

/**
 * `[RETURN (options)] [CHARSET name] key…` (RFC 9051 §6.4.4). The charset is checked by the command (an
 * unsupported one is answered `NO [BADCHARSET (UTF-8 US-ASCII)]`, not BAD).
 */
export function parseSearch(args: Args): SearchCommand {
  const tokens: Token[] = [];
  while (args.remaining > 0) tokens.push(args.token('search key'));
  let i = 0;
  let returns: ReturnOption[] | null = null;
  let charset: string | null = null;
  const word = (t: Token | undefined) => (t?.type === 'atom' && !t.section ? t.value.toUpperCase() : null);
  if (word(tokens[i]) === 'RETURN') {
    const list = tokens[i + 1];
    if (list?.type !== 'list') throw new ImapSyntaxError('RETURN needs a list of options');
    returns = [];
    for (const o of list.items) {
      const name = word(o);
      if (name !== 'MIN' && name !== 'MAX' && name !== 'ALL' && name !== 'COUNT' && name !== 'SAVE') {
        throw new ImapSyntaxError('Unknown RETURN option');
      }
      if (!returns.includes(name)) returns.push(name);
    }
    i += 2;
  }
  if (word(tokens[i]) === 'CHARSET') {
    const t = tokens[i + 1];
    const name = t?.type === 'string' ? t.value.toString('utf8') : word(t);
    if (!name) throw new ImapSyntaxError('CHARSET needs a name');
    charset = name.toUpperCase();
    i += 2;
  }
  return { returns, charset, key: parseSearchKeys(tokens.slice(i)) };
}

/** Search keys (implicitly ANDed) from their tokens, for SEARCH, SORT and THREAD. */
export function parseSearchKeys(tokens: readonly Token[]): SearchKey {
  if (tokens.length === 0) throw new ImapSyntaxError('Missing search criteria');
  return and(parseKeys(new KeyReader(tokens), 0));
}

/** The mandatory charset argument of SORT and THREAD (RFC 5256), upper-cased. */
export function charsetArgument(t: Token | undefined): string {
  const name = t?.type === 'string' ? t.value.toString('utf8') : t?.type === 'atom' && !t.section ? t.value : null;
  if (!name) throw new ImapSyntaxError('Missing charset');
  return name.toUpperCase();
}
