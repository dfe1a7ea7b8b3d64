import { appendAudit } from '../../audit/journal.js';
import type { FlagChange } from '../../store/types.js';
import type { Args } from '../args.js';
import { defineCommand, ImapError, SELECTED, type Completion, type SessionApi } from '../command.js';
import { addFlags, MAX_FLAGS_PER_MESSAGE, parseFlagTokens, removeFlags, sameFlags } from '../flags.js';
import { resolveSequenceNumbers, resolveUids, type SeqRange } from '../sequence.js';
import { atom, untagged } from '../serializer.js';
import { ImapSyntaxError, type Token } from '../tokenizer.js';

/**
 * STORE and UID STORE (RFC 9051 §6.4.6): FLAGS, +FLAGS, -FLAGS, each with .SILENT. All changes commit in one
 * unit of work with their audit record; other sessions hear of them after the commit.
 */

export interface StoreArgs {
  set: SeqRange[];
  mode: 'set' | 'add' | 'remove';
  silent: boolean;
  flags: string[];
}

export function parseStore(args: Args): StoreArgs {
  const set = args.sequenceSet();
  const item = args.atom('store data item').toUpperCase();
  const m = /^([+-]?)FLAGS(\.SILENT)?$/.exec(item);
  if (!m) throw new ImapSyntaxError(`Unsupported store data item ${item.slice(0, 40)}`);
  const first = args.token('flags');
  const tokens: Token[] = first.type === 'list' ? first.items : [first];
  if (first.type !== 'list') while (args.remaining > 0) tokens.push(args.token('flag'));
  return { set, mode: m[1] === '+' ? 'add' : m[1] === '-' ? 'remove' : 'set', silent: !!m[2], flags: parseFlagTokens(tokens) };
}

export async function runStore(session: SessionApi, { set, mode, silent, flags }: StoreArgs, byUid: boolean): Promise<Completion> {
  const view = session.selected!;
  const user = session.user!;
  if (view.readOnly) throw new ImapError('NO', 'Mailbox is read-only');
  const indexes = byUid ? resolveUids(set, view.uids) : resolveSequenceNumbers(set, view.exists);
  if (indexes === null) throw new ImapError('BAD', 'Invalid message sequence number');
  const { store, notifier } = session.deps;
  const rows = await store.getMessages(view.folder.id, indexes.map((i) => view.uids[i]!));
  const wanted = rows.map((row) => {
    const next = mode === 'set' ? flags : mode === 'add' ? addFlags(row.flags, flags) : removeFlags(row.flags, flags);
    if (next.length > MAX_FLAGS_PER_MESSAGE) throw new ImapError('NO', `At most ${MAX_FLAGS_PER_MESSAGE} flags per message`, 'LIMIT');
    return { row, next };
  });
  const changed = wanted.filter(({ row, next }) => !sameFlags(row.flags, next));
  const changes: FlagChange[] =
    changed.length === 0
      ? []
      : await store.transaction(async (tx) => {
          const out: FlagChange[] = [];
          for (const { row, next } of changed) {
            const change = await tx.setFlags(view.folder.id, row.uid, next);
            if (change) out.push(change);
          }
          await appendAudit(tx, {
            actor: user.address,
            action: 'flag',
            object: user.address,
            outcome: 'ok',
            detail: { protocol: 'imap', folder: view.folder.name, messages: out.length },
          });
          return out;
        });
  for (const change of changes) {
    notifier.publish({ kind: 'flags', mailboxId: user.id, folderId: view.folder.id, uid: change.uid, modseq: change.modseq, flags: change.flags, origin: session.id });
  }
  if (!silent) {
    const final = new Map(rows.map((row) => [row.uid, row.flags]));
    for (const change of changes) final.set(change.uid, change.flags);
    for (const row of rows) {
      const data = [atom('FLAGS'), final.get(row.uid)!.map(atom), ...(byUid ? [atom('UID'), row.uid] : [])];
      await session.send(untagged([view.seqOf(row.uid), atom('FETCH'), data]));
    }
  }
  return { text: `${byUid ? 'UID STORE' : 'STORE'} completed` };
}

export default defineCommand({
  name: 'STORE',
  states: SELECTED,
  expungeAllowed: false,
  parse: parseStore,
  run: (session, args) => runStore(session, args, false),
});
