import { appendAudit } from '../../audit/journal.js';
import { AUTHENTICATED, defineCommand, ImapError } from '../command.js';
import { checkFolderLimit, superiorNames, validNewName } from '../folders.js';

/**
 * CREATE (RFC 9051 §6.3.4). Missing superior levels are created too (`a/b` creates `a`); a trailing `/` is
 * dropped. New folders are subscribed. Limits: `maxFolders`, `maxMailboxNameLength`.
 */
export default defineCommand({
  name: 'CREATE',
  states: AUTHENTICATED,
  parse: (args) => ({ mailbox: args.text('mailbox name') }),
  async run(session, { mailbox }) {
    const user = session.user!;
    const name = validNewName(session, mailbox);
    await session.deps.store.transaction(async (tx) => {
      if (await tx.getFolder(user.id, name)) throw new ImapError('NO', 'Mailbox already exists', 'ALREADYEXISTS');
      const missing: string[] = [];
      for (const parent of superiorNames(name)) if (!(await tx.getFolder(user.id, parent))) missing.push(parent);
      missing.push(name);
      await checkFolderLimit(session, tx, missing.length);
      for (const folder of missing) await tx.insertFolder({ mailboxId: user.id, name: folder, specialUse: null, subscribed: true });
      await appendAudit(tx, {
        actor: user.address,
        action: 'folder-create',
        object: user.address,
        outcome: 'ok',
        detail: { protocol: 'imap', folder: name, created: missing.length },
      });
    });
    return { text: 'CREATE completed' };
  },
});
