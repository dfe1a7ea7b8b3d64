import { defineCommand, ImapError, SELECTED } from '../command.js';
import { expungeDeleted } from '../expunge.js';
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
    if (onlyUids.size > 0) await expungeDeleted(session, { onlyUids, silent: false });
    return { text: 'UID EXPUNGE completed' };
  },
});
