import { defineCommand } from '../command.js';
import { atom, untagged } from '../serializer.js';
import { ImapSyntaxError } from '../tokenizer.js';

/**
 * ENABLE (RFC 5161): valid only in the authenticated state. Extensions we implement are turned on and listed
 * in `* ENABLED`; unknown names are ignored, as the RFC asks. QRESYNC turns CONDSTORE on too (RFC 7162 §3.2.3).
 */
export const ENABLEABLE = ['CONDSTORE', 'QRESYNC'] as const;

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
    const now = ENABLEABLE.filter((n) => names.includes(n) && !session.enabled.has(n));
    for (const n of now) session.enabled.add(n);
    if (session.enabled.has('QRESYNC')) session.enabled.add('CONDSTORE');
    await session.send(untagged([atom('ENABLED'), ...now.map(atom)]));
    return { text: 'ENABLE completed' };
  },
});
