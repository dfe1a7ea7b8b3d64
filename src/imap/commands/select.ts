import { AUTHENTICATED, defineCommand, ImapError, type Completion, type SessionApi } from '../command.js';
import { hasFlag, SYSTEM_FLAGS } from '../flags.js';
import { canonicalName, decodeMailboxName } from '../mailbox-name.js';
import { SelectedFolder } from '../selected.js';
import { atom, status, untagged } from '../serializer.js';

/**
 * SELECT and EXAMINE (RFC 3501 §6.3.1-2). A failed SELECT leaves no folder selected. The view is installed
 * before the messages are listed so that no change made meanwhile is missed.
 */
export async function openFolder(session: SessionApi, wireName: string, readOnly: boolean): Promise<Completion> {
  if (session.selected) {
    session.select(null);
    await session.send(status(null, 'OK', 'Previous mailbox closed', 'CLOSED'));
  }
  const name = canonicalName(decodeMailboxName(wireName));
  const { store } = session.deps;
  const folder = await store.getFolder(session.user!.id, name);
  if (!folder) throw new ImapError('NO', 'Mailbox does not exist', 'NONEXISTENT');
  const view = new SelectedFolder(folder, readOnly, [], session.id);
  session.select(view);
  const messages = await store.listMessages(folder.id);
  view.uids = messages.map((m) => m.uid);
  const keywords = new Set<string>();
  for (const m of messages) for (const f of m.flags) if (!f.startsWith('\\')) keywords.add(f);
  const flags = [...SYSTEM_FLAGS, ...keywords];
  const firstUnseen = messages.findIndex((m) => !hasFlag(m.flags, '\\Seen'));
  await session.send(untagged([atom('FLAGS'), flags.map(atom)]));
  await session.send(untagged([messages.length, atom('EXISTS')]));
  await session.send(untagged([0, atom('RECENT')]));
  if (firstUnseen >= 0) await session.send(status(null, 'OK', 'First unseen', `UNSEEN ${firstUnseen + 1}`));
  const permanent = readOnly ? '' : [...flags, '\\*'].join(' ');
  await session.send(status(null, 'OK', readOnly ? 'No permanent flags' : 'Flags permitted', `PERMANENTFLAGS (${permanent})`));
  await session.send(status(null, 'OK', 'UIDs valid', `UIDVALIDITY ${folder.uidValidity}`));
  await session.send(status(null, 'OK', 'Predicted next UID', `UIDNEXT ${folder.uidNext}`));
  return { code: readOnly ? 'READ-ONLY' : 'READ-WRITE', text: `${readOnly ? 'EXAMINE' : 'SELECT'} completed` };
}

export default defineCommand({
  name: 'SELECT',
  states: AUTHENTICATED,
  parse: (args) => ({ mailbox: args.text('mailbox name') }),
  run: (session, { mailbox }) => openFolder(session, mailbox, false),
});
