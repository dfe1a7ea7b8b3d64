import type { DirectoryReads, DirMailbox, DirOrganisation, DirPractitioner } from '../store/directory-types.js';
import { isIdNatPs, isIdNatStruct, isRpps } from './identifiers.js';
import { searchKey } from './normalize.js';

/**
 * Lookups shared by `mss directory search|show` and the address-book endpoint: what a person types becomes a
 * search key (accent- and case-insensitive name prefix) and, when it looks like one, an address prefix.
 */

/** Shortest query, in characters of its search key (or of an address prefix). */
export const MIN_QUERY_LENGTH = 2;
export const MAX_QUERY_LENGTH = 100;

export interface DirectoryQuery {
  key: string;
  addressPrefix: string;
}

/** Null when the text is too short or too long to search. */
export function parseQuery(text: string): DirectoryQuery | null {
  const trimmed = text.trim();
  if (trimmed.length > MAX_QUERY_LENGTH) return null;
  const key = searchKey(trimmed);
  // A single word may also be the start of an address ("jean.dup", "cardio@ch-").
  const addressPrefix = /^[^\s"<>()]+$/.test(trimmed) ? trimmed.toLowerCase() : '';
  if (key.length < MIN_QUERY_LENGTH && addressPrefix.length < MIN_QUERY_LENGTH) return null;
  return { key: key.length >= MIN_QUERY_LENGTH ? key : '', addressPrefix };
}

export interface SearchResults {
  mailboxes: DirMailbox[];
  practitioners: DirPractitioner[];
  organisations: DirOrganisation[];
}

export async function searchDirectory(
  directory: DirectoryReads,
  query: DirectoryQuery,
  options: { limit: number; includeListeRouge: boolean; mailboxesOnly?: boolean },
): Promise<SearchResults> {
  const mailboxes = await directory.searchMailboxes(query.key, query.addressPrefix, options);
  if (options.mailboxesOnly || !query.key) return { mailboxes, practitioners: [], organisations: [] };
  return {
    mailboxes,
    practitioners: await directory.searchPractitioners(query.key, options.limit),
    organisations: await directory.searchOrganisations(query.key, options.limit),
  };
}

/** The name a person reads for a mailbox: "Xavier CHEPY", or "Cardiologie — CH BUGEY SUD". */
export function mailboxDisplayName(m: DirMailbox): string {
  if (m.type === 'PER' || m.type === 'CAB') {
    const name = [m.firstName, m.lastName].filter(Boolean).join(' ');
    if (name) return name;
  }
  const parts = [m.service, m.organisationName].filter(Boolean);
  return parts.length > 0 ? parts.join(' — ') : m.address;
}

/** What `mss directory show` was given: an address, a practitioner or a structure identifier. */
export type ShowTarget = { kind: 'address'; address: string } | { kind: 'practitioner'; id: string } | { kind: 'structure'; id: string };

export function parseShowTarget(text: string): ShowTarget | null {
  const v = text.trim();
  if (v.includes('@')) return { kind: 'address', address: v.toLowerCase() };
  if (isIdNatPs(v)) return { kind: 'practitioner', id: v };
  if (isRpps(v)) return { kind: 'practitioner', id: `8${v}` };
  if (isIdNatStruct(v)) return { kind: 'structure', id: v };
  return null;
}
