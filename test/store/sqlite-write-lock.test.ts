import Database from 'better-sqlite3';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/types.js';
import { tempDir } from '../helpers/engines.js';

const execFileAsync = promisify(execFile);
const repo = path.resolve(__dirname, '../..');

/**
 * Another process holding SQLite's write lock (a second server process, the command line): a unit of work waits
 * for it without blocking the event loop, then runs.
 */
describe('SQLite write lock held by another connection', () => {
  const tmp = tempDir('mss-write-lock-');
  let store: Store | null = null;
  let other: Database.Database | null = null;
  afterEach(async () => {
    other?.close();
    await store?.close();
    tmp.dispose();
  });

  it('waits for it while timers and other work go on, then commits', async () => {
    const file = path.join(tmp.dir, 'mss.sqlite');
    store = await openSqliteStore(file);
    other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    setTimeout(() => other!.exec('COMMIT'), 150);
    const started = Date.now();
    const folders = await store.transaction(async (tx) => tx.listFolders(1));
    clearInterval(ticker);
    expect(folders).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    // The event loop ran while the unit of work waited: the timer that releases the lock fired, and others too.
    expect(ticks).toBeGreaterThan(5);
  });

  it('applies each migration once when several processes open a new database at the same time', async () => {
    const file = path.join(tmp.dir, 'mss.sqlite');
    const module = path.join(repo, 'dist/src/store/sqlite/index.js');
    const script = `import(${JSON.stringify(module)}).then((m) => m.openSqliteStore(${JSON.stringify(file)})).then((s) => s.close())`;
    await Promise.all(Array.from({ length: 6 }, () => execFileAsync(process.execPath, ['-e', script])));
    const db = new Database(file, { readonly: true });
    try {
      const versions = db.prepare('SELECT version FROM schema_version ORDER BY version').all() as { version: number }[];
      expect(versions.length).toBeGreaterThan(10);
      expect(new Set(versions.map((v) => v.version)).size).toBe(versions.length);
    } finally {
      db.close();
    }
  }, 60_000);
});
