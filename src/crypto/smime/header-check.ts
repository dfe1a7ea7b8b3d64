/**
 * Outer routing headers against the protected ones (RFC 8551 §3.1, Direct wrapping): the outer header of a
 * wrapped message is not signed, so whatever it says must agree with the signed, wrapped message, or a
 * relay could have swapped a From: or a To: under a valid signature.
 */
import { parseAddressList } from '../../mime/address.js';
import { decodeWords } from '../../mime/encoded-words.js';
import type { HeaderField } from '../../mime/headers.js';

export const DEFAULT_PROTECTED_HEADERS: readonly string[] = Object.freeze(['from', 'sender', 'reply-to', 'to', 'cc', 'date', 'message-id']);

const ADDRESS_FIELDS = new Set(['from', 'sender', 'reply-to', 'to', 'cc', 'bcc']);

function addresses(value: string): string {
  const list = parseAddressList(value) ?? [];
  return [...new Set(list.filter((a) => a.host !== null && a.mailbox !== null).map((a) => `${a.mailbox}@${a.host}`.toLowerCase()))]
    .sort()
    .join(',');
}

function normalise(name: string, value: string): string {
  if (ADDRESS_FIELDS.has(name)) return addresses(value);
  if (name === 'date') {
    const t = Date.parse(value.replace(/\([^)]*\)/g, ''));
    if (!Number.isNaN(t)) return String(t);
  }
  return decodeWords(value).replace(/\s+/g, ' ').trim();
}

/**
 * The first protected field whose outer value differs from the inner one (or appears twice outside, or only
 * outside), with why; null when they agree. A field absent outside misleads nobody and is not compared.
 */
export function headerMismatch(outer: readonly HeaderField[], inner: readonly HeaderField[], names: readonly string[]): string | null {
  for (const name of names) {
    const out = outer.filter((f) => f.name === name);
    if (out.length === 0) continue;
    if (out.length > 1) return `${name}: appears ${out.length} times in the outer header`;
    const ins = inner.filter((f) => f.name === name);
    if (ins.length !== 1) return `${name}: in the outer header but ${ins.length === 0 ? 'not' : 'more than once'} in the signed message`;
    if (normalise(name, out[0]!.value) !== normalise(name, ins[0]!.value)) return `${name}: the outer value differs from the signed one`;
  }
  return null;
}
