import { defineCommand, ImapError, SELECTED } from '../command.js';
import { expungeCompletion, expungeDeleted } from '../expunge.js';

/**
 * EXPUNGE (RFC 9051 §6.4.3): removes every message flagged \Deleted, with one `* n EXPUNGE` each (one
 * `* VANISHED` for all with QRESYNC).
 */
export default defineCommand({
  name: 'EXPUNGE',
  states: SELECTED,
  parse: () => null,
  async run(session) {
    if (session.selected!.readOnly) throw new ImapError('NO', 'Mailbox is read-only');
    return expungeCompletion(session, await expungeDeleted(session, { silent: false }), 'EXPUNGE completed');
  },
});
