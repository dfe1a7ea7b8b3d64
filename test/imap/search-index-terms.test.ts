import { describe, expect, it } from 'vitest';
import { bloomFilter, deriveSearchKey, filterHas, indexEntry, MAX_QUERY_TERMS, needleProbes, SCOPE } from '../../src/imap/search/blind-index.js';
import { Content, fold } from '../../src/imap/search/text.js';
import { buildMessageMeta } from '../../src/mime/meta.js';

/**
 * The terms and filters of the blind index, without a store: a needle the exact evaluation finds in a text always
 * has all its probes in the text's filter (the index never hides a match), whatever case, accents, composition,
 * white space or astral characters the two hold. Keys are fixed, so every run sees the same bits.
 */

function message(subject: string, body: string): Buffer {
  return Buffer.from([`Subject: ${subject}`, 'From: a@b.test', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', body, ''].join('\r\n'));
}

/** A small deterministic generator, so a failure can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const ALPHABET = [
  ...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789',
  ...'éèêëÉÈàâÄäçÇôöÖœŒßẞİıĳ',
  'e\u0301', // e + combining acute (NFC composes it)
  'E\u0301',
  '\u0301',
  ' ',
  '\t',
  '\u00a0',
  '  ',
  '-',
  ',',
  '.',
  'µ',
  'Σ',
  'ς',
  '𝔸',
  '😀',
  'ﬁ',
];

describe('blind index terms', () => {
  const key = deriveSearchKey(Buffer.alloc(32, 7));

  it('never hides a match: every needle found by the exact rule has all its terms in the entry', () => {
    const rand = prng(20261125);
    const pick = () => ALPHABET[Math.floor(rand() * ALPHABET.length)]!;
    let checked = 0;
    for (let round = 0; round < 120; round++) {
      const body = Array.from({ length: 20 + Math.floor(rand() * 200) }, pick).join('');
      const raw = message('s', body);
      const mime = buildMessageMeta(raw).mime;
      const content = new Content(raw);
      const text = content.bodyText(mime);
      const { filter } = indexEntry(key, content, mime);
      for (let n = 0; n < 30; n++) {
        // Pieces of the original and of the folded text, some with their case flipped.
        const source = rand() < 0.5 ? body : text;
        const start = Math.floor(rand() * source.length);
        let needle = source.slice(start, start + 1 + Math.floor(rand() * 12));
        if (rand() < 0.3) needle = needle.toUpperCase();
        if (!text.includes(fold(needle))) continue;
        const probes = needleProbes(key, SCOPE.body, needle);
        if (probes === null) continue;
        checked++;
        expect(filterHas(filter, probes), `needle ${JSON.stringify(needle)} in ${JSON.stringify(body)}`).toBe(true);
      }
    }
    expect(checked).toBeGreaterThan(600);
  });

  it('finds a TEXT needle spanning a field name and its value in the header scope', () => {
    const raw = message('Compte rendu', 'corps');
    const content = new Content(raw);
    const { filter } = indexEntry(key, content, buildMessageMeta(raw).mime);
    expect(filterHas(filter, needleProbes(key, SCOPE.header, 'SUBJECT: COMPTE')!)).toBe(true);
    expect(filterHas(filter, needleProbes(key, SCOPE.subject, 'compte')!)).toBe(true);
    // Scopes are kept apart: the subject is not in the body scope.
    expect(filterHas(filter, needleProbes(key, SCOPE.body, 'compte')!)).toBe(false);
  });

  it('cannot narrow a needle shorter than a trigram once normalised', () => {
    expect(needleProbes(key, SCOPE.body, '')).toBeNull();
    expect(needleProbes(key, SCOPE.body, 'ab')).toBeNull();
    expect(needleProbes(key, SCOPE.body, 'e\u0301\u0301\u0301x')).toBeNull(); // marks vanish: "ex"
    expect(needleProbes(key, SCOPE.body, 'abc')).toHaveLength(1);
  });

  it('looks a long needle up by a bounded number of terms', () => {
    const needle = 'Le compte rendu opératoire du docteur Dupré décrit une cholécystectomie sans complication.';
    expect(needleProbes(key, SCOPE.body, needle)).toHaveLength(MAX_QUERY_TERMS);
  });

  it('keys terms per mailbox: the same text gives unrelated probes under another key', () => {
    const other = deriveSearchKey(Buffer.alloc(32, 8));
    const raw = message('Bilan', 'Bilan sanguin complet');
    const mime = buildMessageMeta(raw).mime;
    const mine = needleProbes(key, SCOPE.body, 'bilan sanguin complet')!;
    const theirs = needleProbes(other, SCOPE.body, 'bilan sanguin complet')!;
    expect(mine.filter((p) => theirs.includes(p))).toEqual([]);
    for (const p of [...mine, ...theirs]) expect(Number.isSafeInteger(p) && p >= 0 && p < 2 ** 48).toBe(true);
    // The same under the same key: entries are deterministic, and a filter has its own probes.
    const entry = indexEntry(key, new Content(raw), mime);
    expect(indexEntry(key, new Content(Buffer.from(raw)), mime).filter.equals(entry.filter)).toBe(true);
    expect(filterHas(entry.filter, mine)).toBe(true);
    expect(deriveSearchKey(Buffer.alloc(32, 1)).equals(deriveSearchKey(Buffer.alloc(32, 1)))).toBe(true);
  });

  it('sizes a filter by its terms, in 64-byte steps, about four bits a term', () => {
    expect(bloomFilter([])).toHaveLength(64);
    expect(bloomFilter(Array.from({ length: 128 }, (_, i) => i))).toHaveLength(64);
    expect(bloomFilter(Array.from({ length: 129 }, (_, i) => i))).toHaveLength(128);
    const terms = Array.from({ length: 3000 }, (_, i) => i * 7919 * 104729);
    const filter = bloomFilter(terms);
    expect(filter.length).toBe(1536);
    expect(filterHas(filter, terms)).toBe(true);
    // Bit i is 1 << (i % 8) of byte i / 8 (PostgreSQL's get_bit order).
    expect([...bloomFilter([9])].slice(0, 2)).toEqual([0, 2]);
  });
});
