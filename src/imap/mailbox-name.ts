/**
 * Mailbox names on the wire: modified UTF-7 (RFC 3501 §5.1.3; IMAP4rev1 without UTF8=ACCEPT), INBOX
 * case-insensitivity, and LIST wildcards. Folder names are stored as Unicode with '/' as the delimiter.
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
