import { defineCommand, SELECTED } from '../command.js';

/**
 * CLOSE (RFC 3501 §6.4.2). Deviation: messages flagged \Deleted are not expunged yet (the store has no
 * expunge operation in this slice; see docs/imap-deviations.md).
 */
export default defineCommand({
  name: 'CLOSE',
  states: SELECTED,
  parse: () => null,
  async run(session) {
    session.select(null);
    return { text: 'CLOSE completed' };
  },
});
