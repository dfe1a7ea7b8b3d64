import { appendAudit, audit, type AuditEvent } from '../../audit/journal.js';
import type { MessageRow } from '../../store/types.js';
import type { Args } from '../args.js';
import { ConnectionClosedError, defineCommand, ImapError, ResponseBrokenError, SELECTED, type Completion, type SessionApi } from '../command.js';
import { isPreviewModifierList, marksSeen, needsBody, needsMeta, onlyWholeBodies, parseFetchItems, parsePreviewModifiers, type FetchItem } from '../fetch-items.js';
import { fetchValues, summaryFetchLine, UnknownCteError } from '../fetch-response.js';
import { FolderMessages } from '../folder-messages.js';
import { addFlags, hasFlag } from '../flags.js';
import { utf8Names } from '../modes.js';
import { resolveSequenceNumbers, resolveUids, type SeqRange } from '../sequence.js';
import { atom, untaggedLines, untaggedPieces, type Piece } from '../serializer.js';
import { ImapSyntaxError } from '../tokenizer.js';
import { sendVanishedSince } from '../vanished.js';

/**
 * FETCH and UID FETCH (RFC 9051 §6.4.5, §6.4.9), with PREVIEW (RFC 8970: computed from the opened message,
 * LAZY or not, and never sets \Seen). Messages are read in batches so memory stays bounded by
 * one batch. A non-PEEK body section sets \Seen (in a read-write selection), committed before the
 * responses, which then carry FLAGS. One audit record per command names how many bodies were read (written with the \\Seen change when there is one). With
 * QRESYNC, `UID FETCH … (CHANGEDSINCE n VANISHED)` first reports the UIDs of the set expunged since n
 * (RFC 7162 §3.2.6).
 */

const BATCH = 50;

export interface FetchArgs {
  set: SeqRange[];
  items: FetchItem[];
  /** `(CHANGEDSINCE n)` (RFC 7162 §3.1.4): only messages whose MODSEQ is above n. */
  changedSince: number | null;
  /** `VANISHED` (RFC 7162 §3.2.6, UID FETCH with CHANGEDSINCE only). */
  vanished: boolean;
}

export function parseFetch(args: Args): FetchArgs {
  const set = args.sequenceSet();
  let items = parseFetchItems(args.token('fetch attributes'));
  // `FETCH 1 PREVIEW (LAZY)`: the list belongs to PREVIEW, not to FETCH's modifiers.
  if (items.length === 1 && items[0]!.kind === 'PREVIEW' && isPreviewModifierList(args.peek())) {
    items = [{ kind: 'PREVIEW', lazy: parsePreviewModifiers(args.list('preview modifiers')) }];
  }
  let changedSince: number | null = null;
  let vanished = false;
  if (args.remaining > 0) {
    const modifiers = args.list('fetch modifiers');
    for (let i = 0; i < modifiers.length; i++) {
      const name = modifiers[i];
      const value = modifiers[i + 1];
      if (name?.type === 'atom' && !name.section && name.value.toUpperCase() === 'VANISHED' && !vanished) {
        vanished = true;
        continue;
      }
      if (name?.type !== 'atom' || name.value.toUpperCase() !== 'CHANGEDSINCE' || value?.type !== 'atom' || !/^\d{1,19}$/.test(value.value)) {
        throw new ImapSyntaxError('Unsupported fetch modifier');
      }
      changedSince = Number(value.value);
      i++;
    }
  }
  if (vanished && changedSince === null) throw new ImapSyntaxError('VANISHED needs CHANGEDSINCE');
  return { set, items, changedSince, vanished };
}

/** Responses of a FETCH without bodies go out in chunks of this many lines: one TLS record each. */
const LINES_PER_SEND = 512;

/**
 * FETCH of summary and metadata items only (FLAGS, UID, MODSEQ, INTERNALDATE, RFC822.SIZE, ENVELOPE,
 * BODYSTRUCTURE: what clients ask to list and resynchronise a folder): summaries come from the folder's shared
 * state and metadata from the cache of opened metadata; only the rows whose metadata is not kept are read.
 */
async function sendWithoutBodies(session: SessionApi, items: readonly FetchItem[], indexes: readonly number[], changedSince: number | null, withMeta: boolean): Promise<void> {
  const view = session.selected!;
  const user = session.user!;
  const { store, mail } = session.deps;
  const messages = await view.messages.list();
  const utf8 = utf8Names(session);
  for (let i = 0; i < indexes.length; i += LINES_PER_SEND) {
    const batch = indexes.slice(i, i + LINES_PER_SEND);
    // Expunged by another session since this one last reported: nothing to say about it now.
    const summaries = batch.map((index) => {
      const uid = view.uids[index]!;
      // The folder's list and the session's view agree but for changes not yet reported to this session.
      const same = messages[index];
      return same?.uid === uid ? same : FolderMessages.find(messages, uid);
    });
    const cached = withMeta ? summaries.map((m) => (m !== null ? mail.cachedMeta(user, { ...m, folderId: view.folder.id }) : undefined)) : [];
    const unopened = withMeta ? summaries.filter((m, j) => m !== null && !cached[j]).map((m) => m!.uid) : [];
    const rows = new Map((unopened.length > 0 ? await store.getMessages(view.folder.id, unopened) : []).map((r) => [r.uid, r]));
    // Lines in order: the summary-only ones written as text, the others encoded from values.
    const out: Buffer[] = [];
    let text = '';
    batch.forEach((index, j) => {
      const summary = summaries[j];
      if (!summary || (changedSince !== null && summary.modseq <= changedSince)) return;
      const line = withMeta ? null : summaryFetchLine(index + 1, items, summary);
      if (line !== null) {
        text += line;
        return;
      }
      let meta = null;
      if (withMeta) {
        const row = rows.get(summary.uid);
        meta = cached[j] ?? (row ? mail.openMeta(user, row) : null);
        if (!meta) return;
      }
      if (text) out.push(Buffer.from(text, 'latin1'));
      text = '';
      out.push(untaggedLines([[index + 1, atom('FETCH'), fetchValues(items, summary, meta, null, { utf8 })]]));
    });
    if (text) out.push(Buffer.from(text, 'latin1'));
    if (out.length > 0) await session.send(out.length === 1 ? out[0]! : Buffer.concat(out));
  }
}

/**
 * Writes a response; a streamed literal is read from its source as it goes out. Once part of a literal is sent,
 * a source that fails (a blob that does not open to the end) or does not hold the announced size breaks the
 * protocol stream: `ResponseBrokenError` then cuts the connection.
 */
async function sendPieces(session: SessionApi, pieces: readonly Piece[]): Promise<void> {
  for (const piece of pieces) {
    if (Buffer.isBuffer(piece)) {
      await session.send(piece);
      continue;
    }
    let sent = 0;
    try {
      for await (const chunk of piece.open()) {
        if (sent + chunk.length > piece.size) throw new Error(`the message is longer than its recorded size ${piece.size}`);
        await session.send(chunk);
        sent += chunk.length;
      }
    } catch (err) {
      if (err instanceof ConnectionClosedError) throw err;
      throw new ResponseBrokenError(`message body broken off after ${sent} of ${piece.size} bytes`, { cause: err });
    }
    if (sent !== piece.size) throw new ResponseBrokenError(`message body of ${sent} bytes, ${piece.size} announced`);
  }
}

/** The audit record of bodies handed out by a FETCH. */
const readRecord = (session: SessionApi, messages: number): AuditEvent => ({
  actor: session.user!.address,
  action: 'read',
  object: session.user!.address,
  outcome: 'ok',
  detail: { protocol: 'imap', folder: session.selected!.folder.name, messages },
});

/**
 * Sets \Seen on the rows that lack it, in one unit of work that also records the reading of the batch's
 * `bodies` (one commit instead of two). Returns whether that record was written.
 */
async function markSeen(session: SessionApi, rows: MessageRow[], bodies: number): Promise<boolean> {
  const view = session.selected!;
  const unseen = rows.filter((r) => !hasFlag(r.flags, '\\Seen'));
  if (unseen.length === 0) return false;
  const { store, notifier } = session.deps;
  const changes = await store.transaction(async (tx) => {
    const out = [];
    for (const row of unseen) {
      const change = await tx.setFlags(view.folder.id, row.uid, addFlags(row.flags, ['\\Seen']));
      if (change) out.push(change);
    }
    if (bodies > 0) await appendAudit(tx, readRecord(session, bodies));
    return out;
  });
  for (const change of changes) {
    const row = unseen.find((r) => r.uid === change.uid)!;
    row.flags = change.flags;
    row.modseq = change.modseq;
    notifier.publish({ kind: 'flags', mailboxId: session.user!.id, folderId: view.folder.id, uid: change.uid, modseq: change.modseq, flags: change.flags, origin: session.id });
  }
  return bodies > 0;
}

export async function runFetch(session: SessionApi, { set, items: asked, changedSince, vanished }: FetchArgs, byUid: boolean): Promise<Completion> {
  const view = session.selected!;
  const user = session.user!;
  const { store, mail } = session.deps;
  if (vanished && !byUid) throw new ImapError('BAD', 'VANISHED is only valid in UID FETCH');
  if (vanished && !session.enabled.has('QRESYNC')) throw new ImapError('BAD', 'QRESYNC is not enabled (ENABLE QRESYNC first)');
  const indexes = byUid ? resolveUids(set, view.uids) : resolveSequenceNumbers(set, view.exists);
  if (indexes === null) throw new ImapError('BAD', 'Invalid message sequence number');
  if (vanished) {
    await sendVanishedSince(store, view.folder.id, changedSince!, set, (uid) => view.seqOf(uid) > 0, (data) => session.send(data));
  }
  let items = byUid && !asked.some((i) => i.kind === 'UID') ? [{ kind: 'UID' } as const, ...asked] : asked;
  const setsSeen = marksSeen(items) && !view.readOnly;
  if (setsSeen && !items.some((i) => i.kind === 'FLAGS')) items = [...items, { kind: 'FLAGS' }];
  // The MODSEQ item or CHANGEDSINCE turns CONDSTORE on; from then on every FETCH with FLAGS carries MODSEQ.
  if (changedSince !== null || items.some((i) => i.kind === 'MODSEQ')) session.enabled.add('CONDSTORE');
  if (session.enabled.has('CONDSTORE') && (changedSince !== null || items.some((i) => i.kind === 'FLAGS')) && !items.some((i) => i.kind === 'MODSEQ')) {
    items = [...items, { kind: 'MODSEQ' }];
  }
  const withMeta = needsMeta(items);
  const withBody = needsBody(items);
  if (!withBody) {
    await sendWithoutBodies(session, items, indexes, changedSince, withMeta);
    return { text: `${byUid ? 'UID FETCH' : 'FETCH'} completed` };
  }
  // A message read whole is streamed from its sealed blob: memory stays bounded by a segment, not the message.
  const streamed = onlyWholeBodies(items);
  let bodies = 0;
  /** Bodies already recorded with the \\Seen change of their batch. */
  let audited = 0;
  for (let i = 0; i < indexes.length; i += BATCH) {
    const batch = indexes.slice(i, i + BATCH);
    let rows = await store.getMessages(view.folder.id, batch.map((index) => view.uids[index]!));
    if (changedSince !== null) rows = rows.filter((r) => r.modseq > changedSince);
    if (setsSeen && (await markSeen(session, rows, rows.length))) audited += rows.length;
    for (const row of rows) {
      const meta = withMeta ? mail.openMeta(user, row) : null;
      const raw = streamed ? null : await mail.openBody(user, row);
      bodies++;
      let values;
      try {
        const body = streamed ? { size: row.size, open: () => mail.openBodyStream(user, row) } : undefined;
        values = fetchValues(items, row, meta, raw, { utf8: utf8Names(session), ...(body ? { body } : {}) });
      } catch (err) {
        if (err instanceof UnknownCteError) throw new ImapError('NO', `Unknown content-transfer-encoding ${err.message.slice(0, 40)}`, 'UNKNOWN-CTE');
        throw err;
      }
      await sendPieces(session, untaggedPieces([view.seqOf(row.uid), atom('FETCH'), values]));
    }
  }
  if (bodies > audited) await audit(store, readRecord(session, bodies - audited));
  return { text: `${byUid ? 'UID FETCH' : 'FETCH'} completed` };
}

export default defineCommand({
  name: 'FETCH',
  states: SELECTED,
  expungeAllowed: false,
  parse: parseFetch,
  run: (session, args) => runFetch(session, args, false),
});
