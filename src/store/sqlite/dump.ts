import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import {
  DUMP_COLUMNS,
  DUMP_KEY_COLUMN,
  dumpValues,
  OPERATOR_TABLES,
  TargetNotEmptyError,
  type DumpKey,
  type DumpRows,
  type DumpSink,
  type DumpSource,
  type DumpTable,
  type DumpTarget,
} from '../dump.js';
import { openSqliteStore } from './index.js';
import { readInt, toDumpRow } from './rows.js';

type Db = Database.Database;
type Raw = Record<string, unknown>;

/**
 * The export/import port of the SQLite engine (docs/decisions/0005-store-migration.md).
 *
 * As a source the file is opened read-only and must exist; every read runs in one read transaction, so the
 * export is one consistent snapshot even if a server were still writing (WAL readers keep their snapshot).
 * As a target, the schema is created first (the engine's migrations) and `importAll` is one
 * `BEGIN IMMEDIATE` unit of work.
 */

class SqliteDump implements DumpTarget {
  readonly engine = 'sqlite' as const;
  #snapshot = false;

  constructor(
    private readonly db: Db,
    private readonly readOnly: boolean,
  ) {}

  /** Reads of a source all see one snapshot: the read transaction opened at the first of them. */
  #read(): Db {
    if (this.readOnly && !this.#snapshot) {
      this.db.exec('BEGIN');
      this.#snapshot = true;
    }
    return this.db;
  }

  async schemaVersion(): Promise<number> {
    const db = this.#read();
    if (!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").get()) return 0;
    return readInt(db.prepare('SELECT coalesce(max(version), 0) AS v FROM schema_version').get() as Raw, 'v');
  }

  async count(table: DumpTable): Promise<number> {
    return readInt(this.#read().prepare(`SELECT count(*) AS n FROM ${table}`).get() as Raw, 'n');
  }

  async exportRows<T extends DumpTable>(table: T, afterKey: DumpKey | null, limit: number): Promise<DumpRows[T][]> {
    const key = DUMP_KEY_COLUMN[table];
    const rows = this.#read()
      .prepare(`SELECT * FROM ${table} WHERE (? IS NULL OR ${key} > ?) ORDER BY ${key} LIMIT ?`)
      .all(afterKey, afterKey, limit) as Raw[];
    return rows.map((r) => toDumpRow(table, r));
  }

  async importAll(work: (sink: DumpSink) => Promise<void>): Promise<void> {
    if (this.readOnly) throw new Error('this database was opened read-only (a migration source)');
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const held: Partial<Record<DumpTable, number>> = {};
      for (const table of OPERATOR_TABLES) {
        const n = await this.count(table);
        if (n > 0) held[table] = n;
      }
      if (Object.keys(held).length > 0) throw new TargetNotEmptyError(held);
      await work({
        importRows: async (table, rows) => {
          const columns = DUMP_COLUMNS[table];
          const sql =
            table === 'uid_validity_counter'
              ? 'INSERT INTO uid_validity_counter (id, last) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET last = excluded.last'
              : `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`;
          const insert = this.db.prepare(sql);
          for (const row of rows) insert.run(...dumpValues(table, row).map((v) => (typeof v === 'boolean' ? (v ? 1 : 0) : v)));
        },
      });
      // INTEGER PRIMARY KEY ids continue from the highest id present: nothing to reset.
      this.db.exec('COMMIT');
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.db.inTransaction) this.db.exec('ROLLBACK');
    this.db.close();
  }
}

export class SourceMissingError extends Error {}

/** Opens an existing SQLite database read-only, as a migration source. Changes nothing, creates nothing. */
export function openSqliteDumpSource(file: string): DumpSource {
  if (!existsSync(file)) throw new SourceMissingError(`no SQLite database at ${file}`);
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  return new SqliteDump(db, true);
}

/** Opens (creating it and its schema if needed) a SQLite database as a migration target. */
export async function openSqliteDumpTarget(file: string): Promise<DumpTarget> {
  await (await openSqliteStore(file)).close();
  const db = new Database(file, { fileMustExist: true });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  return new SqliteDump(db, false);
}
