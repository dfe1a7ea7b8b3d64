/**
 * Text normalisation shared by the importer (what is stored) and the lookups (what is asked), so that both
 * sides agree: search keys are accent- and case-insensitive, header names are matched loosely.
 */

const LIGATURES: Record<string, string> = { œ: 'oe', Œ: 'oe', æ: 'ae', Æ: 'ae', ß: 'ss', ø: 'o', Ø: 'o', ł: 'l', Ł: 'l', đ: 'd', Đ: 'd' };
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** Removes accents (NFD and combining marks) and folds the ligatures above; ASCII passes untouched. */
export function stripAccents(text: string): string {
  if (PRINTABLE_ASCII.test(text)) return text;
  return text
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[œŒæÆßøØłŁđĐ]/g, (c) => LIGATURES[c] ?? c);
}

/**
 * A copy of a string that shares no memory with the string it was cut from. V8 keeps substrings of 13
 * characters or more as slices of their parent: a field split from a line of a 1 MB chunk would keep the whole
 * chunk alive for as long as a cache holds the field.
 */
export function detach(text: string): string {
  return text.length < 13 ? text : Buffer.from(text, 'utf8').toString('utf8');
}

/** Folded names, remembered: names repeat a lot in a directory file (bounded, cleared when full). */
const folded = new Map<string, string>();
const FOLD_CACHE = 20_000;

/** One name part folded for search: lower-case ASCII letters and digits, other runs of characters one space. */
function fold(text: string): string {
  let out = folded.get(text);
  if (out === undefined) {
    out = stripAccents(text)
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, ' ')
      .trim();
    if (folded.size >= FOLD_CACHE) folded.clear();
    out = detach(out);
    folded.set(detach(text), out);
  }
  return out;
}

/**
 * The search key of a name: lower-case ASCII letters and digits, every other run of characters (spaces,
 * hyphens, apostrophes) one space. "Anaïs LEBRUN-CARPENTIER" → "anais lebrun carpentier". Keys sort in byte
 * order, so a prefix search is a range scan of an index.
 */
export function searchKey(...parts: (string | null | undefined)[]): string {
  let key = '';
  for (const part of parts) {
    if (!part) continue;
    const f = fold(part);
    if (f) key = key ? `${key} ${f}` : f;
  }
  return key;
}

/** Header names compared without case, accents, apostrophe style or spacing ("Code Département" = "code departement"). */
export function headerKey(name: string): string {
  return stripAccents(name.replace(/^\uFEFF/, '').replace(/[\u2019\u02bc`´]/g, "'"))
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * A 53-bit content hash (cyrb53: two 32-bit multiplicative lanes mixed at the end) of a string, as a safe
 * integer: compares a row with its stored version without reading it back. A collision would hide one change
 * of one row (about 1 in 2^53 per changed row).
 */
export function contentHash(text: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** Separator of the fields hashed together (cannot occur in a `|`-separated line). */
export const FIELD_SEPARATOR = '\u0001';

/**
 * Hash of a record's fields in a fixed order: `contentHash` of the fields joined by `FIELD_SEPARATOR` (null as
 * U+0000), computed without building the joined string.
 */
export function hashFields(fields: readonly (string | number | boolean | null)[]): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let f = 0; f < fields.length; f++) {
    if (f > 0) {
      h1 = Math.imul(h1 ^ 1, 2654435761);
      h2 = Math.imul(h2 ^ 1, 1597334677);
    }
    const v = fields[f];
    const text = v === null ? '\u0000' : typeof v === 'string' ? v : String(v);
    for (let i = 0; i < text.length; i++) {
      const ch = text.charCodeAt(i);
      h1 = Math.imul(h1 ^ ch, 2654435761);
      h2 = Math.imul(h2 ^ ch, 1597334677);
    }
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}
