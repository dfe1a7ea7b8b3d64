import type Database from 'better-sqlite3';
import type { SearchIndexEntry, UnindexedMessage } from '../types.js';
import { readBytes, readInt } from './rows.js';

type Db = Database.Database;
type Raw = Record<string, unknown>;

/**
 * The keyed blind index of SEARCH on SQLite (migration 8, docs/decisions/0010-search-blind-index.md): one
 * `search_docs` row per blob (a message and its copies) with the Bloom filter of its keyed terms; it goes with the
 * blob (foreign key, ON DELETE CASCADE). SQLite has no bit functions, so a search reads the folder's filters and
 * tests the probes here: no message is opened for it.
 */

function has(filter: Buffer, probes: readonly number[]): boolean {
  const bits = filter.length * 8;
  for (const p of probes) {
    const bit = p % bits;
    if ((filter[bit >>> 3]! & (1 << (bit & 7))) === 0) return false;
  }
  return true;
}

export function searchIndex(db: Db, folderId: number, queries: readonly (readonly number[])[]): number[][] {
  if (queries.some((q) => q.length === 0)) throw new Error('a search index query needs at least one probe');
  const found = queries.map((): number[] => []);
  const rows = db
    .prepare('SELECT m.uid, d.filter FROM messages m JOIN search_docs d ON d.blob_id = m.blob_id WHERE m.folder_id = ? ORDER BY m.uid')
    .iterate(folderId) as IterableIterator<Raw>;
  // Read to the end without yielding: the statement is shared (statements are cached per SQL text).
  for (const row of rows) {
    const filter = readBytes(row, 'filter');
    for (let i = 0; i < queries.length; i++) if (has(filter, queries[i]!)) found[i]!.push(readInt(row, 'uid'));
  }
  return found;
}

export function listUnindexed(db: Db, folderId: number): UnindexedMessage[] {
  return (
    db
      .prepare(
        `SELECT m.uid, d.unindexed FROM messages m LEFT JOIN search_docs d ON d.blob_id = m.blob_id
          WHERE m.folder_id = ? AND (d.blob_id IS NULL OR d.unindexed <> 0) ORDER BY m.uid`,
      )
      .all(folderId) as Raw[]
  ).map((r) => ({ uid: readInt(r, 'uid'), unindexed: r.unindexed === null ? null : readInt(r, 'unindexed') }));
}

export function indexMessage(db: Db, messageId: number, entry: SearchIndexEntry): void {
  db.prepare(
    `INSERT INTO search_docs (blob_id, unindexed, filter) SELECT blob_id, ?, ? FROM messages WHERE id = ?
     ON CONFLICT (blob_id) DO NOTHING`,
  ).run(entry.unindexed, entry.filter, messageId);
}
