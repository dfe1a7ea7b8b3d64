import type { Args } from '../args.js';
import { defineCommand, SELECTED, type Completion, type SessionApi } from '../command.js';
import { charsetArgument, parseSearchKeys, type SearchKey } from '../search/keys.js';
import { atom, untagged } from '../serializer.js';
import { parseSortCriteria, sortMessages, type SortCriterion, type SortMessage } from '../sort/sort.js';
import type { Token } from '../tokenizer.js';
import { findMessages } from './search.js';

/** SORT and UID SORT (RFC 5256): the SEARCH result ordered by the criteria; sealed metadata opened per match. */

export interface SortArgs {
  criteria: SortCriterion[];
  charset: string;
  key: SearchKey;
}

export function parseSort(args: Args): SortArgs {
  const criteria = parseSortCriteria(args.list('sort criteria'));
  const charset = charsetArgument(args.token('charset'));
  const tokens: Token[] = [];
  while (args.remaining > 0) tokens.push(args.token('search key'));
  return { criteria, charset, key: parseSearchKeys(tokens) };
}

/** The matching messages with their opened metadata, for SORT and THREAD. */
export async function matchingWithMeta(session: SessionApi, charset: string, key: SearchKey): Promise<SortMessage[]> {
  const { found } = await findMessages(session, charset, key);
  const view = session.selected!;
  const { store, mail } = session.deps;
  const out: SortMessage[] = [];
  for (let i = 0; i < found.length; i += 200) {
    const batch = found.slice(i, i + 200);
    const rows = await store.getMessages(view.folder.id, batch.map((m) => m.uid));
    for (const row of rows) {
      out.push({ seq: view.seqOf(row.uid), internalDate: row.internalDate, size: row.size, meta: mail.openMeta(session.user!, row) });
    }
  }
  return out;
}

export async function runSort(session: SessionApi, { criteria, charset, key }: SortArgs, byUid: boolean): Promise<Completion> {
  const view = session.selected!;
  const sorted = sortMessages(await matchingWithMeta(session, charset, key), criteria);
  await session.send(untagged([atom('SORT'), ...sorted.map((m) => (byUid ? view.uids[m.seq - 1]! : m.seq))]));
  return { text: `${byUid ? 'UID SORT' : 'SORT'} completed` };
}

export default defineCommand({
  name: 'SORT',
  states: SELECTED,
  expungeAllowed: false,
  parse: parseSort,
  run: (session, args) => runSort(session, args, false),
});
