import Database from 'better-sqlite3';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FOLDER_LISTING, FOLDER_LISTING_SINCE } from '../../src/store/sqlite/rows.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { tempDir } from '../helpers/engines.js';

/**
 * Listing a folder (the first SELECT of a 100,000-message folder) reads the covering index `messages_summary`, not
 * the message rows with their sealed metadata: the plan says so, for the listings the store runs.
 */
describe('SQLite folder listings', () => {
  const tmp = tempDir('mss-sqlite-reads-');
  afterEach(() => tmp.dispose());

  it.each([
    ['the whole folder', FOLDER_LISTING],
    ['above a UID', FOLDER_LISTING_SINCE],
  ])('%s: from the covering index alone, in UID order without sorting', async (_what, sql) => {
    const file = path.join(tmp.dir, 'mss.sqlite');
    await (await openSqliteStore(file)).close();
    const db = new Database(file, { readonly: true });
    try {
      const params = sql.includes('uid >') ? [1, 0] : [1];
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail);
      expect(plan).toEqual([expect.stringMatching(/USING COVERING INDEX messages_summary \(folder_id=\?( AND uid>\?)?\)/)]);
    } finally {
      db.close();
    }
  });
});
