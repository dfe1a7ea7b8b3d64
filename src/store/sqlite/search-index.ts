import type Database from 'better-sqlite3';
import type { IndexScan, SearchIndexEntry } from '../types.js';
import { readInt } from './rows.js';

type Db = Database.Database;
type Raw = Record<string, unknown>;

/**
 * The keyed blind index of SEARCH on SQLite (migration 8, docs/decisions/0010-search-blind-index.md): one
 * `search_docs` row per blob (a message and its copies) with the Bloom filter of its keyed terms; it goes with the
 * blob (foreign key, ON DELETE CASCADE). A search tests the probes in SQL over the folder's filters: no message is
 * opened for it, and no filter is copied out of the database (that copy, a buffer per message, was most of the
 * cost of a search).
 */

/** Every byte value once, in order: `instr` on it turns a one-byte blob into its value plus one. */
const BYTE_VALUES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
/** Probe lists are padded (the last probe repeated) to a multiple of this: few distinct SQL texts to prepare. */
const PROBE_STEP = 4;

/** Whether bit `p mod bits` of the filter is set, as SQL (SQLite has no bit functions on blobs). */
function probeSql(param: string): string {
  const bit = `(${param} % (8 * length(d.filter)))`;
  return `((instr(@bytes, substr(d.filter, (${bit} >> 3) + 1, 1)) - 1) >> (${bit} & 7)) & 1`;
}

function padded(probes: readonly number[]): number[] {
  const out = [...probes];
  while (out.length % PROBE_STEP !== 0) out.push(probes[probes.length - 1]!);
  return out;
}

export function searchIndex(db: Db, folderId: number, queries: readonly (readonly number[])[]): IndexScan {
  if (queries.some((q) => q.length === 0)) throw new Error('a search index query needs at least one probe');
  const params: Record<string, unknown> = { folder: folderId, bytes: BYTE_VALUES };
  const tests = queries.map((probes, q) =>
    padded(probes)
      .map((probe, i) => {
        params[`q${q}p${i}`] = probe;
        return probeSql(`@q${q}p${i}`);
      })
      .join(' AND '),
  );
  // A CASE, not a bare AND: SQLite stops at the first probe that fails only when it tests a condition.
  const hits = tests.map((test, q) => `, CASE WHEN d.blob_id IS NOT NULL AND ${test} THEN 1 ELSE 0 END AS h${q}`).join('');
  const rows = db
    .prepare(
      `SELECT m.uid, d.blob_id IS NULL AS missing, d.unindexed${hits}
         FROM messages m LEFT JOIN search_docs d ON d.blob_id = m.blob_id
        WHERE m.folder_id = @folder AND (d.blob_id IS NULL OR d.unindexed <> 0${tests.map((_, q) => ` OR h${q}`).join('')})
        ORDER BY m.uid`,
    )
    .all(params) as Raw[];
  const scan: IndexScan = { matches: queries.map((): number[] => []), partial: [] };
  for (const row of rows) {
    const uid = readInt(row, 'uid');
    const missing = readInt(row, 'missing') === 1;
    if (missing || readInt(row, 'unindexed') !== 0) scan.partial.push({ uid, unindexed: missing ? null : readInt(row, 'unindexed') });
    for (let q = 0; q < queries.length; q++) if (readInt(row, `h${q}`) === 1) scan.matches[q]!.push(uid);
  }
  return scan;
}

export function indexMessage(db: Db, messageId: number, entry: SearchIndexEntry): void {
  db.prepare(
    `INSERT INTO search_docs (blob_id, unindexed, filter) SELECT blob_id, ?, ? FROM messages WHERE id = ?
     ON CONFLICT (blob_id) DO NOTHING`,
  ).run(entry.unindexed, entry.filter, messageId);
}
