import type { Args } from '../args.js';
import { AUTHENTICATED, defineCommand, type Completion, type SessionApi } from '../command.js';
import { existingFolder } from '../folders.js';

/**
 * SUBSCRIBE and UNSUBSCRIBE (RFC 9051 §6.3.7-8). The subscription is a property of an existing folder:
 * naming a folder that does not exist gets NO [NONEXISTENT] (see docs/imap-deviations.md).
 */

export function parseSubscribe(args: Args): { mailbox: string } {
  return { mailbox: args.text('mailbox name') };
}

export async function runSubscribe(session: SessionApi, mailbox: string, subscribed: boolean): Promise<Completion> {
  const folder = await existingFolder(session, mailbox);
  if (folder.subscribed !== subscribed) await session.deps.store.transaction((tx) => tx.setSubscribed(folder.id, subscribed));
  return { text: `${subscribed ? 'SUBSCRIBE' : 'UNSUBSCRIBE'} completed` };
}

export default defineCommand({
  name: 'SUBSCRIBE',
  states: AUTHENTICATED,
  parse: parseSubscribe,
  run: (session, { mailbox }) => runSubscribe(session, mailbox, true),
});
