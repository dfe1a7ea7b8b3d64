import type { Args } from '../args.js';
import { defineCommand, SELECTED, type Completion, type SessionApi } from '../command.js';
import { charsetArgument, parseSearchKeys, type SearchKey } from '../search/keys.js';
import { atom, untagged } from '../serializer.js';
import { sentDate } from '../sort/sort.js';
import { formatThreads, threadOrderedSubject, threadReferences, type ThreadMessage } from '../sort/thread.js';
import { ImapSyntaxError, type Token } from '../tokenizer.js';
import { matchingWithMeta } from './sort.js';

/** THREAD and UID THREAD (RFC 5256): ORDEREDSUBJECT and REFERENCES over the SEARCH result. */

export const THREAD_ALGORITHMS = ['ORDEREDSUBJECT', 'REFERENCES'] as const;

export interface ThreadArgs {
  algorithm: (typeof THREAD_ALGORITHMS)[number];
  charset: string;
  key: SearchKey;
}

export function parseThread(args: Args): ThreadArgs {
  const name = args.atom('threading algorithm').toUpperCase();
  const algorithm = THREAD_ALGORITHMS.find((a) => a === name);
  if (!algorithm) throw new ImapSyntaxError('Unsupported threading algorithm');
  const charset = charsetArgument(args.token('charset'));
  const tokens: Token[] = [];
  while (args.remaining > 0) tokens.push(args.token('search key'));
  return { algorithm, charset, key: parseSearchKeys(tokens) };
}

export async function runThread(session: SessionApi, { algorithm, charset, key }: ThreadArgs, byUid: boolean): Promise<Completion> {
  const view = session.selected!;
  const messages: ThreadMessage[] = (await matchingWithMeta(session, charset, key)).map((m) => ({
    id: byUid ? view.uids[m.seq - 1]! : m.seq,
    date: sentDate(m),
    messageId: m.meta.thread.messageId,
    inReplyTo: m.meta.thread.inReplyTo,
    references: m.meta.thread.references,
    subject: m.meta.thread.subject ?? m.meta.envelope.subject,
  }));
  const threads = algorithm === 'REFERENCES' ? threadReferences(messages) : threadOrderedSubject(messages);
  const text = formatThreads(threads);
  await session.send(untagged(text ? [atom('THREAD'), atom(text)] : [atom('THREAD')]));
  return { text: `${byUid ? 'UID THREAD' : 'THREAD'} completed` };
}

export default defineCommand({
  name: 'THREAD',
  states: SELECTED,
  expungeAllowed: false,
  parse: parseThread,
  run: (session, args) => runThread(session, args, false),
});
