import { appendAudit } from '../../audit/journal.js';
import type { CopiedMessages, ExpungedMessage, FolderRow } from '../../store/types.js';
import { AUTHENTICATED, defineCommand, ImapError } from '../command.js';
import { checkFolderLimit, existingFolder, validNewName } from '../folders.js';
import { DELIMITER } from '../mailbox-name.js';

/**
 * RENAME (RFC 9051 §6.3.6). A folder keeps its messages, UIDs and UIDVALIDITY, and its inferiors move with
 * it (`a` → `b` renames `a/x` to `b/x`). Renaming INBOX moves its messages into a new folder of the new name
 * and leaves INBOX, and its inferiors, in place.
 */
export default defineCommand({
  name: 'RENAME',
  states: AUTHENTICATED,
  parse: (args) => ({ from: args.text('existing mailbox name'), to: args.text('new mailbox name') }),
  async run(session, { from, to }) {
    const user = session.user!;
    const { store, notifier } = session.deps;
    const source = await existingFolder(session, from);
    const target = validNewName(session, to);
    if (target === source.name) throw new ImapError('NO', 'Mailbox already exists', 'ALREADYEXISTS');
    if (target.startsWith(source.name + DELIMITER) && source.name !== 'INBOX') {
      throw new ImapError('NO', 'A mailbox cannot be moved inside itself', 'CANNOT');
    }
    const events = await store.transaction(async (tx) => {
      const folders = await tx.listFolders(user.id);
      const taken = new Set(folders.map((f) => f.name));
      // Every folder that moves, with its new name; INBOX alone moves its messages, not its inferiors.
      const moves: [FolderRow, string][] =
        source.name === 'INBOX'
          ? []
          : folders
              .filter((f) => f.id === source.id || f.name.startsWith(source.name + DELIMITER))
              .map((f) => [f, target + f.name.slice(source.name.length)]);
      for (const [, name] of source.name === 'INBOX' ? [[source, target] as const] : moves) {
        if (taken.has(name)) throw new ImapError('NO', `Mailbox already exists: ${name}`, 'ALREADYEXISTS');
        if (Buffer.byteLength(name, 'utf8') > session.deps.limits.maxMailboxNameLength) {
          throw new ImapError('NO', `Mailbox name too long (limit ${session.deps.limits.maxMailboxNameLength} bytes)`, 'CANNOT');
        }
      }
      let copied: CopiedMessages | null = null;
      let removed: ExpungedMessage[] = [];
      let created: FolderRow | null = null;
      if (source.name === 'INBOX') {
        await checkFolderLimit(session, tx, 1);
        created = await tx.insertFolder({ mailboxId: user.id, name: target, specialUse: null, subscribed: true });
        const uids = (await tx.listMessages(source.id)).map((m) => m.uid);
        copied = await tx.copyMessages(source.id, uids, created.id);
        removed = await tx.expunge(source.id, uids);
      } else {
        for (const [folder, name] of moves) await tx.renameFolder(folder.id, name);
      }
      await appendAudit(tx, {
        actor: user.address,
        action: 'folder-rename',
        object: user.address,
        outcome: 'ok',
        detail: { protocol: 'imap', folder: source.name, to: target, messages: removed.length },
      });
      return { copied, removed, created };
    });
    const { copied, removed, created } = events;
    if (created && copied) {
      for (const c of copied.copies) notifier.publish({ kind: 'exists', mailboxId: user.id, folderId: created.id, uid: c.uid, modseq: c.modseq });
    }
    for (const r of removed) notifier.publish({ kind: 'expunge', mailboxId: user.id, folderId: source.id, uid: r.uid, modseq: r.modseq });
    return { text: 'RENAME completed' };
  },
});
