import type { MimeNode } from '../../mime/types.js';
import type { FolderRow, SearchIndexEntry, Store, StoreReads } from '../../store/types.js';
import { indexEntry, keyScopes, needleProbes } from './blind-index.js';
import type { SearchKey } from './keys.js';
import type { Content } from './text.js';

/**
 * Plans a SEARCH over the keyed blind index (docs/decisions/0010-search-blind-index.md): each header or text key
 * whose needle is at least a trigram long gets the set of UIDs that may match it — entries whose filter has every
 * probe of the needle in one of the key's scopes, plus the messages whose content is not wholly in the index. The
 * evaluator decides every other message without opening it; NOT, OR and AND combine as they do on the keys.
 *
 * Messages delivered before the index existed have no entry: they are candidates for every key, and are indexed
 * lazily, from the content a search opened anyway.
 */

type TextKey = Extract<SearchKey, { k: 'header' | 'body' | 'text' }>;

function textKeys(key: SearchKey, out: TextKey[] = []): TextKey[] {
  switch (key.k) {
    case 'header':
    case 'body':
    case 'text':
      out.push(key);
      break;
    case 'not':
      textKeys(key.key, out);
      break;
    case 'or':
      textKeys(key.a, out);
      textKeys(key.b, out);
      break;
    case 'and':
      for (const k of key.keys) textKeys(k, out);
      break;
  }
  return out;
}

/** Per text key, the UIDs the index cannot rule out; and the messages without an entry. */
export interface IndexLookup {
  mayMatch: Map<SearchKey, Set<number>>;
  withoutEntry: ReadonlySet<number>;
}

export async function lookupCandidates(store: StoreReads, folderId: number, searchKey: Buffer, key: SearchKey): Promise<IndexLookup> {
  // Every (key, scope) lookup, then one pass over the folder's entries for all of them.
  const plans: { key: TextKey; lookups: { scope: number; query: number }[] }[] = [];
  const queries: number[][] = [];
  for (const k of textKeys(key)) {
    const probes = keyScopes(k).map((scope) => ({ scope, probes: needleProbes(searchKey, scope, k.value) }));
    if (probes.some((p) => p.probes === null)) continue;
    plans.push({ key: k, lookups: probes.map((p) => ({ scope: p.scope, query: queries.push(p.probes!) - 1 })) });
  }
  const { matches: found, partial } = await store.searchIndex(folderId, queries);
  const withoutEntry = new Set(partial.filter((p) => p.unindexed === null).map((p) => p.uid));
  const mayMatch = new Map<SearchKey, Set<number>>();
  for (const plan of plans) {
    const may = new Set<number>();
    for (const { scope, query } of plan.lookups) {
      for (const uid of found[query]!) may.add(uid);
      for (const p of partial) if (p.unindexed === null || (p.unindexed & scope) !== 0) may.add(p.uid);
    }
    mayMatch.set(plan.key, may);
  }
  return { mayMatch, withoutEntry };
}

/**
 * Index entries of messages opened by a search that had none, written in small units of work as the search goes.
 * An entry is written only if the message is still the one that was opened (same folder incarnation, same UID,
 * same blob): SQLite may hand a removed row's id out again. Failures only lose the entry (the message stays a
 * candidate), never the search.
 */
export class IndexBackfill {
  static readonly BATCH = 64;
  #batch: { uid: number; blobId: number; entry: SearchIndexEntry }[] = [];

  constructor(
    private readonly store: Store,
    private readonly folder: Pick<FolderRow, 'id' | 'uidValidity'>,
    private readonly searchKey: Buffer,
    private readonly onError: (err: unknown) => void,
  ) {}

  async add(message: { uid: number; blobId: number }, content: Content, mime: MimeNode): Promise<void> {
    this.#batch.push({ uid: message.uid, blobId: message.blobId, entry: indexEntry(this.searchKey, content, mime) });
    if (this.#batch.length >= IndexBackfill.BATCH) await this.flush();
  }

  async flush(): Promise<void> {
    const batch = this.#batch.splice(0);
    if (batch.length === 0) return;
    try {
      await this.store.transaction(async (tx) => {
        const folder = await tx.getFolderById(this.folder.id);
        if (!folder || folder.uidValidity !== this.folder.uidValidity) return;
        const rows = new Map((await tx.getMessages(folder.id, batch.map((b) => b.uid))).map((r) => [r.uid, r]));
        for (const b of batch) {
          const row = rows.get(b.uid);
          if (row && row.blobId === b.blobId) await tx.indexMessage(row.id, b.entry);
        }
      });
    } catch (err) {
      this.onError(err);
    }
  }
}
