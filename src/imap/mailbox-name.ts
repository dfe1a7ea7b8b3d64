/**
 * Mailbox names on the wire: modified UTF-7 (RFC 3501 §5.1.3) for IMAP4rev1 sessions, UTF-8 (RFC 6855 §3,
 * RFC 9051 §5.1) once the client enabled UTF8=ACCEPT or IMAP4rev2; INBOX case-insensitivity, and LIST
 * wildcards. Folder names are stored as Unicode (NFC) with '/' as the delimiter.
 */

export const DELIMITER = '/';

export function encodeMailboxName(name: string): string {
  let out = '';
  let pending = '';
  const flush = () => {
    if (!pending) return;
    const bytes = Buffer.from(pending, 'utf16le').swap16();
    out += '&' + bytes.toString('base64').replace(/=+$/, '').replace(/\//g, ',') + '-';
    pending = '';
  };
  for (const ch of name) {
    const code = ch.codePointAt(0)!;
    if (code >= 0x20 && code <= 0x7e) {
      flush();
      out += ch === '&' ? '&-' : ch;
    } else pending += ch;
  }
  flush();
  return out;
}

export class MailboxNameError extends Error {}

export function decodeMailboxName(wire: string): string {
  return wire.replace(/&([^-]*)-/g, (_, b64: string) => {
    if (b64 === '') return '&';
    if (!/^[A-Za-z0-9+,]+$/.test(b64)) throw new MailboxNameError('Invalid modified UTF-7 mailbox name');
    const bytes = Buffer.from(b64.replace(/,/g, '/'), 'base64');
    if (bytes.length % 2 !== 0) throw new MailboxNameError('Invalid modified UTF-7 mailbox name');
    return Buffer.from(bytes).swap16().toString('utf16le');
  });
}

/** Characters no mailbox name may hold: controls (C0, DEL, C1) and the Unicode line and paragraph separators. */
const FORBIDDEN = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/u;

/**
 * The Unicode name a client wrote: modified UTF-7, 7-bit only (`utf8` false), or UTF-8 taken as written
 * (`utf8` true: `&` is then an ordinary character). NFC-normalised; not yet INBOX-canonical.
 */
export function nameFromWire(wire: string, utf8: boolean): string {
  if (!utf8) {
    if (/[^\x00-\x7f]/.test(wire)) throw new MailboxNameError('Mailbox names are 7-bit (modified UTF-7)');
    return decodeMailboxName(wire).normalize('NFC');
  }
  // Args decode with replacement characters: one here means the bytes were not UTF-8.
  if (wire.includes('\ufffd')) throw new MailboxNameError('Mailbox name is not valid UTF-8');
  return wire.normalize('NFC');
}

/** A folder name as this session writes it: modified UTF-7, or UTF-8 as is. */
export function nameOnWire(name: string, utf8: boolean): string {
  return utf8 ? name : encodeMailboxName(name);
}

/** `inbox`, `Inbox/x`... name the INBOX (and its children) whatever the case. */
export function canonicalName(name: string): string {
  if (name.toUpperCase() === 'INBOX') return 'INBOX';
  if (name.toUpperCase().startsWith(`INBOX${DELIMITER}`)) return `INBOX${name.slice(5)}`;
  return name;
}

/** LIST pattern matching: `*` matches anything, `%` anything but the delimiter. */
export function listMatcher(pattern: string): (name: string) => boolean {
  const escape = (s: string) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  const source = [...canonicalName(pattern)]
    .map((ch) => (ch === '*' ? '.*' : ch === '%' ? `[^${escape(DELIMITER)}]*` : escape(ch)))
    .join('');
  const re = new RegExp(`^${source}$`, 'u');
  return (name) => re.test(name);
}

/**
 * A name for a new folder (CREATE, RENAME): modified UTF-7 in its one canonical spelling (`utf8` false) or
 * valid UTF-8 (`utf8` true, RFC 6855 §3: Net-Unicode without controls or line separators), printable, no
 * wildcard, no empty or dot level, within `maxLength` UTF-8 bytes. Returns the Unicode name (NFC), INBOX
 * canonical, without the trailing delimiter RFC 3501 allows on CREATE.
 */
export function newFolderName(wire: string, maxLength: number, utf8 = false): string {
  const trimmed = wire.endsWith(DELIMITER) ? wire.slice(0, -1) : wire;
  if (!utf8) {
    if (!/^[\x20-\x7e]*$/.test(trimmed)) throw new MailboxNameError('Mailbox names are 7-bit (modified UTF-7)');
    if (encodeMailboxName(decodeMailboxName(trimmed)) !== trimmed) throw new MailboxNameError('Invalid modified UTF-7 mailbox name');
  }
  const name = nameFromWire(trimmed, utf8);
  if (name === '') throw new MailboxNameError('Empty mailbox name');
  if (Buffer.byteLength(name, 'utf8') > maxLength) throw new MailboxNameError(`Mailbox name too long (limit ${maxLength} bytes)`);
  if (FORBIDDEN.test(name) || /[*%]/.test(name)) throw new MailboxNameError('Mailbox names may not hold control characters, * or %');
  if (name.split(DELIMITER).some((level) => level === '' || level === '.' || level === '..' || level.trim() !== level)) {
    throw new MailboxNameError('Each level of a mailbox name must be a non-empty name without surrounding spaces');
  }
  return canonicalName(name);
}
