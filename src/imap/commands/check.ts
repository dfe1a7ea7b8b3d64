import { defineCommand, SELECTED } from '../command.js';

/** CHECK (RFC 3501 §6.4.1): every change is already durable, so there is nothing to do. */
export default defineCommand({
  name: 'CHECK',
  states: SELECTED,
  parse: () => null,
  async run() {
    return { text: 'CHECK completed' };
  },
});
