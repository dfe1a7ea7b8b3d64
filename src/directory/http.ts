import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DirectoryReads, DirMailbox } from '../store/directory-types.js';
import type { MailboxType } from '../store/types.js';
import { mailboxDisplayName, MAX_QUERY_LENGTH, MIN_QUERY_LENGTH, parseQuery, searchDirectory } from './lookup.js';

/**
 * `GET /api/directory/search?q=…&limit=…`: address-book completion for the webmail, framework-free. The
 * caller (the webmail's router) authenticates the request and passes the user; liste rouge and inactive
 * mailboxes are never returned. Patients get 403: they reply to professionals, they do not look them up.
 *
 * 200 `{ "query": "dup", "results": [{ "address", "type", "name", "profession", "specialty", "organisation",
 * "service", "postalCode", "city" }] }`; 400 / 401 / 403 / 405 / 500 `{ "error": "…" }`.
 */

/** The authenticated account, as the webmail's authentication hands it over. */
export interface AuthenticatedUser {
  address: string;
  type: MailboxType;
}

export interface AddressBookEntry {
  address: string;
  type: DirMailbox['type'];
  name: string;
  profession: string | null;
  specialty: string | null;
  organisation: string | null;
  service: string | null;
  postalCode: string | null;
  city: string | null;
}

export type DirectoryRequestHandler = (req: IncomingMessage, res: ServerResponse, user: AuthenticatedUser | null) => Promise<void>;

export const DEFAULT_SEARCH_LIMIT = 10;

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const json = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(json)),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  });
  res.end(json);
}

export function addressBookEntry(m: DirMailbox): AddressBookEntry {
  return {
    address: m.address,
    type: m.type,
    name: mailboxDisplayName(m),
    profession: m.professionLabel,
    specialty: m.specialtyLabel,
    organisation: m.organisationName,
    service: m.service,
    postalCode: m.postalCode,
    city: m.city,
  };
}

/**
 * The handler, over the directory's reads. `maxLimit` caps `limit` (config `directory.searchLimit`); `onError`
 * hears about store failures (answered 500 without detail).
 */
export function directorySearchHandler(
  directory: DirectoryReads,
  options: { maxLimit: number; onError?: (err: unknown) => void },
): DirectoryRequestHandler {
  return async (req, res, user) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, { error: 'method not allowed: use GET' }, { Allow: 'GET, HEAD' });
      return;
    }
    if (!user) {
      send(res, 401, { error: 'authentication required' });
      return;
    }
    if (user.type === 'PATIENT') {
      send(res, 403, { error: 'the directory is for health professionals: a patient replies to the messages received' });
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const q = url.searchParams.get('q') ?? '';
    const query = parseQuery(q);
    if (!query) {
      send(res, 400, { error: `q must hold ${MIN_QUERY_LENGTH} to ${MAX_QUERY_LENGTH} characters of a name or an address` });
      return;
    }
    const limitText = url.searchParams.get('limit');
    const limit = limitText === null ? Math.min(DEFAULT_SEARCH_LIMIT, options.maxLimit) : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > options.maxLimit) {
      send(res, 400, { error: `limit must be an integer from 1 to ${options.maxLimit}` });
      return;
    }
    try {
      const found = await searchDirectory(directory, query, { limit, includeListeRouge: false, mailboxesOnly: true });
      send(res, 200, { query: q, results: found.mailboxes.filter((m) => m.active && !m.listeRouge).map(addressBookEntry) });
    } catch (err) {
      options.onError?.(err);
      send(res, 500, { error: 'directory unavailable, try again' });
    }
  };
}
