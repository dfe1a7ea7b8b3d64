import { ImapSyntaxError, type Token } from './tokenizer.js';

/** Message flags: the RFC 9051 system flags in canonical case, and keywords (atoms). */

export const SYSTEM_FLAGS = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'] as const;
export const MAX_FLAGS_PER_MESSAGE = 64;
const MAX_KEYWORD = 100;
const KEYWORD = /^[^\x00-\x20(){%*"\\\]\x7f-\uffff]+$/;

/** Validates and canonicalises one flag; `\Recent` and unknown system flags are refused. */
export function parseFlag(text: string): string {
  if (text.startsWith('\\')) {
    const known = SYSTEM_FLAGS.find((f) => f.toLowerCase() === text.toLowerCase());
    if (!known) throw new ImapSyntaxError(`Flag ${text.slice(0, 40)} can not be set`);
    return known;
  }
  if (text.length > MAX_KEYWORD || !KEYWORD.test(text)) throw new ImapSyntaxError('Invalid keyword');
  return text;
}

/** A flag list (parenthesised, or bare flags as STORE allows), canonical and without duplicates. */
export function parseFlagTokens(tokens: readonly Token[]): string[] {
  const out: string[] = [];
  for (const t of tokens) {
    if (t.type !== 'atom' || t.section) throw new ImapSyntaxError('Invalid flag');
    const flag = parseFlag(t.value);
    if (!out.some((f) => f.toLowerCase() === flag.toLowerCase())) out.push(flag);
  }
  return out;
}

export function hasFlag(flags: readonly string[], flag: string): boolean {
  const lower = flag.toLowerCase();
  return flags.some((f) => f.toLowerCase() === lower);
}

export function addFlags(current: readonly string[], add: readonly string[]): string[] {
  return [...current, ...add.filter((f) => !hasFlag(current, f))];
}

export function removeFlags(current: readonly string[], remove: readonly string[]): string[] {
  return current.filter((f) => !hasFlag(remove, f));
}

export function sameFlags(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((f) => hasFlag(b, f));
}
