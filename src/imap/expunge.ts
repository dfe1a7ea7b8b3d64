import { appendAudit } from '../audit/journal.js';
import type { Completion, SessionApi } from './command.js';
import type { MessageSummary } from '../store/types.js';
import { hasFlag } from './flags.js';

/**
 * Removes the messages flagged \Deleted from the selected folder (all of them, or only those among `onlyUids`
 * for UID EXPUNGE) in one unit of work with its audit record, reports them to this session (unless
 * `silent`, as CLOSE is) and, after the commit, to the other sessions. Returns the folder's highest MODSEQ
 * after the removals (0 when nothing went).
 */
export async function expungeDeleted(session: SessionApi, options: { onlyUids?: ReadonlySet<number>; silent: boolean }): Promise<number> {
  const view = session.selected!;
  const user = session.user!;
  const { store, notifier } = session.deps;
  const deleted = (messages: readonly MessageSummary[]) =>
    messages.filter((m) => hasFlag(m.flags, '\\Deleted') && (!options.onlyUids || options.onlyUids.has(m.uid))).map((m) => m.uid);
  const targets = deleted(await view.messages.list());
  if (targets.length === 0) return 0;
  const removed = await store.transaction(async (tx) => {
    // Read again in the unit of work: another process may have taken \Deleted off since it was announced here.
    const out = await tx.expunge(view.folder.id, deleted(await tx.getMessages(view.folder.id, targets)));
    if (out.length > 0) {
      await appendAudit(tx, {
        actor: user.address,
        action: 'delete',
        object: user.address,
        outcome: 'ok',
        detail: { protocol: 'imap', folder: view.folder.name, messages: out.length },
      });
    }
    return out;
  });
  await view.removed(
    removed.map((r) => r.uid),
    options.silent ? null : (data) => session.send(data),
    session.enabled.has('QRESYNC'),
  );
  for (const r of removed) notifier.publish({ kind: 'expunge', mailboxId: user.id, folderId: view.folder.id, uid: r.uid, modseq: r.modseq });
  return removed.reduce((highest, r) => Math.max(highest, r.modseq), 0);
}

/**
 * The tagged OK of EXPUNGE and UID EXPUNGE: with QRESYNC it carries the folder's HIGHESTMODSEQ, so the client
 * can record that it has seen every change up to it (as in RFC 7162's examples, and as Dovecot does).
 */
export async function expungeCompletion(session: SessionApi, highest: number, text: string): Promise<Completion> {
  if (!session.enabled.has('QRESYNC')) return { text };
  const modseq = highest || ((await session.deps.store.getFolderById(session.selected!.folder.id))?.highestModseq ?? 0);
  return modseq > 0 ? { code: `HIGHESTMODSEQ ${modseq}`, text } : { text };
}
