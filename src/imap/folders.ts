import type { FolderRow, StoreTx } from '../store/types.js';
import { ImapError, type SessionApi } from './command.js';
import { canonicalName, decodeMailboxName, DELIMITER, MailboxNameError, newFolderName } from './mailbox-name.js';

/** Shared by CREATE, DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE: name checks and folder look-ups. */

/** The Unicode name of a folder to create, or NO [CANNOT] with the reason. */
export function validNewName(session: SessionApi, wire: string): string {
  try {
    return newFolderName(wire, session.deps.limits.maxMailboxNameLength);
  } catch (err) {
    if (err instanceof MailboxNameError) throw new ImapError('NO', err.message, 'CANNOT');
    throw err;
  }
}

/** An existing folder named on the wire, or NO [NONEXISTENT]. */
export async function existingFolder(session: SessionApi, wire: string): Promise<FolderRow> {
  const folder = await session.deps.store.getFolder(session.user!.id, canonicalName(decodeMailboxName(wire)));
  if (!folder) throw new ImapError('NO', 'Mailbox does not exist', 'NONEXISTENT');
  return folder;
}

/** Refuses, inside the unit of work, when `adding` more folders would pass the per-mailbox limit. */
export async function checkFolderLimit(session: SessionApi, tx: StoreTx, adding: number): Promise<void> {
  const max = session.deps.limits.maxFolders;
  if ((await tx.listFolders(session.user!.id)).length + adding > max) {
    throw new ImapError('NO', `Too many mailboxes (limit ${max})`, 'LIMIT');
  }
}

/** `a/b/c` → `['a', 'a/b']`. */
export function superiorNames(name: string): string[] {
  const levels = name.split(DELIMITER);
  return levels.slice(1).map((_, i) => levels.slice(0, i + 1).join(DELIMITER));
}
