import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { DUMP_COLUMNS, DUMP_TABLES } from '../../src/store/dump.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { createTestDatabase, tempDir } from '../helpers/engines.js';

/**
 * `mss store migrate` copies a whole operator: every table of the schema, with every column, is in the dump
 * port (src/store/dump.ts), so a table or a column added by a later migration cannot be forgotten silently.
 */

/**
 * Not copied, on purpose: the schema's own bookkeeping, the relay's idempotency keys (kept 10 days), and on
 * PostgreSQL the audit records not yet linked into the chain (the source links them before the copy).
 */
const NOT_COPIED = new Set(['schema_version', 'relay_accepted_keys', 'audit_pending']);

function expectCovered(schema: Map<string, string[]>): void {
  const tables = [...schema.keys()].filter((t) => !NOT_COPIED.has(t)).sort();
  expect([...DUMP_TABLES].sort()).toEqual(tables);
  for (const table of DUMP_TABLES) expect([...DUMP_COLUMNS[table]].sort(), table).toEqual([...schema.get(table)!].sort());
}

describe('the dump port covers the whole schema', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('on SQLite', async () => {
    const dir = tempDir('mss-dump-coverage-');
    cleanups.push(() => dir.dispose());
    const file = path.join(dir.dir, 'mss.sqlite');
    await (await openSqliteStore(file)).close();
    const db = new Database(file, { readonly: true });
    try {
      const schema = new Map<string, string[]>();
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").pluck().all() as string[];
      for (const table of tables) schema.set(table, (db.prepare(`SELECT name FROM pragma_table_info(?)`).pluck().all(table) as string[]));
      expectCovered(schema);
    } finally {
      db.close();
    }
  });

  it('on PostgreSQL', async () => {
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    await (await openPostgresStore(database.url)).close();
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ table_name: string; column_name: string }>(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'",
      );
      const schema = new Map<string, string[]>();
      for (const r of rows) schema.set(r.table_name, [...(schema.get(r.table_name) ?? []), r.column_name]);
      expectCovered(schema);
    } finally {
      await client.end();
    }
  });
});
