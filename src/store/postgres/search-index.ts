import type { SearchIndexEntry, UnindexedMessage } from '../types.js';
import { readInt } from './rows.js';

type Raw = Record<string, unknown>;
type Run = (sql: string, params?: unknown[]) => Promise<Raw[]>;

/**
 * The keyed blind index of SEARCH on PostgreSQL (migration 8, docs/decisions/0010-search-blind-index.md): one
 * `search_docs` row per blob (a message and its copies) with the Bloom filter of its keyed terms; it goes with the
 * blob (foreign key, ON DELETE CASCADE). A search tests the probes in SQL (get_bit) over the folder's filters: no
 * message is opened for it, and no filter leaves the database.
 */

export async function searchIndex(run: Run, folderId: number, queries: readonly (readonly number[])[]): Promise<number[][]> {
  if (queries.some((q) => q.length === 0)) throw new Error('a search index query needs at least one probe');
  const found: number[][] = [];
  for (const probes of queries) {
    const rows = await run(
      `SELECT m.uid FROM messages m JOIN search_docs d ON d.blob_id = m.blob_id
        WHERE m.folder_id = $1
          AND NOT EXISTS (SELECT 1 FROM unnest($2::bigint[]) AS p (v) WHERE get_bit(d.filter, p.v % (8 * length(d.filter))) = 0)
        ORDER BY m.uid`,
      [folderId, probes],
    );
    found.push(rows.map((r) => readInt(r, 'uid')));
  }
  return found;
}

export async function listUnindexed(run: Run, folderId: number): Promise<UnindexedMessage[]> {
  const rows = await run(
    `SELECT m.uid, d.unindexed FROM messages m LEFT JOIN search_docs d ON d.blob_id = m.blob_id
      WHERE m.folder_id = $1 AND (d.blob_id IS NULL OR d.unindexed <> 0) ORDER BY m.uid`,
    [folderId],
  );
  return rows.map((r) => ({ uid: readInt(r, 'uid'), unindexed: r.unindexed === null ? null : readInt(r, 'unindexed') }));
}

export async function indexMessage(run: Run, messageId: number, entry: SearchIndexEntry): Promise<void> {
  await run(
    `INSERT INTO search_docs (blob_id, unindexed, filter) SELECT blob_id, $2, $3 FROM messages WHERE id = $1
     ON CONFLICT (blob_id) DO NOTHING`,
    [messageId, entry.unindexed, entry.filter],
  );
}
