import type { FolderRow, StoreTx } from '../store/types.js';
import { ImapError, type SessionApi } from './command.js';
import { canonicalName, DELIMITER, MailboxNameError, nameFromWire, nameOnWire, newFolderName } from './mailbox-name.js';
import { utf8Names } from './modes.js';
import { utf8Text, type Value } from './serializer.js';

/**
 * Shared by the commands that name folders: name checks, folder look-ups, and names in responses, in the
 * session's encoding (modified UTF-7, or UTF-8 after ENABLE UTF8=ACCEPT or IMAP4rev2).
 */

/** The canonical Unicode name a client wrote; a name not in the session's encoding gets BAD. */
export function folderName(session: SessionApi, wire: string): string {
  return canonicalName(nameFromWire(wire, utf8Names(session)));
}

/** A folder name as a response value for this session. */
export function mailboxValue(session: SessionApi, name: string): Value {
  return utf8Text(nameOnWire(name, utf8Names(session)));
}

/** The Unicode name of a folder to create, or NO [CANNOT] with the reason. */
export function validNewName(session: SessionApi, wire: string): string {
  try {
    return newFolderName(wire, session.deps.limits.maxMailboxNameLength, utf8Names(session));
  } catch (err) {
    if (err instanceof MailboxNameError) throw new ImapError('NO', err.message, 'CANNOT');
    throw err;
  }
}

/** An existing folder named on the wire, or NO [NONEXISTENT]. */
export async function existingFolder(session: SessionApi, wire: string): Promise<FolderRow> {
  const folder = await session.deps.store.getFolder(session.user!.id, folderName(session, wire));
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
