import type { Args } from '../args.js';
import { AUTHENTICATED, defineCommand, ImapError, type Completion, type SessionApi } from '../command.js';
import { hasFlag, SYSTEM_FLAGS } from '../flags.js';
import { canonicalName, decodeMailboxName } from '../mailbox-name.js';
import { SelectedFolder } from '../selected.js';
import { atom, status, untagged } from '../serializer.js';
import { ImapSyntaxError } from '../tokenizer.js';

/**
 * SELECT and EXAMINE (RFC 3501 §6.3.1-2, RFC 7162 §3.1.2 HIGHESTMODSEQ). A failed SELECT leaves no folder
 * selected. The view is installed before the messages are listed so that no change made meanwhile is missed.
 */
export interface SelectArgs {
  mailbox: string;
  condstore: boolean;
}

/** `mailbox [(CONDSTORE)]` (RFC 7162 §3.1.8: the parameter turns CONDSTORE on). */
export function parseSelect(args: Args): SelectArgs {
  const mailbox = args.text('mailbox name');
  let condstore = false;
  if (args.remaining > 0) {
    for (const t of args.list('select parameters')) {
      if (t.type === 'atom' && !t.section && t.value.toUpperCase() === 'CONDSTORE') condstore = true;
      else throw new ImapSyntaxError('Unsupported select parameter');
    }
  }
  return { mailbox, condstore };
}

export async function openFolder(session: SessionApi, { mailbox: wireName, condstore }: SelectArgs, readOnly: boolean): Promise<Completion> {
  if (session.selected) {
    session.select(null);
    await session.send(status(null, 'OK', 'Previous mailbox closed', 'CLOSED'));
  }
  if (condstore) session.enabled.add('CONDSTORE');
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
  if (session.enabled.has('CONDSTORE')) await session.send(status(null, 'OK', 'Highest', `HIGHESTMODSEQ ${folder.highestModseq}`));
  return { code: readOnly ? 'READ-ONLY' : 'READ-WRITE', text: `${readOnly ? 'EXAMINE' : 'SELECT'} completed` };
}

export default defineCommand({
  name: 'SELECT',
  states: AUTHENTICATED,
  parse: parseSelect,
  run: (session, args) => openFolder(session, args, false),
});
