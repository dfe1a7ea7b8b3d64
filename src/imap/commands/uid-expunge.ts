import { defineCommand, ImapError, SELECTED } from '../command.js';
import { expungeCompletion, expungeDeleted } from '../expunge.js';
import { resolveUids } from '../sequence.js';

/** UID EXPUNGE (RFC 4315 §2.1): removes only the listed messages that are flagged \Deleted. */
export default defineCommand({
  name: 'UID EXPUNGE',
  states: SELECTED,
  parse: (args) => ({ set: args.sequenceSet() }),
  async run(session, { set }) {
    const view = session.selected!;
    if (view.readOnly) throw new ImapError('NO', 'Mailbox is read-only');
    const onlyUids = new Set(resolveUids(set, view.uids).map((i) => view.uids[i]!));
    const highest = onlyUids.size > 0 ? await expungeDeleted(session, { onlyUids, silent: false }) : 0;
    return expungeCompletion(session, highest, 'UID EXPUNGE completed');
  },
});
