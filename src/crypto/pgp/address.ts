import { parseAddressList } from '../../mime/address.js';

/**
 * Mail addresses as the agent compares them: trimmed, angle brackets removed, lower-cased whole (domain
 * parts are case-insensitive; local parts are treated so too, as every deployed system does).
 */
export function normalizeAddress(address: string): string {
  return address.trim().replace(/^<(.*)>$/, '$1').trim().toLowerCase();
}

const ADDR_SPEC = /^[^\s@<>()",;:]+@[^\s@<>()",;:]+$/;

/** The email of an OpenPGP user ID (`Name (comment) <addr>` or a bare `addr`), normalised; null if none. */
export function userIdEmail(userId: string): string | null {
  const angle = /<([^<>]*)>\s*$/.exec(userId);
  const candidate = normalizeAddress(angle ? angle[1]! : userId);
  return ADDR_SPEC.test(candidate) ? candidate : null;
}

/**
 * The one author address of a `From` field value, normalised; null when the field has no address or
 * several (RFC 5322 allows a list with a Sender field; a signature is checked against a single author).
 */
export function singleFromAddress(fromValue: string | null): string | null {
  const list = parseAddressList(fromValue)?.filter((a) => a.host !== null) ?? [];
  if (list.length !== 1) return null;
  const only = list[0]!;
  const address = normalizeAddress(`${only.mailbox}@${only.host}`);
  return ADDR_SPEC.test(address) ? address : null;
}
