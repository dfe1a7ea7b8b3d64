import type { FolderRow } from '../../store/types.js';
import { AUTHENTICATED, defineCommand, ImapError, type SessionApi } from '../command.js';
import { folderName, mailboxValue } from '../folders.js';
import { atom, untagged, type Value } from '../serializer.js';
import { ImapSyntaxError, type Token } from '../tokenizer.js';

/**
 * STATUS (RFC 9051 §6.3.11): MESSAGES, RECENT (RFC 3501; always 0, still answered in IMAP4rev2 sessions),
 * UIDNEXT, UIDVALIDITY, UNSEEN, DELETED (RFC 9051), SIZE (RFC 8438), HIGHESTMODSEQ (RFC 7162 §3.1.6) and
 * APPENDLIMIT (RFC 7889 §4: the one limit of every folder, `maxLiteralSize`).
 */

const ITEMS = ['MESSAGES', 'RECENT', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', 'DELETED', 'SIZE', 'HIGHESTMODSEQ', 'APPENDLIMIT'] as const;
type Item = (typeof ITEMS)[number];

export type StatusItem = Item;

export function parseStatusItems(list: readonly Token[]): StatusItem[] {
  const items = list.map((t) => {
    const name = t.type === 'atom' && !t.section ? ITEMS.find((i) => i === t.value.toUpperCase()) : undefined;
    if (!name) throw new ImapSyntaxError('Unsupported status data item');
    return name;
  });
  if (items.length === 0) throw new ImapSyntaxError('Empty status data item list');
  return items;
}

/** Writes `* STATUS name (item value ...)` for one folder (STATUS, and LIST RETURN (STATUS …) of RFC 5819). */
export async function sendStatus(session: SessionApi, folder: FolderRow, items: readonly StatusItem[]): Promise<void> {
  const needsMessages = items.some((i) => i === 'MESSAGES' || i === 'UNSEEN' || i === 'DELETED' || i === 'SIZE');
  if (items.includes('HIGHESTMODSEQ')) session.enabled.add('CONDSTORE');
  const stats = needsMessages ? await session.deps.store.folderStats(folder.id) : { messages: 0, unseen: 0, deleted: 0, bytes: 0 };
  const value = (item: Item): number => {
    switch (item) {
      case 'MESSAGES':
        return stats.messages;
      case 'RECENT':
        return 0;
      case 'UIDNEXT':
        return folder.uidNext;
      case 'UIDVALIDITY':
        return folder.uidValidity;
      case 'UNSEEN':
        return stats.unseen;
      case 'DELETED':
        return stats.deleted;
      case 'SIZE':
        return stats.bytes;
      case 'HIGHESTMODSEQ':
        return folder.highestModseq;
      case 'APPENDLIMIT':
        return session.deps.limits.maxLiteralSize;
    }
  };
  const data: Value[] = items.flatMap((item) => [atom(item), value(item)]);
  await session.send(untagged([atom('STATUS'), mailboxValue(session, folder.name), data]));
}

export default defineCommand({
  name: 'STATUS',
  states: AUTHENTICATED,
  parse: (args) => ({ mailbox: args.text('mailbox name'), items: parseStatusItems(args.list('status data items')) }),
  async run(session, { mailbox, items }) {
    const folder = await session.deps.store.getFolder(session.user!.id, folderName(session, mailbox));
    if (!folder) throw new ImapError('NO', 'Mailbox does not exist', 'NONEXISTENT');
    await sendStatus(session, folder, items);
    return { text: 'STATUS completed' };
  },
});
