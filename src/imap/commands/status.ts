import { AUTHENTICATED, defineCommand, ImapError } from '../command.js';
import { hasFlag } from '../flags.js';
import { canonicalName, decodeMailboxName, encodeMailboxName } from '../mailbox-name.js';
import { atom, untagged, type Value } from '../serializer.js';
import { ImapSyntaxError } from '../tokenizer.js';

/**
 * STATUS (RFC 9051 §6.3.11): MESSAGES, RECENT (RFC 3501; always 0), UIDNEXT, UIDVALIDITY, UNSEEN, SIZE, and
 * HIGHESTMODSEQ (RFC 7162 §3.1.6).
 */

const ITEMS = ['MESSAGES', 'RECENT', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', 'SIZE', 'HIGHESTMODSEQ'] as const;
type Item = (typeof ITEMS)[number];

export default defineCommand({
  name: 'STATUS',
  states: AUTHENTICATED,
  parse: (args) => {
    const mailbox = args.text('mailbox name');
    const items = args.list('status data items').map((t) => {
      const name = t.type === 'atom' && !t.section ? ITEMS.find((i) => i === t.value.toUpperCase()) : undefined;
      if (!name) throw new ImapSyntaxError('Unsupported status data item');
      return name;
    });
    if (items.length === 0) throw new ImapSyntaxError('Empty status data item list');
    return { mailbox, items };
  },
  async run(session, { mailbox, items }) {
    const { store } = session.deps;
    const name = canonicalName(decodeMailboxName(mailbox));
    const folder = await store.getFolder(session.user!.id, name);
    if (!folder) throw new ImapError('NO', 'Mailbox does not exist', 'NONEXISTENT');
    const needsMessages = items.some((i) => i === 'MESSAGES' || i === 'UNSEEN' || i === 'SIZE');
    if (items.includes('HIGHESTMODSEQ')) session.enabled.add('CONDSTORE');
    const messages = needsMessages ? await store.listMessages(folder.id) : [];
    const value = (item: Item): number => {
      switch (item) {
        case 'MESSAGES':
          return messages.length;
        case 'RECENT':
          return 0;
        case 'UIDNEXT':
          return folder.uidNext;
        case 'UIDVALIDITY':
          return folder.uidValidity;
        case 'UNSEEN':
          return messages.filter((m) => !hasFlag(m.flags, '\\Seen')).length;
        case 'SIZE':
          return messages.reduce((sum, m) => sum + m.size, 0);
        case 'HIGHESTMODSEQ':
          return folder.highestModseq;
      }
    };
    const data: Value[] = items.flatMap((item) => [atom(item), value(item)]);
    await session.send(untagged([atom('STATUS'), encodeMailboxName(folder.name), data]));
    return { text: 'STATUS completed' };
  },
});
