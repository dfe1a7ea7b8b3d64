import { AUTHENTICATED, defineCommand, ImapError } from '../command.js';
import { quotaResponse, quotaRoots } from '../quota.js';

/** GETQUOTA (RFC 9208 §4.2): the usage and limits of a quota root (the mailbox's only root is ""). */
export default defineCommand({
  name: 'GETQUOTA',
  states: AUTHENTICATED,
  parse: (args) => args.text('quota root'),
  async run(session, root) {
    if (!quotaRoots(session).includes(root)) throw new ImapError('NO', 'No such quota root', 'NONEXISTENT');
    await session.send(await quotaResponse(session, session.deps.store));
    return { text: 'GETQUOTA completed' };
  },
});
