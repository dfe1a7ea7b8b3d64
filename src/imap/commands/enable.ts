import { defineCommand } from '../command.js';
import { IMAP4REV2, UTF8_ACCEPT } from '../modes.js';
import { atom, untagged } from '../serializer.js';
import { ImapSyntaxError } from '../tokenizer.js';

/**
 * ENABLE (RFC 5161, RFC 9051 §6.3.1): valid only in the authenticated state. Extensions we implement are turned
 * on and listed in `* ENABLED` (names in their advertised spelling); unknown names are ignored, as the RFC asks.
 * QRESYNC turns CONDSTORE on too (RFC 7162 §3.2.3). IMAP4rev2 switches the session to RFC 9051 semantics and
 * UTF8=ACCEPT to UTF-8 mailbox names and strings (RFC 6855), until LOGOUT or UNAUTHENTICATE.
 */
export const ENABLEABLE = ['CONDSTORE', 'QRESYNC', IMAP4REV2, UTF8_ACCEPT] as const;

export default defineCommand({
  name: 'ENABLE',
  states: ['authenticated'],
  parse: (args) => {
    if (args.remaining === 0) throw new ImapSyntaxError('Missing capability names');
    const names: string[] = [];
    while (args.remaining > 0) names.push(args.atom('capability name').toUpperCase());
    return names;
  },
  async run(session, names) {
    const now = ENABLEABLE.filter((n) => names.includes(n.toUpperCase()) && !session.enabled.has(n));
    for (const n of now) session.enabled.add(n);
    if (session.enabled.has('QRESYNC')) session.enabled.add('CONDSTORE');
    await session.send(untagged([atom('ENABLED'), ...now.map(atom)]));
    return { text: 'ENABLE completed' };
  },
});
