import type { SessionState } from './command.js';

/**
 * What the server advertises. Before TLS on the plain listener: STARTTLS and LOGINDISABLED, no AUTH=
 * mechanism (RFC 9051 §6.2.1, house rule "no AUTH before TLS"). AUTH=EXTERNAL only on a TLS connection whose
 * client presented a certificate.
 */
export function capabilities(opts: { secure: boolean; state: SessionState; maxLiteralSize: number; clientCertificate?: boolean }): string[] {
  const caps = [
    'IMAP4rev1',
    'LITERAL+',
    'BINARY',
    'MULTIAPPEND',
    'NAMESPACE',
    'UNSELECT',
    'UNAUTHENTICATE',
    'SPECIAL-USE',
    'CHILDREN',
    'LIST-EXTENDED',
    'LIST-STATUS',
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
    `APPENDLIMIT=${opts.maxLiteralSize}`,
  ];
  if (opts.state === 'not-authenticated') {
    if (opts.secure) caps.push('SASL-IR', 'AUTH=PLAIN', ...(opts.clientCertificate ? ['AUTH=EXTERNAL'] : []));
    else caps.push('STARTTLS', 'LOGINDISABLED');
  }
  return caps;
}
