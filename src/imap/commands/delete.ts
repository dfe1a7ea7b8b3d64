import { appendAudit } from '../../audit/journal.js';
import { AUTHENTICATED, defineCommand, ImapError } from '../command.js';
import { existingFolder } from '../folders.js';

/**
 * DELETE (RFC 9051 §6.3.5): the folder and its messages go in one unit of work; its inferiors stay (their
 * parent then lists as \Noselect). INBOX cannot be deleted. Sessions that had the folder selected are sent
 * EXPUNGE for its messages.
 */
export default defineCommand({
  name: 'DELETE',
  states: AUTHENTICATED,
  parse: (args) => ({ mailbox: args.text('mailbox name') }),
  async run(session, { mailbox }) {
    const user = session.user!;
    const { store, notifier } = session.deps;
    const folder = await existingFolder(session, mailbox);
    if (folder.name === 'INBOX') throw new ImapError('NO', 'INBOX cannot be deleted', 'CANNOT');
    const removed = await store.transaction(async (tx) => {
      const out = await tx.deleteFolder(folder.id);
      await appendAudit(tx, {
        actor: user.address,
        action: 'folder-delete',
        object: user.address,
        outcome: 'ok',
        detail: { protocol: 'imap', folder: folder.name, messages: out.length },
      });
      return out;
    });
    for (const r of removed) notifier.publish({ kind: 'expunge', mailboxId: user.id, folderId: folder.id, uid: r.uid, modseq: r.modseq });
    return { text: 'DELETE completed' };
  },
});
