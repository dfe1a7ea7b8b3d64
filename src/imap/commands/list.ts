import { AUTHENTICATED, defineCommand, type SessionApi } from '../command.js';
import { listFolders } from '../list-folders.js';
import { decodeMailboxName, DELIMITER, encodeMailboxName } from '../mailbox-name.js';
import { atom, untagged } from '../serializer.js';

/** LIST (RFC 3501 §6.3.8) with `*`/`%`, special-use and children attributes (RFC 6154, RFC 3348). */

export async function runList(session: SessionApi, kind: 'LIST' | 'LSUB', reference: string, pattern: string): Promise<void> {
  if (pattern === '' && kind === 'LIST') {
    await session.send(untagged([atom('LIST'), [atom('\\Noselect')], DELIMITER, '']));
    return;
  }
  const folders = await session.deps.store.listFolders(session.user!.id);
  for (const entry of listFolders(folders, decodeMailboxName(reference), decodeMailboxName(pattern), kind === 'LSUB')) {
    await session.send(untagged([atom(kind), entry.attributes.map(atom), DELIMITER, encodeMailboxName(entry.name)]));
  }
}

export default defineCommand({
  name: 'LIST',
  states: AUTHENTICATED,
  parse: (args) => ({ reference: args.text('reference'), pattern: args.text('mailbox pattern') }),
  async run(session, { reference, pattern }) {
    await runList(session, 'LIST', reference, pattern);
    return { text: 'LIST completed' };
  },
});
