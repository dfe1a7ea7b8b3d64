import { createHash } from 'node:crypto';
import path from 'node:path';
import { verifyJournal } from '../audit/journal.js';
import { DUMP_COLUMNS, DUMP_TABLES, dumpKey, dumpValues, type DumpKey, type DumpRows, type DumpSource, type DumpTable, type DumpTarget, type DumpValue } from './dump.js';
import { openPostgresDumpSource, openPostgresDumpTarget } from './postgres/dump.js';
import { openSqliteDumpSource, openSqliteDumpTarget } from './sqlite/dump.js';

/**
 * `mss store migrate`: copies a whole operator from one engine to another through the export/import port
 * (`dump.ts`), then verifies the copy row by row (docs/decisions/0005-store-migration.md). Sealed bytes are
 * copied as they are; nothing is opened, so no key is needed and none changes.
 */

/** A bad `--from`/`--to`, a missing source, a schema this build cannot copy: nothing was written. */
export class MigrationRefusedError extends Error {}

export type StoreLocation = { engine: 'sqlite'; path: string } | { engine: 'postgres'; url: string };

/**
 * `sqlite:<path>` (relative to `cwd`) or `postgres:<url>`; a bare `postgres://…` / `postgresql://…` URL is
 * taken as `postgres:<url>`.
 */
export function parseStoreLocation(value: string, cwd = process.cwd()): StoreLocation {
  if (value.startsWith('sqlite:') && value.length > 'sqlite:'.length) {
    return { engine: 'sqlite', path: path.resolve(cwd, value.slice('sqlite:'.length)) };
  }
  if (/^postgres(ql)?:\/\//.test(value)) return postgresLocation(value, value);
  if (value.startsWith('postgres:')) return postgresLocation(value.slice('postgres:'.length), value);
  throw new MigrationRefusedError(`"${value}": expected sqlite:<path> or postgres:<url> (e.g. postgres:postgres://mss@127.0.0.1:5432/mss)`);
}

function postgresLocation(url: string, given: string): StoreLocation {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new MigrationRefusedError(`"${given}": expected postgres:<url> with a postgres:// URL`);
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new MigrationRefusedError(`"${given}": expected postgres:<url> with a postgres:// URL`);
  }
  return { engine: 'postgres', url };
}

/** For people: the path, or the URL without its password. */
export function describeLocation(location: StoreLocation): string {
  if (location.engine === 'sqlite') return `sqlite:${location.path}`;
  const url = new URL(location.url);
  if (url.password) url.password = '***';
  return `postgres:${url.toString()}`;
}

export function openDumpSource(location: StoreLocation): Promise<DumpSource> {
  return location.engine === 'sqlite' ? Promise.resolve(openSqliteDumpSource(location.path)) : openPostgresDumpSource(location.url);
}

export function openDumpTarget(location: StoreLocation): Promise<DumpTarget> {
  return location.engine === 'sqlite' ? openSqliteDumpTarget(location.path) : openPostgresDumpTarget(location.url);
}

export interface MigrationOptions {
  /** Rows read and written per batch (queue items a tenth of it, blob chunks of 256 KiB a fiftieth). */
  batch?: number;
  /** Rows done out of the total, per phase. */
  onProgress?: (phase: 'copy' | 'verify', done: number, total: number, table: DumpTable) => void;
}

const DEFAULT_BATCH = 500;

function batchFor(table: DumpTable, batch: number): number {
  // Blob bytes cross chunk row by chunk row (10 of 256 KiB per batch by default), never a whole table or body.
  if (table === 'blob_chunks') return Math.max(1, Math.floor(batch / 50));
  return table === 'queue' ? Math.max(1, Math.floor(batch / 10)) : batch;
}

export type TableCounts = Record<DumpTable, number>;

async function countAll(db: DumpSource): Promise<TableCounts> {
  const counts = {} as TableCounts;
  for (const table of DUMP_TABLES) counts[table] = await db.count(table);
  return counts;
}

const total = (counts: TableCounts) => DUMP_TABLES.reduce((n, t) => n + counts[t], 0);

/** Refuses unless both databases are at the schema version this build knows. */
async function checkSchemas(source: DumpSource, target: DumpSource): Promise<number> {
  const [from, to] = [await source.schemaVersion(), await target.schemaVersion()];
  if (from === 0) throw new MigrationRefusedError('the source holds no mss schema (is it an mss database?)');
  if (from !== to) {
    throw new MigrationRefusedError(
      from < to
        ? `the source schema is at version ${from} and this mss at ${to}: start this version of mss once on the source (it applies the migrations), then migrate`
        : `the source schema (version ${from}) is newer than this mss (version ${to}): migrate with the mss version that wrote it`,
    );
  }
  return from;
}

/**
 * Copies every table from `source` into the empty `target` in one transaction on the target (a failure writes
 * nothing). Refuses a non-empty target (`TargetNotEmptyError`). Returns the source's row counts.
 */
export async function copyStore(source: DumpSource, target: DumpTarget, options: MigrationOptions = {}): Promise<TableCounts> {
  const batch = options.batch ?? DEFAULT_BATCH;
  await checkSchemas(source, target);
  const counts = await countAll(source);
  const all = total(counts);
  let done = 0;
  await target.importAll(async (sink) => {
    for (const table of DUMP_TABLES) {
      options.onProgress?.('copy', done, all, table);
      let after: DumpKey | null = null;
      for (;;) {
        const rows: DumpRows[DumpTable][] = await source.exportRows(table, after, batchFor(table, batch));
        if (rows.length === 0) break;
        await sink.importRows(table, rows);
        after = dumpKey(table, rows[rows.length - 1]!);
        done += rows.length;
        options.onProgress?.('copy', done, all, table);
      }
    }
  });
  return counts;
}

export type VerifyOutcome =
  | { ok: true; counts: TableCounts; schemaVersion: number; auditRecords: number; lastAuditHash: string | null }
  | { ok: false; mismatch: string };

function show(value: DumpValue): string {
  if (Buffer.isBuffer(value)) return `${value.length} bytes, sha256 ${createHash('sha256').update(value).digest('hex').slice(0, 16)}…`;
  return JSON.stringify(value);
}

/** The first column where two rows of one table differ (Buffers by content: a SHA-256 of each is shown). */
function difference<T extends DumpTable>(table: T, a: DumpValue[], b: DumpValue[]): string | null {
  const columns = DUMP_COLUMNS[table];
  for (let i = 0; i < columns.length; i++) {
    const [x, y] = [a[i] ?? null, b[i] ?? null];
    const same = Buffer.isBuffer(x) && Buffer.isBuffer(y) ? x.equals(y) : x === y;
    if (!same) return `column ${columns[i]}: ${show(x)} in the source, ${show(y)} in the target`;
  }
  return null;
}

/**
 * Compares the target with the source: schema version, row counts of every table, then every row in key
 * order, column by column (sealed blobs, metadata and keys by their bytes, reported by SHA-256), then checks
 * the target's audit hash chain from the genesis and that its last hash is the source's.
 */
export async function verifyCopy(source: DumpSource, target: DumpSource, options: MigrationOptions = {}): Promise<VerifyOutcome> {
  const batch = options.batch ?? DEFAULT_BATCH;
  const schemaVersion = await checkSchemas(source, target);
  const counts = await countAll(source);
  const targetCounts = await countAll(target);
  for (const table of DUMP_TABLES) {
    if (counts[table] !== targetCounts[table]) {
      return { ok: false, mismatch: `${table}: ${counts[table]} rows in the source, ${targetCounts[table]} in the target` };
    }
  }
  const all = total(counts);
  let done = 0;
  let lastAuditHash: string | null = null;
  for (const table of DUMP_TABLES) {
    options.onProgress?.('verify', done, all, table);
    let after: DumpKey | null = null;
    for (;;) {
      const size = batchFor(table, batch);
      const mine: DumpRows[DumpTable][] = await source.exportRows(table, after, size);
      const theirs: DumpRows[DumpTable][] = await target.exportRows(table, after, size);
      for (let i = 0; i < Math.max(mine.length, theirs.length); i++) {
        const [a, b] = [mine[i], theirs[i]];
        if (a === undefined || b === undefined) {
          const key = dumpKey(table, (a ?? b)!);
          return { ok: false, mismatch: `${table} ${key}: present only in the ${a ? 'source' : 'target'}` };
        }
        const [ka, kb] = [dumpKey(table, a), dumpKey(table, b)];
        if (ka !== kb) return { ok: false, mismatch: `${table}: row ${ka} in the source where the target has row ${kb}` };
        const diff = difference(table, dumpValues(table, a), dumpValues(table, b));
        if (diff) return { ok: false, mismatch: `${table} ${ka}: ${diff}` };
        if (table === 'audit') lastAuditHash = (a as { hash: string }).hash;
      }
      if (mine.length === 0) break;
      after = dumpKey(table, mine[mine.length - 1]!);
      done += mine.length;
      options.onProgress?.('verify', done, all, table);
    }
  }
  const journal = await verifyJournal({ readAudit: (afterSeq, limit) => target.exportRows('audit', afterSeq, limit) });
  if (!journal.ok) return { ok: false, mismatch: `audit chain of the target broken at record ${journal.brokenSeq}: ${journal.reason}` };
  if (journal.records !== counts.audit) {
    return { ok: false, mismatch: `audit chain of the target: ${journal.records} records verified, ${counts.audit} in the source` };
  }
  return { ok: true, counts, schemaVersion, auditRecords: journal.records, lastAuditHash };
}
