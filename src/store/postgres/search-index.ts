import type { IndexScan, SearchIndexEntry } from '../types.js';
import { readInt } from './rows.js';

type Raw = Record<string, unknown>;
type Run = (sql: string, params?: unknown[]) => Promise<Raw[]>;

/**
 * The keyed blind index of SEARCH on PostgreSQL (migration 8, docs/decisions/0010-search-blind-index.md): one
 * `search_docs` row per blob (a message and its copies) with the Bloom filter of its keyed terms; it goes with the
 * blob (foreign key, ON DELETE CASCADE). A search tests the probes in SQL (get_bit) over the folder's filters: no
 * message is opened for it, and no filter leaves the database.
 */

export async function searchIndex(run: Run, folderId: number, queries: readonly (readonly number[])[]): Promise<IndexScan> {
  if (queries.some((q) => q.length === 0)) throw new Error('a search index query needs at least one probe');
  const hits = queries
    .map(
      (_, q) => `, d.blob_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM unnest($${q + 2}::bigint[]) AS p (v)
                     WHERE get_bit(d.filter, p.v % (8 * length(d.filter))) = 0) AS h${q}`,
    )
    .join('');
  const rows = await run(
    `SELECT * FROM (
       SELECT m.uid, d.blob_id IS NULL AS missing, d.unindexed${hits}
         FROM messages m LEFT JOIN search_docs d ON d.blob_id = m.blob_id
        WHERE m.folder_id = $1) s
      WHERE missing OR unindexed <> 0${queries.map((_, q) => ` OR h${q}`).join('')}
      ORDER BY uid`,
    [folderId, ...queries],
  );
  const scan: IndexScan = { matches: queries.map((): number[] => []), partial: [] };
  for (const row of rows) {
    const uid = readInt(row, 'uid');
    if (row.missing === true || readInt(row, 'unindexed') !== 0) scan.partial.push({ uid, unindexed: row.missing === true ? null : readInt(row, 'unindexed') });
    for (let q = 0; q < queries.length; q++) if (row[`h${q}`] === true) scan.matches[q]!.push(uid);
  }
  return scan;
}

export async function indexMessage(run: Run, messageId: number, entry: SearchIndexEntry): Promise<void> {
  await run(
    `INSERT INTO search_docs (blob_id, unindexed, filter) SELECT blob_id, $2, $3 FROM messages WHERE id = $1
     ON CONFLICT (blob_id) DO NOTHING`,
    [messageId, entry.unindexed, entry.filter],
  );
}
