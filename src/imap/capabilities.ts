import type { SessionState } from './command.js';

/**
 * What the server advertises: IMAP4rev1 and IMAP4rev2 (a session is rev1 until ENABLE IMAP4rev2, RFC 9051
 * Appendix A). Before TLS on the plain listener: STARTTLS and LOGINDISABLED, no AUTH=
 * mechanism (RFC 9051 §6.2.1, house rule "no AUTH before TLS"). AUTH=EXTERNAL only on a TLS connection whose
 * client presented a certificate.
 */
export function capabilities(opts: { secure: boolean; state: SessionState; maxLiteralSize: number; clientCertificate?: boolean }): string[] {
  const caps = [
    'IMAP4rev1',
    'IMAP4rev2',
    'LITERAL+',
    // LITERAL+ allows non-synchronising literals of any size, LITERAL- (part of IMAP4rev2) those up to 4096
    // bytes: both hold (RFC 7888), and clients that know only LITERAL- may use it.
    'LITERAL-',
    'BINARY',
    'MULTIAPPEND',
    'NAMESPACE',
    'UNSELECT',
    'UNAUTHENTICATE',
    'SPECIAL-USE',
    'CREATE-SPECIAL-USE',
    'CHILDREN',
    'LIST-EXTENDED',
    'LIST-STATUS',
    'STATUS=SIZE',
    'UIDPLUS',
    'MOVE',
    'IDLE',
    'ESEARCH',
    'CONDSTORE',
    'QRESYNC',
    'SEARCHRES',
    'SORT',
    'SORT=DISPLAY',
    'THREAD=ORDEREDSUBJECT',
    'THREAD=REFERENCES',
    'QUOTA',
    'QUOTA=RES-STORAGE',
    'QUOTA=RES-MESSAGE',
    'COMPRESS=DEFLATE',
    'ID',
    'ENABLE',
    'UTF8=ACCEPT',
    'PREVIEW',
    `APPENDLIMIT=${opts.maxLiteralSize}`,
  ];
  if (opts.state === 'not-authenticated') {
    if (opts.secure) caps.push('SASL-IR', 'AUTH=PLAIN', ...(opts.clientCertificate ? ['AUTH=EXTERNAL'] : []));
    else caps.push('STARTTLS', 'LOGINDISABLED');
  }
  return caps;
}
