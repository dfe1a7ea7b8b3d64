import type { Args } from '../args.js';
import { AUTHENTICATED, defineCommand, ImapError, type Completion, type SessionApi } from '../command.js';
import { folderName, mailboxValue } from '../folders.js';
import { SYSTEM_FLAGS } from '../flags.js';
import { folderAttributes } from '../list-folders.js';
import { DELIMITER } from '../mailbox-name.js';
import { isRev2 } from '../modes.js';
import { SelectedFolder } from '../selected.js';
import { parseSequenceSet, type SeqRange } from '../sequence.js';
import { atom, status, untagged, utf8Text, type Value } from '../serializer.js';
import { ImapSyntaxError, type Token } from '../tokenizer.js';
import { sendVanishedSince } from '../vanished.js';

/**
 * SELECT and EXAMINE (RFC 3501 §6.3.1-2, RFC 9051 §6.3.2-3, RFC 7162 §3.1.2 HIGHESTMODSEQ, §3.2.5 QRESYNC). A
 * failed SELECT leaves no folder selected. The view is installed before the messages are listed so that no
 * change made meanwhile is missed. An IMAP4rev1 session gets `* 0 RECENT` and `OK [UNSEEN n]`; an IMAP4rev2
 * session gets neither, and a `* LIST` of the folder instead (with OLDNAME when the name it wrote was not in
 * Unicode normal form C).
 */
export interface SelectArgs {
  mailbox: string;
  condstore: boolean;
  qresync: QresyncParameter | null;
}

/** `QRESYNC (uidvalidity modseq [known-uids [(seq-set uid-set)]])` (RFC 7162 §3.2.5). */
export interface QresyncParameter {
  uidValidity: number;
  modseq: number;
  /** The UIDs the client knows: only their removals are reported. Null: all of them. */
  knownUids: SeqRange[] | null;
}

function number(token: Token | undefined, what: string, min: number): number {
  if (token?.type !== 'atom' || token.section || !/^\d{1,19}$/.test(token.value)) throw new ImapSyntaxError(`Invalid ${what}`);
  const n = Number(token.value);
  if (!Number.isSafeInteger(n) || n < min) throw new ImapSyntaxError(`Invalid ${what}`);
  return n;
}

function uidSet(token: Token | undefined, what: string): SeqRange[] {
  if (token?.type !== 'atom' || token.section) throw new ImapSyntaxError(`Invalid ${what}`);
  const ranges = parseSequenceSet(token.value);
  if (ranges.some((r) => r.from === '*' || r.to === '*')) throw new ImapSyntaxError(`Invalid ${what}: "*" is not allowed`);
  return ranges;
}

/** How many numbers a set without `*` names. */
function setSize(ranges: readonly SeqRange[]): number {
  return ranges.reduce((n, r) => n + Math.abs(Number(r.to) - Number(r.from)) + 1, 0);
}

function parseQresync(items: readonly Token[]): QresyncParameter {
  const [validity, modseq, known, match, extra] = items;
  if (extra) throw new ImapSyntaxError('Too many QRESYNC parameters');
  const parameter: QresyncParameter = {
    uidValidity: number(validity, 'UIDVALIDITY', 1),
    modseq: number(modseq, 'mod-sequence', 1),
    knownUids: known ? uidSet(known, 'known UIDs') : null,
  };
  if (match) {
    // seq-match-data: the server keeps every expunge of a folder, so it never needs it; it is only checked.
    if (match.type !== 'list' || match.items.length !== 2) throw new ImapSyntaxError('Invalid sequence match data');
    const seqs = setSize(uidSet(match.items[0], 'message sequence numbers'));
    const uids = setSize(uidSet(match.items[1], 'UIDs'));
    if (seqs !== uids) throw new ImapSyntaxError('Sequence match data: the two sets differ in size');
  }
  return parameter;
}

/** `mailbox [(CONDSTORE / QRESYNC (...))]` (RFC 7162 §3.1.8: CONDSTORE turns CONDSTORE on). */
export function parseSelect(args: Args): SelectArgs {
  const mailbox = args.text('mailbox name');
  let condstore = false;
  let qresync: QresyncParameter | null = null;
  if (args.remaining > 0) {
    const params = args.list('select parameters');
    for (let i = 0; i < params.length; i++) {
      const t = params[i]!;
      const name = t.type === 'atom' && !t.section ? t.value.toUpperCase() : '';
      const value = params[i + 1];
      if (name === 'CONDSTORE') condstore = true;
      else if (name === 'QRESYNC' && value?.type === 'list' && !qresync) {
        qresync = parseQresync(value.items);
        i++;
      } else throw new ImapSyntaxError('Unsupported select parameter');
    }
  }
  return { mailbox, condstore, qresync };
}

export async function openFolder(session: SessionApi, { mailbox: wireName, condstore, qresync }: SelectArgs, readOnly: boolean): Promise<Completion> {
  if (qresync && !session.enabled.has('QRESYNC')) throw new ImapError('BAD', 'QRESYNC is not enabled (ENABLE QRESYNC first)');
  // Held before the previous selection lets go of it: selecting the same folder again keeps its state.
  const previous = session.selected ? session.folders.acquire(session.user!.id, session.selected.folder.id) : null;
  try {
    if (session.selected) {
      session.select(null);
      await session.send(status(null, 'OK', 'Previous mailbox closed', 'CLOSED'));
    }
    if (condstore) session.enabled.add('CONDSTORE');
    const name = folderName(session, wireName);
    const folder = await session.deps.store.getFolder(session.user!.id, name);
    if (!folder) throw new ImapError('NO', 'Mailbox does not exist', 'NONEXISTENT');
    const view = new SelectedFolder(folder, readOnly, [], session.id, session.folders.acquire(session.user!.id, folder.id));
    session.select(view);
  } finally {
    if (previous) session.folders.release(previous);
  }
  const view = session.selected!;
  const folder = view.folder;
  const { store } = session.deps;
  const messages = await view.messages.list();
  const { uids, keywords, firstUnseen } = view.messages.overview(messages);
  view.shareUids(uids);
  const flags = [...SYSTEM_FLAGS, ...keywords];
  await session.send(untagged([atom('FLAGS'), flags.map(atom)]));
  await session.send(untagged([messages.length, atom('EXISTS')]));
  if (isRev2(session)) {
    const line: Value[] = [atom('LIST'), folderAttributes(await store.listFolders(session.user!.id), folder).map(atom), DELIMITER, mailboxValue(session, folder.name)];
    if (wireName.normalize('NFC') !== wireName) line.push(['OLDNAME', [utf8Text(wireName)]]);
    await session.send(untagged(line));
  } else {
    await session.send(untagged([0, atom('RECENT')]));
    if (firstUnseen >= 0) await session.send(status(null, 'OK', 'First unseen', `UNSEEN ${firstUnseen + 1}`));
  }
  const permanent = readOnly ? '' : [...flags, '\\*'].join(' ');
  await session.send(status(null, 'OK', readOnly ? 'No permanent flags' : 'Flags permitted', `PERMANENTFLAGS (${permanent})`));
  await session.send(status(null, 'OK', 'UIDs valid', `UIDVALIDITY ${folder.uidValidity}`));
  await session.send(status(null, 'OK', 'Predicted next UID', `UIDNEXT ${folder.uidNext}`));
  if (session.enabled.has('CONDSTORE')) await session.send(status(null, 'OK', 'Highest', `HIGHESTMODSEQ ${folder.highestModseq}`));
  // A UIDVALIDITY the client did not know means its cache is void: the parameter is then ignored.
  if (qresync && qresync.uidValidity === folder.uidValidity) {
    await sendVanishedSince(store, folder.id, qresync.modseq, qresync.knownUids, (uid) => view.seqOf(uid) > 0, (data) => session.send(data));
    for (const m of messages) {
      if (m.modseq <= qresync.modseq) continue;
      const seq = view.seqOf(m.uid);
      if (seq > 0) await session.send(untagged([seq, atom('FETCH'), [atom('UID'), m.uid, atom('FLAGS'), m.flags.map(atom), atom('MODSEQ'), [m.modseq]]]));
    }
  }
  return { code: readOnly ? 'READ-ONLY' : 'READ-WRITE', text: `${readOnly ? 'EXAMINE' : 'SELECT'} completed` };
}

export default defineCommand({
  name: 'SELECT',
  states: AUTHENTICATED,
  parse: parseSelect,
  run: (session, args) => openFolder(session, args, false),
});
