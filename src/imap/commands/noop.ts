import { ANY_STATE, defineCommand } from '../command.js';

/** NOOP (RFC 9051 §6.1.2): pending mailbox changes are reported by the dispatcher before the OK. */
export default defineCommand({
  name: 'NOOP',
  states: ANY_STATE,
  parse: () => null,
  async run() {
    return { text: 'NOOP completed' };
  },
});
