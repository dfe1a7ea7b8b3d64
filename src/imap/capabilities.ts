import type { SessionState } from './command.js';

/**
 * What the server advertises. Before TLS on the plain listener: STARTTLS and LOGINDISABLED, no AUTH=
 * mechanism (RFC 9051 §6.2.1, house rule "no AUTH before TLS").
 */
export function capabilities(opts: { secure: boolean; state: SessionState; maxLiteralSize: number }): string[] {
  const caps = [
    'IMAP4rev1',
    'LITERAL+',
    'BINARY',
    'NAMESPACE',
    'UNSELECT',
    'SPECIAL-USE',
    'CHILDREN',
    'LIST-EXTENDED',
    'LIST-STATUS',
    'UIDPLUS',
    'MOVE',
    'IDLE',
    'ESEARCH',
    'CONDSTORE',
    'SEARCHRES',
    'SORT',
    'SORT=DISPLAY',
    'THREAD=ORDEREDSUBJECT',
    'THREAD=REFERENCES',
    'ID',
    'ENABLE',
    `APPENDLIMIT=${opts.maxLiteralSize}`,
  ];
  if (opts.state === 'not-authenticated') {
    if (opts.secure) caps.push('SASL-IR', 'AUTH=PLAIN');
    else caps.push('STARTTLS', 'LOGINDISABLED');
  }
  return caps;
}
