import { createCipheriv, hkdfSync } from 'node:crypto';
import type { MimeNode } from '../../mime/types.js';
import type { SearchIndexEntry } from '../../store/types.js';
import { Content, fold } from './text.js';

/**
 * The keyed blind index of SEARCH (docs/decisions/0010-search-blind-index.md). A message's entry is a Bloom filter
 * of its keyed terms: the trigrams of the texts SEARCH matches (src/imap/search/text.ts), each normalised further
 * (accents and white space), tagged with its scope and turned into a pseudo-random 48-bit value under the
 * mailbox's search key; each value sets one bit of the filter. A needle's terms, keyed the same way, are probes:
 * a message whose filter lacks one of their bits cannot hold the needle, and is decided without being opened.
 *
 * Sound by construction: normalisation maps each code point on its own, so a needle that is a substring of a
 * folded text has all its trigrams among the text's, and their bits are set. An entry that would be too large
 * leaves its scope out (`unindexed`), and those messages stay candidates.
 */

/** What a term's text came from: one bit each, so an entry can say which scopes it left out. */
export const SCOPE = { from: 1, to: 2, cc: 4, bcc: 8, subject: 16, header: 32, body: 64 } as const;
/** Every scope: the value for a message that has no entry. */
export const ALL_SCOPES = 127;
/** Header fields with a scope of their own (SEARCH FROM, TO, CC, BCC, SUBJECT); others are found in `header`. */
const FIELD_SCOPES: Readonly<Record<string, number>> = { from: SCOPE.from, to: SCOPE.to, cc: SCOPE.cc, bcc: SCOPE.bcc, subject: SCOPE.subject };

/** At most this many terms per message (a filter of at most 8 KiB). */
export const MAX_TERMS = 16384;
/** Filter bits per term, one bit set per term: a probe hits a term that is not there with ≈ 1 − e^(−1/4) ≈ 22 %. */
export const BITS_PER_TERM = 4;
/** Filters grow in steps of this many bits (64 bytes), from one step for a message with few terms. */
const FILTER_STEP_BITS = 512;
/** A needle is looked up by at most this many of its trigrams (spread over it): bounded queries for long needles. */
export const MAX_QUERY_TERMS = 24;
/** A message appended as a stream is indexed from at most this many of its first bytes. */
export const INDEX_PREFIX_BYTES = 1 << 20;
/** A body whose text parts are larger than this is left out without being decoded (bounded work at delivery). */
export const MAX_INDEXED_TEXT_BYTES = 4 << 20;

const KEY_INFO = 'mss search-index|v1';
const FORMAT = 1;
const BLOCK = 16;
/** Code points above this one share one symbol in a trigram (rare; only more candidates, never fewer). */
const MAX_CP = 0x1ffff;
const SHIFT = MAX_CP + 1; // 2^17: three code points fit in 51 bits, an exact JS integer

const searchKeys = new WeakMap<Buffer, Buffer>();

/** The mailbox's search key: HKDF-SHA-256 of its data key (itself wrapped by the master key), another label. */
export function deriveSearchKey(dataKey: Buffer): Buffer {
  let key = searchKeys.get(dataKey);
  if (!key) {
    key = Buffer.from(hkdfSync('sha256', dataKey, Buffer.alloc(0), KEY_INFO, 32));
    searchKeys.set(dataKey, key);
  }
  return key;
}

/** Code points as the index sees them: accents dropped, white space one space; ASCII needs no lookup. */
const normalised = new Map<number, readonly number[]>();

function normalise(cp: number): readonly number[] {
  let out = normalised.get(cp);
  if (!out) {
    const ch = String.fromCodePoint(cp);
    const bare = /\s/u.test(ch) ? ' ' : ch.normalize('NFD').replace(/\p{M}/gu, '');
    out = [...bare].map((c) => Math.min(c.codePointAt(0)!, MAX_CP));
    if (normalised.size < 65536) normalised.set(cp, out);
  }
  return out;
}

/** The distinct trigrams of some texts, as integers; stops counting (overflow) past `limit`. */
export class Trigrams {
  readonly keys = new Set<number>();
  overflow = false;
  #a = -1;
  #b = -1;

  constructor(private readonly limit = Number.POSITIVE_INFINITY) {}

  /** Adds the trigrams of one folded text; windows do not span two texts. */
  add(text: string): this {
    this.#a = this.#b = -1;
    for (let i = 0; i < text.length && !this.overflow; i++) {
      let cp = text.charCodeAt(i);
      if (cp >= 0xd800 && cp < 0xdc00 && i + 1 < text.length) {
        const low = text.charCodeAt(i + 1);
        if (low >= 0xdc00 && low < 0xe000) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          i++;
        }
      }
      if (cp < 0x80) this.#push(cp === 9 || (cp >= 10 && cp <= 13) ? 0x20 : cp);
      else for (const n of normalise(cp)) this.#push(n);
    }
    return this;
  }

  #push(c: number): void {
    if (this.#a >= 0) {
      this.keys.add((this.#a * SHIFT + this.#b) * SHIFT + c);
      if (this.keys.size > this.limit) {
        this.overflow = true;
        this.keys.clear();
      }
    }
    this.#a = this.#b;
    this.#b = c;
  }
}

/** The trigrams of a message per scope, before keying; `unindexed` names the scopes that could not be taken. */
interface ContentTrigrams {
  scopes: [scope: number, keys: ReadonlySet<number>][];
  unindexed: number;
}

/** The encoded size of the text parts BODY searches (text/* leaves, in attached messages too). */
function textBytes(node: MimeNode): number {
  if (node.children.length > 0) return node.children.reduce((n, child) => n + textBytes(child), 0);
  return node.type === 'text' ? node.bodyEnd - node.bodyStart : 0;
}

/** Per message content (one Buffer delivered to several recipients): the trigrams are computed once. */
const computed = new WeakMap<Buffer, ContentTrigrams>();

/**
 * The trigrams of every scope, within MAX_TERMS: scopes in order (fields, whole header, body) while they fit;
 * one that does not is left out whole. `mime` null: the body is not available (a stream longer than the prefix).
 */
function contentTrigrams(content: Content, mime: MimeNode | null): ContentTrigrams {
  const fields = new Map<number, Trigrams>();
  for (const f of content.headers()) {
    const scope = FIELD_SCOPES[f.name];
    if (scope === undefined) continue;
    let t = fields.get(scope);
    if (!t) fields.set(scope, (t = new Trigrams(MAX_TERMS)));
    t.add(f.value);
  }
  const ordered: [number, Trigrams | null][] = [...fields.entries()].sort((a, b) => a[0] - b[0]);
  ordered.push([SCOPE.header, new Trigrams(MAX_TERMS).add(content.headerText())]);
  const body = mime && textBytes(mime) <= MAX_INDEXED_TEXT_BYTES ? mime : null;
  ordered.push([SCOPE.body, body ? new Trigrams(MAX_TERMS).add(content.bodyText(body)) : null]);
  const out: ContentTrigrams = { scopes: [], unindexed: 0 };
  let room = MAX_TERMS;
  for (const [scope, t] of ordered) {
    if (t === null || t.overflow || t.keys.size > room) {
      out.unindexed |= scope;
      continue;
    }
    room -= t.keys.size;
    out.scopes.push([scope, t.keys]);
  }
  return out;
}

/**
 * The keyed terms: AES-256 on one block per (scope, trigram), the first 48 bits of each kept. One block cipher call
 * keys a whole message (the block cipher used as a pseudo-random function on distinct, fixed-length inputs; equal
 * inputs giving equal terms is what an index needs).
 */
function keyTerms(searchKey: Buffer, scopes: readonly (readonly [number, Iterable<number>, number])[]): number[] {
  const count = scopes.reduce((n, [, , size]) => n + size, 0);
  const blocks = Buffer.alloc(count * BLOCK);
  let o = 0;
  // Byte by byte: Buffer's write methods cost more than the cipher at a few thousand terms a message.
  for (const [scope, keys] of scopes) {
    for (const k of keys) {
      const high = Math.floor(k / 0x100000000);
      const low = k >>> 0;
      blocks[o] = FORMAT;
      blocks[o + 1] = scope;
      blocks[o + 2] = high >>> 16;
      blocks[o + 3] = (high >>> 8) & 0xff;
      blocks[o + 4] = high & 0xff;
      blocks[o + 5] = low >>> 24;
      blocks[o + 6] = (low >>> 16) & 0xff;
      blocks[o + 7] = (low >>> 8) & 0xff;
      blocks[o + 8] = low & 0xff;
      o += BLOCK;
    }
  }
  const cipher = createCipheriv('aes-256-ecb', searchKey, null);
  cipher.setAutoPadding(false);
  const keyed = cipher.update(blocks);
  const terms: number[] = new Array(count);
  for (let i = 0, at = 0; i < count; i++, at += BLOCK) terms[i] = keyed.readUIntBE(at, 6);
  return terms;
}

/**
 * The Bloom filter of some terms: a whole number of 64-byte steps, BITS_PER_TERM bits a term; term p sets bit
 * `p mod bits`, that is bit `1 << (i % 8)` of byte `i / 8` (PostgreSQL's get_bit order). Its size depends on the
 * number of terms only, so the probes of a needle are the same for every message.
 */
export function bloomFilter(terms: readonly number[]): Buffer {
  const bits = Math.max(1, Math.ceil((terms.length * BITS_PER_TERM) / FILTER_STEP_BITS)) * FILTER_STEP_BITS;
  const filter = Buffer.alloc(bits / 8);
  for (const p of terms) {
    const bit = p % bits;
    filter[bit >>> 3]! |= 1 << (bit & 7);
  }
  return filter;
}

/** Whether a filter has the bit of every probe (the rule the engines apply in SQL or over rows they read). */
export function filterHas(filter: Buffer, probes: readonly number[]): boolean {
  const bits = filter.length * 8;
  for (const p of probes) {
    const bit = p % bits;
    if ((filter[bit >>> 3]! & (1 << (bit & 7))) === 0) return false;
  }
  return true;
}

/**
 * The index entry of a message. `complete` false: `raw` is only the first bytes of a longer message, so the body
 * is left out, and the headers too unless they end within those bytes.
 */
export function indexEntry(searchKey: Buffer, content: Content, mime: MimeNode, complete = true): SearchIndexEntry {
  let trigrams = computed.get(content.raw);
  if (!trigrams) {
    trigrams = complete || mime.bodyStart <= content.raw.length ? contentTrigrams(content, complete ? mime : null) : { scopes: [], unindexed: ALL_SCOPES };
    computed.set(content.raw, trigrams);
  }
  return {
    filter: bloomFilter(
      keyTerms(
        searchKey,
        trigrams.scopes.map(([scope, keys]) => [scope, keys, keys.size] as const),
      ),
    ),
    unindexed: trigrams.unindexed,
  };
}

/**
 * The probes of a needle in one scope (at most MAX_QUERY_TERMS of its keyed trigrams, spread over it), or null when
 * the needle is shorter than a trigram once normalised: the index cannot narrow such a key.
 */
export function needleProbes(searchKey: Buffer, scope: number, needle: string): number[] | null {
  // A needle cut inside a surrogate pair matches half a character of the text: only its whole characters count.
  const whole = fold(needle).replace(/^[\udc00-\udfff]/, '').replace(/[\ud800-\udbff]$/, '');
  const keys = [...new Trigrams().add(whole).keys];
  if (keys.length === 0) return null;
  const chosen =
    keys.length <= MAX_QUERY_TERMS ? keys : Array.from({ length: MAX_QUERY_TERMS }, (_, i) => keys[Math.round((i * (keys.length - 1)) / (MAX_QUERY_TERMS - 1))]!);
  return keyTerms(searchKey, [[scope, chosen, chosen.length]]);
}

/** The scopes a header or text key is looked up in (a TEXT match is in the header or in the body). */
export function keyScopes(key: { k: 'header'; field: string } | { k: 'body' } | { k: 'text' }): number[] {
  if (key.k === 'body') return [SCOPE.body];
  if (key.k === 'text') return [SCOPE.header, SCOPE.body];
  return [FIELD_SCOPES[key.field] ?? SCOPE.header];
}

/** The first bytes of a message appended as a stream, kept to index it. */
export class IndexPrefix {
  readonly #chunks: Buffer[] = [];
  #length = 0;
  complete = true;

  add(chunk: Buffer): void {
    const room = INDEX_PREFIX_BYTES - this.#length;
    if (chunk.length > room) this.complete = false;
    if (room <= 0) return;
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.#chunks.push(Buffer.from(kept));
    this.#length += kept.length;
  }

  bytes(): Buffer {
    return Buffer.concat(this.#chunks);
  }
}
