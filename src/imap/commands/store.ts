import { appendAudit } from '../../audit/journal.js';
import type { FlagChange } from '../../store/types.js';
import type { Args } from '../args.js';
import { defineCommand, ImapError, SELECTED, type Completion, type SessionApi } from '../command.js';
import { addFlags, MAX_FLAGS_PER_MESSAGE, parseFlagTokens, removeFlags, sameFlags } from '../flags.js';
import { resolveSequenceNumbers, resolveUids, type SeqRange } from '../sequence.js';
import { atom, untagged } from '../serializer.js';
import { compressSet } from './search.js';
import { ImapSyntaxError, type Token } from '../tokenizer.js';

/**
 * STORE and UID STORE (RFC 9051 §6.4.6): FLAGS, +FLAGS, -FLAGS, each with .SILENT, and the CONDSTORE
 * UNCHANGEDSINCE modifier (RFC 7162 §3.1.3). All changes commit in one unit of work with their audit record;
 * other sessions hear of them after the commit.
 */

export interface StoreArgs {
  set: SeqRange[];
  /** `(UNCHANGEDSINCE n)` (RFC 7162 §3.1.3): messages whose MODSEQ is above n are left alone and reported. */
  unchangedSince: number | null;
  mode: 'set' | 'add' | 'remove';
  silent: boolean;
  flags: string[];
}

export function parseStore(args: Args): StoreArgs {
  const set = args.sequenceSet();
  let unchangedSince: number | null = null;
  if (args.peek()?.type === 'list') {
    const [name, value, extra] = args.list('store modifiers');
    if (name?.type !== 'atom' || name.value.toUpperCase() !== 'UNCHANGEDSINCE' || value?.type !== 'atom' || !/^\d{1,19}$/.test(value.value) || extra) {
      throw new ImapSyntaxError('Unsupported store modifier');
    }
    unchangedSince = Number(value.value);
  }
  const item = args.atom('store data item').toUpperCase();
  const m = /^([+-]?)FLAGS(\.SILENT)?$/.exec(item);
  if (!m) throw new ImapSyntaxError(`Unsupported store data item ${item.slice(0, 40)}`);
  const first = args.token('flags');
  const tokens: Token[] = first.type === 'list' ? first.items : [first];
  if (first.type !== 'list') while (args.remaining > 0) tokens.push(args.token('flag'));
  return { set, unchangedSince, mode: m[1] === '+' ? 'add' : m[1] === '-' ? 'remove' : 'set', silent: !!m[2], flags: parseFlagTokens(tokens) };
}

export async function runStore(session: SessionApi, { set, unchangedSince, mode, silent, flags }: StoreArgs, byUid: boolean): Promise<Completion> {
  const view = session.selected!;
  const user = session.user!;
  if (view.readOnly) throw new ImapError('NO', 'Mailbox is read-only');
  const indexes = byUid ? resolveUids(set, view.uids) : resolveSequenceNumbers(set, view.exists);
  if (indexes === null) throw new ImapError('BAD', 'Invalid message sequence number');
  const { store, notifier } = session.deps;
  if (unchangedSince !== null) session.enabled.add('CONDSTORE');
  const condstore = session.enabled.has('CONDSTORE');
  // With QRESYNC every FETCH a STORE causes names its UID (RFC 7162 §3.2, from RFC 5162 erratum 1807).
  const withUid = byUid || session.enabled.has('QRESYNC');
  const all = await store.getMessages(view.folder.id, indexes.map((i) => view.uids[i]!));
  const modified = unchangedSince === null ? [] : all.filter((row) => row.modseq > unchangedSince);
  const rows = unchangedSince === null ? all : all.filter((row) => row.modseq <= unchangedSince);
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
            // Re-checked under the folder lock: another session may have changed it since it was read.
            const change = await tx.setFlags(view.folder.id, row.uid, next, unchangedSince ?? undefined);
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
  const lost = changed.filter(({ row }) => !changes.some((c) => c.uid === row.uid)).map(({ row }) => row);
  if (!silent) {
    const final = new Map(rows.map((row) => [row.uid, { flags: row.flags, modseq: row.modseq }]));
    for (const change of changes) final.set(change.uid, { flags: change.flags, modseq: change.modseq });
    for (const row of rows) {
      if (lost.includes(row)) continue;
      const { flags: now, modseq } = final.get(row.uid)!;
      const data = [atom('FLAGS'), now.map(atom), ...(withUid ? [atom('UID'), row.uid] : []), ...(condstore ? [atom('MODSEQ'), [modseq]] : [])];
      await session.send(untagged([view.seqOf(row.uid), atom('FETCH'), data]));
    }
  }
  const refused = [...modified, ...lost].map((row) => (byUid ? row.uid : view.seqOf(row.uid))).sort((a, b) => a - b);
  const text = `${byUid ? 'UID STORE' : 'STORE'} completed`;
  return refused.length > 0 ? { code: `MODIFIED ${compressSet(refused)}`, text: 'Some messages were modified since' } : { text };
}

export default defineCommand({
  name: 'STORE',
  states: SELECTED,
  expungeAllowed: false,
  parse: parseStore,
  run: (session, args) => runStore(session, args, false),
});
