import pg from 'pg';
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
import { openPostgresStore, PostgresStore } from './index.js';
import { readInt, toDumpRow } from './rows.js';

type Raw = Record<string, unknown>;

/**
 * The export/import port of the PostgreSQL engine (docs/decisions/0005-store-migration.md). One connection;
 * `importAll` is one transaction, so a failed import writes nothing. Rows keep their ids
 * (`OVERRIDING SYSTEM VALUE` on the identity columns); before the commit every identity sequence is moved past
 * the highest id imported, so rows the server creates afterwards get fresh ids.
 */

/** Tables whose id is `GENERATED ALWAYS AS IDENTITY`. */
const IDENTITY_TABLES: readonly DumpTable[] = [
  'mailboxes',
  'folders',
  'blobs',
  'blob_chunks',
  'messages',
  'expunged_messages',
  'mailbox_credentials',
  'correspondent_keys',
  'dir_snapshots',
  'dir_mailboxes',
  'dir_practitioners',
  'dir_activities',
  'dir_organisations',
  'dir_changes',
  'trust_lists',
  'trust_domains',
  'mdn_tracking',
  'patient_threads',
  'patient_thread_messages',
  'patient_documents',
];
/** Rows per INSERT statement (PostgreSQL allows 65,535 parameters per statement). */
const ROWS_PER_STATEMENT = 1000;
/** Text keys are ordered by bytes ("C"), as SQLite's default collation orders them. */
const TEXT_KEYED: readonly DumpTable[] = ['queue', 'auth_failures', 'dir_certificates', 'webmail_sessions'];


class PostgresDump implements DumpTarget {
  readonly engine = 'postgres' as const;

  constructor(private readonly client: pg.Client) {}

  async #rows(sql: string, params: unknown[] = []): Promise<Raw[]> {
    return (await this.client.query<Raw>(sql, params)).rows;
  }

  async schemaVersion(): Promise<number> {
    const present = (await this.#rows("SELECT to_regclass('schema_version') IS NOT NULL AS present"))[0];
    if (present?.present !== true) return 0;
    return readInt((await this.#rows('SELECT coalesce(max(version), 0) AS v FROM schema_version'))[0]!, 'v');
  }

  async count(table: DumpTable): Promise<number> {
    return readInt((await this.#rows(`SELECT count(*) AS n FROM ${table}`))[0]!, 'n');
  }

  async exportRows<T extends DumpTable>(table: T, afterKey: DumpKey | null, limit: number): Promise<DumpRows[T][]> {
    const key = DUMP_KEY_COLUMN[table];
    const text = TEXT_KEYED.includes(table);
    const ordered = text ? `${key} COLLATE "C"` : key;
    const cast = text ? 'text' : 'bigint';
    const rows = await this.#rows(
      `SELECT * FROM ${table} WHERE ($1::${cast} IS NULL OR ${ordered} > $1::${cast}) ORDER BY ${ordered} LIMIT $2`,
      [afterKey, limit],
    );
    return rows.map((r) => toDumpRow(table, r));
  }

  async importAll(work: (sink: DumpSink) => Promise<void>): Promise<void> {
    await this.client.query('BEGIN');
    try {
      // No server may write while the import runs: a concurrent writer waits, then finds the data.
      await this.client.query(`LOCK TABLE ${OPERATOR_TABLES.join(', ')}, uid_validity_counter IN EXCLUSIVE MODE`);
      const held: Partial<Record<DumpTable, number>> = {};
      for (const table of OPERATOR_TABLES) {
        const n = await this.count(table);
        if (n > 0) held[table] = n;
      }
      if (Object.keys(held).length > 0) throw new TargetNotEmptyError(held);
      await work({ importRows: (table, rows) => this.#insert(table, rows) });
      for (const table of IDENTITY_TABLES) {
        await this.client.query(
          `SELECT setval(pg_get_serial_sequence('${table}', 'id'), coalesce((SELECT max(id) FROM ${table}), 0) + 1, false)`,
        );
      }
      await this.client.query('COMMIT');
    } catch (err) {
      await this.client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  async #insert<T extends DumpTable>(table: T, rows: DumpRows[T][]): Promise<void> {
    const columns = DUMP_COLUMNS[table];
    const overriding = IDENTITY_TABLES.includes(table) ? ' OVERRIDING SYSTEM VALUE' : '';
    const conflict = table === 'uid_validity_counter' ? ' ON CONFLICT (id) DO UPDATE SET last = excluded.last' : '';
    for (let start = 0; start < rows.length; start += ROWS_PER_STATEMENT) {
      const chunk = rows.slice(start, start + ROWS_PER_STATEMENT);
      const params: unknown[] = [];
      const tuples = chunk.map((row) => {
        const values = dumpValues(table, row);
        const placeholders = values.map((v) => {
          params.push(v);
          return `$${params.length}`;
        });
        return `(${placeholders.join(', ')})`;
      });
      await this.client.query(`INSERT INTO ${table} (${columns.join(', ')})${overriding} VALUES ${tuples.join(', ')}${conflict}`, params);
    }
  }

  async close(): Promise<void> {
    await this.client.end();
  }
}

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: 'mss store migrate', options: '-c synchronous_commit=on' });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/**
 * Opens an existing PostgreSQL database as a migration source. Its only write: audit records committed but not
 * yet linked into the chain (a server stopped before linking them) are linked first, so the copy holds them.
 */
export async function openPostgresDumpSource(url: string): Promise<DumpSource> {
  await PostgresStore.open(url, { poolSize: 1 }).close();
  return new PostgresDump(await connect(url));
}

/** Opens a PostgreSQL database as a migration target, creating the engine's schema first if it has none. */
export async function openPostgresDumpTarget(url: string): Promise<DumpTarget> {
  await (await openPostgresStore(url, { poolSize: 1 })).close();
  return new PostgresDump(await connect(url));
}
