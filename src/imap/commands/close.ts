import { defineCommand, SELECTED } from '../command.js';
import { expungeDeleted } from '../expunge.js';

/**
 * CLOSE (RFC 9051 §6.4.1): in a read-write selection, silently removes the messages flagged \Deleted (no
 * EXPUNGE responses; other sessions are told), then leaves the selected state.
 */
export default defineCommand({
  name: 'CLOSE',
  states: SELECTED,
  parse: () => null,
  async run(session) {
    if (!session.selected!.readOnly) await expungeDeleted(session, { silent: true });
    session.select(null);
    return { text: 'CLOSE completed' };
  },
});
