import { audit } from '../../audit/journal.js';
import { defineCommand, ImapError, SELECTED, type Completion, type SessionApi } from '../command.js';
import type { MessageMeta } from '../../mime/types.js';
import type { MessageSummary } from '../../store/types.js';
import { IndexBackfill, lookupCandidates } from '../search/candidates.js';
import { metaDecides, needsContent, searchMessages, usesModseq, type MetaView } from '../search/evaluate.js';
import { parseSearch, SUPPORTED_CHARSETS, type SearchCommand, type SearchKey } from '../search/keys.js';
import { Content, fold } from '../search/text.js';
import { atom, untagged, type Value } from '../serializer.js';
import { isRev2 } from '../modes.js';

/**
 * SEARCH and UID SEARCH (RFC 9051 §6.4.4, §6.4.9) with ESEARCH result options (RFC 4731: MIN, MAX, ALL, COUNT)
 * and SEARCHRES (RFC 5182: SAVE, `$`). Criteria on clear metadata are decided from the folder's message list;
 * criteria on From, To, Cc, Bcc, Subject and Date from the sealed metadata (as FETCH ENVELOPE reads it); other
 * criteria on headers or text open only the messages those and the blind index (src/imap/search/candidates.ts)
 * cannot decide. One audit record names how many messages were opened.
 */

/** `1:3,5,8:9` from ascending numbers. */
export function compressSet(numbers: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < numbers.length; ) {
    let j = i;
    while (j + 1 < numbers.length && numbers[j + 1] === numbers[j]! + 1) j++;
    parts.push(i === j ? String(numbers[i]) : `${numbers[i]}:${numbers[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** Messages whose metadata may be read from their rows, one by one, rather than scan the blind index. */
const uncachedAllowed = (messages: number) => Math.max(8, messages >> 7);

/**
 * Whether `key` is better decided on metadata alone than through the blind index: metadata decides the whole
 * tree, and that of nearly every message is in memory (a header search in a folder a client lists); the few
 * others are read from their rows. The index narrows what must be opened, but its scan reads every message's
 * filter.
 */
function metaInMemory(messages: readonly MessageSummary[], key: SearchKey, cachedMeta: (m: MessageSummary) => MessageMeta | undefined): boolean {
  if (!metaDecides(key)) return false;
  let missing = 0;
  const allowed = uncachedAllowed(messages.length);
  for (const m of messages) if (cachedMeta(m)?.searchHeaders === undefined && ++missing > allowed) return false;
  return true;
}

/** What SEARCH reads of opened metadata, its header values folded once, kept as long as the metadata is. */
const META_VIEWS = new WeakMap<MessageMeta, MetaView>();

function metaViewOf(meta: MessageMeta): MetaView {
  let view = META_VIEWS.get(meta);
  if (!view) {
    const headers: Record<string, string[]> = {};
    for (const [name, values] of Object.entries(meta.searchHeaders ?? {})) if (values) headers[name] = values.map(fold);
    META_VIEWS.set(meta, (view = { headers, date: meta.envelope.date }));
  }
  return view;
}

/** A message SEARCH found, with its sequence number in the session. */
export type FoundMessage = MessageSummary & { seq: number };

/** The messages of the selected folder matching `key` (in sequence order), and how many had to be opened. */
export async function findMessages(session: SessionApi, charset: string | null, key: SearchKey): Promise<{ found: FoundMessage[]; opened: number }> {
  if (charset !== null && !SUPPORTED_CHARSETS.includes(charset)) {
    throw new ImapError('NO', 'Unsupported charset', `BADCHARSET (${SUPPORTED_CHARSETS.join(' ')})`);
  }
  const view = session.selected!;
  const user = session.user!;
  const { store, mail } = session.deps;
  const rows = await view.messages.list();
  // Only the messages this session knows of: one delivered since its last EXISTS has no sequence number yet. When
  // the session knows them all (the usual case), the state's summaries are searched as they are (no object per
  // message), and sequence numbers are looked up for the matches only.
  const uids = view.uids;
  const knowsAll = uids.length === rows.length && rows.every((row, i) => row.uid === uids[i]);
  const messages = knowsAll ? rows : rows.filter((row) => view.seqOf(row.uid) > 0);
  const searchKey = mail.searchKey(user);
  const ref = { id: 0, folderId: view.folder.id, uid: 0, internalDate: 0 }; // one object for every lookup
  const cachedMeta = (m: MessageSummary) => {
    ref.id = m.id;
    ref.uid = m.uid;
    ref.internalDate = m.internalDate;
    return mail.cachedMeta(user, ref);
  };
  const content = needsContent(key);
  const index = content && !metaInMemory(messages, key, cachedMeta) ? await lookupCandidates(store, view.folder.id, searchKey, key) : null;
  const backfill = new IndexBackfill(store, view.folder, searchKey, (err) => session.log.warn({ err }, 'search index backfill failed'));
  let opened = 0;
  const ctx = { uids: view.uids, saved: view.savedUids, now: Date.now(), ...(index ? { mayMatch: index.mayMatch } : {}) };
  const metaOf = async (m: MessageSummary): Promise<MessageMeta | null> => {
    const cached = cachedMeta(m);
    if (cached) return cached;
    const [full] = await store.getMessages(view.folder.id, [m.uid]);
    return full ? mail.openMeta(user, full) : null; // null: expunged by another session meanwhile
  };
  const metaView = async (m: MessageSummary): Promise<MetaView | null> => {
    const meta = await metaOf(m);
    return meta && metaViewOf(meta);
  };
  const open = async (m: MessageSummary) => {
    // Metadata opened before: the message is read from its blob alone, without its row. A blob that is gone
    // (the message expunged meanwhile, and its copies) sends the search to the row, which says so.
    const cached = cachedMeta(m);
    const body = cached ? await mail.openBody(user, m).catch(() => null) : null;
    let message: { meta: MessageMeta; body: Buffer; blobId: number };
    if (cached && body) message = { meta: cached, body, blobId: m.blobId };
    else {
      const [full] = await store.getMessages(view.folder.id, [m.uid]);
      if (!full) return null; // expunged by another session meanwhile
      message = { meta: mail.openMeta(user, full), body: await mail.openBody(user, full), blobId: full.blobId };
    }
    opened++;
    const content = new Content(message.body);
    if (index?.withoutEntry.has(m.uid)) await backfill.add({ uid: m.uid, blobId: message.blobId }, content, message.meta.mime);
    return { raw: content.raw, content, mime: message.meta.mime, date: message.meta.envelope.date };
  };
  const matched = await searchMessages(key, messages, ctx, open, metaView);
  const found = matched.map((m) => ({ ...m, seq: view.seqOf(m.uid) }));
  await backfill.flush();
  if (opened > 0) {
    await audit(store, {
      actor: user.address,
      action: 'read',
      object: user.address,
      outcome: 'ok',
      detail: { protocol: 'imap', command: 'search', folder: view.folder.name, opened },
    });
  }
  return { found, opened };
}

export async function runSearch(session: SessionApi, cmd: SearchCommand, byUid: boolean, tag: string): Promise<Completion> {
  const view = session.selected!;
  const { found } = await findMessages(session, cmd.charset, cmd.key);
  const numbers = found.map((m) => (byUid ? m.uid : m.seq));
  const modseq = usesModseq(cmd.key) && found.length > 0 ? Math.max(...found.map((m) => m.modseq)) : null;

  // An IMAP4rev2 session always gets ESEARCH (RFC 9051 §6.4.4): no RETURN is RETURN (ALL).
  const returnOptions = cmd.returns ?? (isRev2(session) ? [] : null);
  if (returnOptions === null) {
    const values: Value[] = [atom('SEARCH'), ...numbers];
    if (modseq !== null) values.push([atom('MODSEQ'), modseq]);
    await session.send(untagged(values));
  } else {
    const returns = returnOptions.length === 0 ? ['ALL'] : returnOptions;
    if (returns.includes('SAVE')) view.savedUids = new Set(found.map((m) => m.uid));
    const values: Value[] = [atom('ESEARCH'), [atom('TAG'), tag]];
    if (byUid) values.push(atom('UID'));
    if (numbers.length > 0) {
      if (returns.includes('MIN')) values.push(atom('MIN'), numbers[0]!);
      if (returns.includes('MAX')) values.push(atom('MAX'), numbers[numbers.length - 1]!);
      if (returns.includes('ALL')) values.push(atom('ALL'), atom(compressSet(numbers)));
    }
    if (returns.includes('COUNT')) values.push(atom('COUNT'), numbers.length);
    if (modseq !== null) values.push(atom('MODSEQ'), modseq);
    // SAVE alone answers nothing but the tagged OK (RFC 5182 §2.4).
    if (!(returns.length === 1 && returns[0] === 'SAVE')) await session.send(untagged(values));
  }
  return { text: `${byUid ? 'UID SEARCH' : 'SEARCH'} completed` };
}

export default defineCommand({
  name: 'SEARCH',
  states: SELECTED,
  expungeAllowed: false,
  parse: parseSearch,
  run: (session, args, tag) => runSearch(session, args, false, tag),
});
