import { hasQuota } from '../../accounts/quota.js';
import { appendAudit } from '../../audit/journal.js';
import type { CopiedMessages, ExpungedMessage } from '../../store/types.js';
import type { Args } from '../args.js';
import { defineCommand, ImapError, SELECTED, type Completion, type SessionApi } from '../command.js';
import { folderName } from '../folders.js';
import { checkQuota } from '../quota.js';
import { formatUidSet, resolveSequenceNumbers, resolveUids, type SeqRange } from '../sequence.js';
import { status } from '../serializer.js';

/**
 * COPY, UID COPY (RFC 9051 §6.4.7) and MOVE, UID MOVE (RFC 6851), with COPYUID (RFC 4315). The copies share
 * the sealed content of the originals (same mailbox, same key). A MOVE copies and expunges in one unit of
 * work, so a message is never in both folders or in neither; it answers `* OK [COPYUID ...]`, then one
 * `* n EXPUNGE` per message moved (one `* VANISHED` with QRESYNC), then the tagged OK. A COPY that would take
 * the mailbox beyond its quota is refused with nothing copied; a MOVE adds nothing to the mailbox (one quota
 * root covers all its folders), so it is always allowed, over quota too: it is how room is made.
 */

export interface CopyArgs {
  set: SeqRange[];
  mailbox: string;
}

export function parseCopy(args: Args): CopyArgs {
  return { set: args.sequenceSet(), mailbox: args.text('mailbox name') };
}

function copyUid(copied: CopiedMessages): string {
  const src = formatUidSet(copied.copies.map((c) => c.sourceUid));
  const dst = formatUidSet(copied.copies.map((c) => c.uid));
  return `COPYUID ${copied.uidValidity} ${src} ${dst}`;
}

export async function runCopy(session: SessionApi, { set, mailbox }: CopyArgs, options: { byUid: boolean; move: boolean }): Promise<Completion> {
  const name = `${options.byUid ? 'UID ' : ''}${options.move ? 'MOVE' : 'COPY'}`;
  const view = session.selected!;
  const user = session.user!;
  const { store, notifier } = session.deps;
  if (options.move && view.readOnly) throw new ImapError('NO', 'Mailbox is read-only');
  const indexes = options.byUid ? resolveUids(set, view.uids) : resolveSequenceNumbers(set, view.exists);
  if (indexes === null) throw new ImapError('BAD', 'Invalid message sequence number');
  const target = await store.getFolder(user.id, folderName(session, mailbox));
  if (!target) throw new ImapError('NO', 'Mailbox does not exist', 'TRYCREATE');
  const uids = indexes.map((i) => view.uids[i]!);
  if (uids.length === 0) return { text: `${name} completed` };
  const { copied, removed } = await store.transaction(async (tx) => {
    if (!(await tx.getFolderById(view.folder.id))) throw new ImapError('NO', 'The selected mailbox no longer exists');
    if (!options.move && hasQuota(session.deps.quota)) {
      // Summaries, not full rows: those carry the sealed metadata of every message.
      const wanted = new Set(uids);
      const sources = (await tx.listMessages(view.folder.id)).filter((m) => wanted.has(m.uid));
      await checkQuota(session, tx, { messages: sources.length, bytes: sources.reduce((n, m) => n + m.size, 0) });
    }
    const copied = await tx.copyMessages(view.folder.id, uids, target.id);
    const removed: ExpungedMessage[] = options.move ? await tx.expunge(view.folder.id, copied.copies.map((c) => c.sourceUid)) : [];
    if (copied.copies.length > 0) {
      await appendAudit(tx, {
        actor: user.address,
        action: options.move ? 'move' : 'copy',
        object: user.address,
        outcome: 'ok',
        detail: { protocol: 'imap', folder: view.folder.name, to: target.name, messages: copied.copies.length },
      });
    }
    return { copied, removed };
  });
  const code = copied.copies.length > 0 ? copyUid(copied) : undefined;
  if (options.move) {
    if (code) await session.send(status(null, 'OK', 'Moved', code));
    await view.removed(
      removed.map((r) => r.uid),
      (data) => session.send(data),
      session.enabled.has('QRESYNC'),
    );
  }
  for (const c of copied.copies) notifier.publish({ kind: 'exists', mailboxId: user.id, folderId: target.id, uid: c.uid, modseq: c.modseq });
  for (const r of removed) notifier.publish({ kind: 'expunge', mailboxId: user.id, folderId: view.folder.id, uid: r.uid, modseq: r.modseq });
  return options.move || !code ? { text: `${name} completed` } : { code, text: `${name} completed` };
}

export default defineCommand({
  name: 'COPY',
  states: SELECTED,
  parse: parseCopy,
  run: (session, args) => runCopy(session, args, { byUid: false, move: false }),
});
