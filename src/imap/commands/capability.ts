import { ANY_STATE, defineCommand } from '../command.js';
import { atom, untagged } from '../serializer.js';

/** CAPABILITY (RFC 9051 §6.1.1). */
export default defineCommand({
  name: 'CAPABILITY',
  states: ANY_STATE,
  parse: () => null,
  async run(session) {
    await session.send(untagged([atom('CAPABILITY'), ...session.capabilities().map(atom)]));
    return { text: 'CAPABILITY completed' };
  },
});
