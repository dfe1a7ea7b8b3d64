import { defineCommand } from '../command.js';
import { atom, untagged } from '../serializer.js';
import { ImapSyntaxError } from '../tokenizer.js';

/**
 * ENABLE (RFC 5161): valid only in the authenticated state. No extension that needs enabling is
 * implemented (no CONDSTORE, QRESYNC, UTF8=ACCEPT, IMAP4rev2), so each is accepted and ignored: the
 * answer is an empty `* ENABLED`.
 */
export default defineCommand({
  name: 'ENABLE',
  states: ['authenticated'],
  parse: (args) => {
    if (args.remaining === 0) throw new ImapSyntaxError('Missing capability names');
    while (args.remaining > 0) args.atom('capability name');
    return null;
  },
  async run(session) {
    await session.send(untagged([atom('ENABLED')]));
    return { text: 'ENABLE completed' };
  },
});
