import { AUTHENTICATED, defineCommand } from '../command.js';
import { existingFolder, mailboxValue } from '../folders.js';
import { quotaResponse, quotaRoots } from '../quota.js';
import { atom, untagged } from '../serializer.js';

/** GETQUOTAROOT (RFC 9208 §4.3): the quota roots of a folder, then each root's QUOTA. */
export default defineCommand({
  name: 'GETQUOTAROOT',
  states: AUTHENTICATED,
  parse: (args) => ({ mailbox: args.text('mailbox name') }),
  async run(session, { mailbox }) {
    const folder = await existingFolder(session, mailbox);
    const roots = quotaRoots(session);
    await session.send(untagged([atom('QUOTAROOT'), mailboxValue(session, folder.name), ...roots]));
    if (roots.length > 0) await session.send(await quotaResponse(session, session.deps.store));
    return { text: 'GETQUOTAROOT completed' };
  },
});
