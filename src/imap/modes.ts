import type { SessionApi } from './command.js';

/**
 * What the client turned on with ENABLE that changes the protocol itself (rather than adding to it): IMAP4rev2
 * semantics (RFC 9051: no RECENT, ESEARCH answers, UTF-8 mailbox names…) and UTF8=ACCEPT (RFC 6855: UTF-8
 * mailbox names and quoted strings, APPEND UTF8). A session that enabled neither is an IMAP4rev1 session.
 */

export const IMAP4REV2 = 'IMAP4rev2';
export const UTF8_ACCEPT = 'UTF8=ACCEPT';

type Enabled = Pick<SessionApi, 'enabled'>;

export function isRev2(session: Enabled): boolean {
  return session.enabled.has(IMAP4REV2);
}

/** Mailbox names travel in UTF-8 (RFC 9051 §5.1 for IMAP4rev2, RFC 6855 §3), not in modified UTF-7. */
export function utf8Names(session: Enabled): boolean {
  return session.enabled.has(IMAP4REV2) || session.enabled.has(UTF8_ACCEPT);
}
