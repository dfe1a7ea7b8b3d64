import type Database from 'better-sqlite3';
import {
  ENTITIES_OF_KIND,
  ENTITY_SPECS,
  ImportConflictError,
  keyColumn,
  type DirActivity,
  type DirCertificate,
  type DirChange,
  type DirectoryEntity,
  type DirectoryImportSession,
  type DirectoryStore,
  type DirMailbox,
  type DirOrganisation,
  type DirPractitioner,
  type DirSnapshot,
  type EntityDiff,
  type EntityRows,
  type EntitySpec,
  type ImportCommitInfo,
  type ImportOutcome,
  type NewDirCertificate,
  type SnapshotKind,
  type StagedRows,
} from '../directory-types.js';
import { directoryRowReaders } from '../directory-rows.js';
import type { Raw } from '../rows.js';
import { readInt } from './rows.js';

type Db = Database.Database;
type Statement = Database.Statement;

export interface SqliteDirectoryAccess {
  reader: Db;
  /** Runs `work` on the writer; what it committed is on disk when it resolves, unless `durable` is false. */
  withWriter<T>(work: (writer: Db) => Promise<T>, options?: { durable?: boolean }): Promise<T>;
}

const { toEntity, toSnapshot, toChange, toCertificate } = directoryRowReaders({ int: readInt, bool: (row, c) => readInt(row, c) !== 0 });

/** Upper bound of a prefix range: above every character a key or an address can hold. */
const PREFIX_END = '\u{10ffff}';
/** Rows per multi-row INSERT when staging (at most 32766 bound parameters per statement). */
const ROWS_PER_INSERT = 200;
/** Page cache of the staging (temporary) database, in KiB. */
const TEMP_CACHE_KIB = 4096;
/** A load this large (and a large share of the table) rebuilds the secondary indexes instead of updating them. */
const BULK_ROWS = 50_000;
const BULK_SHARE = 0.25;

function spec(entity: DirectoryEntity): EntitySpec<DirectoryEntity> {
  return ENTITY_SPECS[entity] as EntitySpec<DirectoryEntity>;
}

const keysTable = (e: DirectoryEntity) => `dir_stage_keys_${e}`;
const stageTable = (e: DirectoryEntity) => `dir_stage_${e}`;
/** A first load's table in the main database, shaped like the entity's, which it replaces at commit. */
const loadTable = (e: DirectoryEntity) => `dir_load_${e}`;
const indexName = (table: string, columns: readonly string[]) => `${table}_${columns.join('_')}`;
const keyIndex = (table: string) => `${table}_key`;

/** Every index of an entity's table, by name: the unique key index, then the secondary ones of its spec. */
function indexesOf(e: DirectoryEntity, on = spec(e).table): { name: string; sql: string }[] {
  const s = spec(e);
  const table = s.table;
  return [
    { name: keyIndex(table), sql: `CREATE UNIQUE INDEX ${keyIndex(table)} ON ${on} (${keyColumn(e)})` },
    ...s.indexes.map((cols) => ({ name: indexName(table, cols), sql: `CREATE INDEX ${indexName(table, cols)} ON ${on} (${cols.join(', ')})` })),
  ];
}

/** Gives the entity's table back any index it lacks (an import that stopped after dropping them, on no rows). */
function restoreIndexes(db: Db, e: DirectoryEntity): void {
  for (const { sql } of indexesOf(e)) db.exec(sql.replace(/^CREATE (UNIQUE )?INDEX /, 'CREATE $1INDEX IF NOT EXISTS '));
}

function isUniqueViolation(err: unknown): boolean {
  return err instanceof Error && (err as { code?: unknown }).code === 'SQLITE_CONSTRAINT_UNIQUE';
}
/** The (key, hash, active) index of an entity (the last of its spec): the comparison reads it alone. */
const diffIndex = (e: DirectoryEntity) => {
  const s = spec(e);
  return indexName(s.table, s.indexes[s.indexes.length - 1]!);
};

/**
 * The directory on SQLite, on the connections of the `SqliteStore` it belongs to: lookups on the reader (they
 * see committed data only), writes on the writer under the store's unit-of-work lock.
 *
 * An import stages into TEMP tables of the writer connection, in short transactions that touch only the
 * temporary database, so the main database is not locked while the file is read; `commit` then applies the
 * difference in one `BEGIN IMMEDIATE` transaction (docs/decisions/0007-directory.md).
 */
export class SqliteDirectoryStore implements DirectoryStore {
  readonly #reader: Db;
  readonly #withWriter: SqliteDirectoryAccess['withWriter'];
  readonly #statements = new Map<string, Statement>();
  #importing = false;

  constructor(access: SqliteDirectoryAccess) {
    this.#reader = access.reader;
    this.#withWriter = access.withWriter;
  }

  /** Prepared once per SQL text on the reader. */
  #stmt(sql: string): Statement {
    let s = this.#statements.get(sql);
    if (!s) {
      s = this.#reader.prepare(sql);
      this.#statements.set(sql, s);
    }
    return s;
  }

  #one(sql: string, ...params: unknown[]): Raw | undefined {
    return this.#stmt(sql).get(...params) as Raw | undefined;
  }

  #all(sql: string, ...params: unknown[]): Raw[] {
    return this.#stmt(sql).all(...params) as Raw[];
  }

  #entity<E extends DirectoryEntity>(entity: E, where: string, ...params: unknown[]): EntityRows[E][] {
    return this.#all(`SELECT * FROM ${spec(entity).table} WHERE ${where}`, ...params).map((r) => toEntity(entity, r));
  }

  async getMailbox(address: string): Promise<DirMailbox | null> {
    return this.#entity('mailbox', 'address = ?', address.toLowerCase())[0] ?? null;
  }

  async mailboxesOfOwner(ownerId: string): Promise<DirMailbox[]> {
    return this.#entity('mailbox', 'owner_id = ? AND active = 1 ORDER BY address', ownerId);
  }

  async mailboxesOfStructure(structureId: string, limit: number): Promise<DirMailbox[]> {
    return this.#entity('mailbox', 'structure_id = ? AND active = 1 ORDER BY address LIMIT ?', structureId, limit);
  }

  async getPractitioner(idNatPs: string): Promise<DirPractitioner | null> {
    return this.#entity('practitioner', 'id_nat_ps = ?', idNatPs)[0] ?? null;
  }

  async activitiesOf(idNatPs: string): Promise<DirActivity[]> {
    return this.#entity('activity', 'id_nat_ps = ? AND active = 1 ORDER BY activity_key', idNatPs);
  }

  async activitiesAtStructure(structureId: string, limit: number): Promise<DirActivity[]> {
    return this.#entity('activity', 'structure_id = ? AND active = 1 ORDER BY id_nat_ps, activity_key LIMIT ?', structureId, limit);
  }

  async getOrganisation(idNatStruct: string): Promise<DirOrganisation | null> {
    return this.#entity('organisation', 'id_nat_struct = ?', idNatStruct)[0] ?? null;
  }

  async searchMailboxes(
    keyPrefix: string,
    addressPrefix: string,
    options: { limit: number; includeListeRouge: boolean },
  ): Promise<DirMailbox[]> {
    const filter = `active = 1${options.includeListeRouge ? '' : ' AND liste_rouge = 0'}`;
    const parts: string[] = [];
    const params: unknown[] = [];
    const range = (column: string, prefix: string) => {
      parts.push(`SELECT id FROM (SELECT id FROM dir_mailboxes WHERE ${column} >= ? AND ${column} < ? AND ${filter} ORDER BY ${column} LIMIT ?)`);
      params.push(prefix, prefix + PREFIX_END, options.limit);
    };
    if (keyPrefix) {
      range('name_key', keyPrefix);
      range('alt_key', keyPrefix);
    }
    if (addressPrefix) range('address', addressPrefix.toLowerCase());
    if (parts.length === 0) return [];
    return this.#entity('mailbox', `id IN (${parts.join(' UNION ')}) ORDER BY name_key, address LIMIT ?`, ...params, options.limit);
  }

  async searchPractitioners(keyPrefix: string, limit: number): Promise<DirPractitioner[]> {
    if (!keyPrefix) return [];
    const end = keyPrefix + PREFIX_END;
    return this.#entity(
      'practitioner',
      `id IN (SELECT id FROM (SELECT id FROM dir_practitioners WHERE name_key >= ? AND name_key < ? AND active = 1 ORDER BY name_key LIMIT ?)
              UNION SELECT id FROM (SELECT id FROM dir_practitioners WHERE alt_key >= ? AND alt_key < ? AND active = 1 ORDER BY alt_key LIMIT ?))
       ORDER BY name_key, id_nat_ps LIMIT ?`,
      keyPrefix,
      end,
      limit,
      keyPrefix,
      end,
      limit,
      limit,
    );
  }

  async searchOrganisations(keyPrefix: string, limit: number): Promise<DirOrganisation[]> {
    if (!keyPrefix) return [];
    return this.#entity('organisation', 'name_key >= ? AND name_key < ? AND active = 1 ORDER BY name_key LIMIT ?', keyPrefix, keyPrefix + PREFIX_END, limit);
  }

  async listCertificates(ownerId: string): Promise<DirCertificate[]> {
    return this.#all('SELECT * FROM dir_certificates WHERE owner_id = ? ORDER BY not_after DESC, fingerprint', ownerId).map(toCertificate);
  }

  async getSnapshot(id: number): Promise<DirSnapshot | null> {
    const row = this.#one('SELECT * FROM dir_snapshots WHERE id = ?', id);
    return row ? toSnapshot(row) : null;
  }

  async latestSnapshot(kind: SnapshotKind): Promise<DirSnapshot | null> {
    const row = this.#one("SELECT * FROM dir_snapshots WHERE kind = ? AND status = 'complete' ORDER BY id DESC LIMIT 1", kind);
    return row ? toSnapshot(row) : null;
  }

  async listSnapshots(limit: number): Promise<DirSnapshot[]> {
    return this.#all('SELECT * FROM dir_snapshots ORDER BY id DESC LIMIT ?', limit).map(toSnapshot);
  }

  async listChanges(snapshotId: number, options: { entity?: DirectoryEntity; limit: number }): Promise<DirChange[]> {
    return options.entity
      ? this.#all('SELECT * FROM dir_changes WHERE snapshot_id = ? AND entity = ? ORDER BY entity, key LIMIT ?', snapshotId, options.entity, options.limit).map(toChange)
      : this.#all('SELECT * FROM dir_changes WHERE snapshot_id = ? ORDER BY entity, key LIMIT ?', snapshotId, options.limit).map(toChange);
  }

  async countRows(): Promise<Record<DirectoryEntity, { active: number; inactive: number }>> {
    const out = {} as Record<DirectoryEntity, { active: number; inactive: number }>;
    for (const entity of Object.keys(ENTITY_SPECS) as DirectoryEntity[]) {
      const row = this.#one(`SELECT count(*) AS total, coalesce(sum(active), 0) AS active FROM ${spec(entity).table}`)!;
      const active = readInt(row, 'active');
      out[entity] = { active, inactive: readInt(row, 'total') - active };
    }
    return out;
  }

  async putCertificate(c: NewDirCertificate): Promise<void> {
    await this.#withWriter(async (db) => {
      db.prepare(
        `INSERT INTO dir_certificates (fingerprint, owner_id, serial, subject, issuer, not_before, not_after, der, added_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (fingerprint) DO UPDATE SET owner_id = excluded.owner_id, serial = excluded.serial, subject = excluded.subject,
           issuer = excluded.issuer, not_before = excluded.not_before, not_after = excluded.not_after, der = excluded.der`,
      ).run(c.fingerprint, c.ownerId, c.serial, c.subject, c.issuer, c.notBefore, c.notAfter, c.der, Date.now());
    });
  }

  async removeCertificate(fingerprint: string): Promise<boolean> {
    return this.#withWriter(async (db) => db.prepare('DELETE FROM dir_certificates WHERE fingerprint = ?').run(fingerprint).changes === 1);
  }

  async beginImport(input: { kind: SnapshotKind; sourceName: string }): Promise<DirectoryImportSession> {
    if (this.#importing) throw new Error('an import is already running on this store');
    this.#importing = true;
    try {
      const entities = ENTITIES_OF_KIND[input.kind];
      const { snapshotId, baseId } = await this.#withWriter(async (db) => {
        db.exec('BEGIN IMMEDIATE');
        try {
          const base = db.prepare("SELECT id FROM dir_snapshots WHERE kind = ? AND status = 'complete' ORDER BY id DESC LIMIT 1").get(input.kind) as Raw | undefined;
          const baseId = base ? readInt(base, 'id') : null;
          const info = db
            .prepare("INSERT INTO dir_snapshots (kind, status, base_id, source_name, started_at) VALUES (?, 'running', ?, ?, ?)")
            .run(input.kind, baseId, input.sourceName, Date.now());
          db.exec('COMMIT');
          return { snapshotId: Number(info.lastInsertRowid), baseId };
        } catch (err) {
          if (db.inTransaction) db.exec('ROLLBACK');
          throw err;
        }
      });
      const empty = await this.#withWriter(async (db) => {
        // What an import that stopped half-way left: its load tables, and the indexes it had dropped.
        for (const e of entities) {
          db.exec(`DROP TABLE IF EXISTS main.${loadTable(e)}`);
          restoreIndexes(db, e);
        }
        const empty = new Set(entities.filter((e) => !db.prepare(`SELECT 1 FROM ${spec(e).table} LIMIT 1`).get()));
        // Staging tables are written in order and read once: a small page cache is enough (bounded memory).
        db.pragma(`temp.cache_size = ${-TEMP_CACHE_KIB}`);
        db.exec('DROP TABLE IF EXISTS temp.dir_stage_needed; CREATE TEMP TABLE dir_stage_needed (line INTEGER NOT NULL, entity TEXT NOT NULL)');
        for (const e of entities) {
          const s = spec(e);
          db.exec(`DROP TABLE IF EXISTS temp.${keysTable(e)}; DROP TABLE IF EXISTS temp.${stageTable(e)};`);
          if (empty.has(e)) {
            // The entity's own table, as its migrations left it, under another name and without its indexes.
            const row = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?").get(s.table) as Raw | undefined;
            const sql = typeof row?.sql === 'string' ? row.sql : '';
            const renamed = sql.replace(new RegExp(`^CREATE TABLE "?${s.table}"?`), `CREATE TABLE main.${loadTable(e)}`);
            if (renamed === sql) throw new Error(`directory ${e}: unexpected table definition ${JSON.stringify(sql.slice(0, 80))}`);
            db.exec(renamed);
          } else {
            db.exec(`CREATE TEMP TABLE ${keysTable(e)} (key TEXT NOT NULL, line INTEGER NOT NULL, hash INTEGER NOT NULL)`);
            db.exec(`CREATE TEMP TABLE ${stageTable(e)} (line INTEGER NOT NULL, ${s.columns.map((c) => c.column).join(', ')})`);
          }
        }
        return empty;
      });
      return new SqliteImportSession(this, input.kind, snapshotId, baseId, entities, empty);
    } catch (err) {
      this.#importing = false;
      throw err;
    }
  }

  /** For the session. */
  get reader(): Db {
    return this.#reader;
  }

  get withWriter(): SqliteDirectoryAccess['withWriter'] {
    return this.#withWriter;
  }

  endImport(): void {
    this.#importing = false;
  }
}

/** Values per staged key row, and per staged record row of each entity (`line` and the entity's columns). */
const KEY_WIDTH = 3;
const RECORD_WIDTH = Object.fromEntries(
  (Object.keys(ENTITY_SPECS) as DirectoryEntity[]).map((e) => [e, spec(e).columns.length + 1]),
) as Record<DirectoryEntity, number>;

/** Fills the bound values of staged row `row` at `offset` of `out`. */
type FillRow = (out: unknown[], offset: number, row: number) => void;

/** A table rows are staged into: the head of its multi-row INSERT, one row's values, and its transaction. */
type StageTarget = { name: string; head: string; one: string; width: number; begin: 'BEGIN' | 'BEGIN IMMEDIATE' };

class SqliteImportSession implements DirectoryImportSession {
  readonly #inserts = new Map<string, { statement: Statement; params: unknown[] }>();
  #done = false;

  constructor(
    private readonly dir: SqliteDirectoryStore,
    readonly kind: SnapshotKind,
    readonly snapshotId: number,
    readonly baseId: number | null,
    private readonly entities: readonly DirectoryEntity[],
    /** Entities whose table was empty when the import began: nothing to probe. */
    private readonly empty: ReadonlySet<DirectoryEntity>,
  ) {}

  #check(entity: DirectoryEntity): void {
    if (this.#done) throw new Error('import session is over');
    if (!this.entities.includes(entity)) throw new Error(`a ${this.kind} import has no ${entity} rows`);
  }

  stagesAll(entity: DirectoryEntity): boolean {
    return this.empty.has(entity);
  }

  /**
   * Where a batch of an entity's rows goes, as the head of a multi-row INSERT and the values of one row (`width`
   * bound values each). Keys and, on a re-import, changed records go to temp tables; a first load's records go
   * to its load table, as the rows they will be (their line as id: in file order, so the first line of a key has
   * the smallest), with the transaction it takes on the main database.
   */
  #target(table: 'keys' | 'records', e: DirectoryEntity): StageTarget {
    const marks = (n: number) => Array(n).fill('?').join(', ');
    if (table === 'keys') return { name: keysTable(e), head: `INSERT INTO temp.${keysTable(e)} VALUES `, one: `(${marks(KEY_WIDTH)})`, width: KEY_WIDTH, begin: 'BEGIN' };
    const width = RECORD_WIDTH[e];
    if (!this.empty.has(e)) return { name: stageTable(e), head: `INSERT INTO temp.${stageTable(e)} VALUES `, one: `(${marks(width)})`, width, begin: 'BEGIN' };
    const columns = ['id', ...spec(e).columns.map((c) => c.column), 'active', 'added_snapshot', 'changed_snapshot'];
    return {
      name: loadTable(e),
      head: `INSERT INTO main.${loadTable(e)} (${columns.join(', ')}) VALUES `,
      one: `(${marks(width)}, 1, ${this.snapshotId}, ${this.snapshotId})`,
      width,
      begin: 'BEGIN IMMEDIATE',
    };
  }

  /** The multi-row INSERT of `rows` rows (ROWS_PER_INSERT or 1) into a target, prepared once, with the array its values are bound from (reused). */
  #insert(db: Db, target: StageTarget, rows: number): { statement: Statement; params: unknown[] } {
    const name = `${target.name}:${rows}`;
    let s = this.#inserts.get(name);
    if (!s) {
      s = { statement: db.prepare(target.head + Array(rows).fill(target.one).join(', ')), params: new Array(target.width * rows) };
      this.#inserts.set(name, s);
    }
    return s;
  }

  /** Inserts `total` rows, each filled by `fill`, in one transaction. */
  #insertAll(db: Db, target: StageTarget, total: number, fill: FillRow): void {
    db.exec(target.begin);
    try {
      let row = 0;
      if (total >= ROWS_PER_INSERT) {
        const { statement, params } = this.#insert(db, target, ROWS_PER_INSERT);
        for (; row + ROWS_PER_INSERT <= total; row += ROWS_PER_INSERT) {
          for (let i = 0; i < ROWS_PER_INSERT; i++) fill(params, i * target.width, row + i);
          statement.run(params);
        }
      }
      // The remainder row by row: a statement per remainder size would pile up prepared statements.
      if (row < total) {
        const { statement, params } = this.#insert(db, target, 1);
        for (; row < total; row++) {
          fill(params, 0, row);
          statement.run(params);
        }
      }
      db.exec('COMMIT');
    } catch (err) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw err;
    }
  }

  readonly stagingFormat = 'values';
  /** Records written to each load table. */
  readonly #loaded = new Map<DirectoryEntity, number>();

  /**
   * Inserts a batch of `StagedRows` (`values`: bound as they are). Staged rows count only once the import
   * commits, which syncs: their own commits need not wait for the disk.
   */
  async #stage(table: 'keys' | 'records', entity: DirectoryEntity, rows: StagedRows): Promise<void> {
    if (rows.count === 0) return;
    if (rows.format !== 'values') throw new Error(`staged rows: ${rows.format} instead of values`);
    const target = this.#target(table, entity);
    const { width } = target;
    const { values } = rows;
    if (values.length !== rows.count * width) throw new Error(`staged rows: ${values.length} values for ${rows.count} rows of ${width}`);
    await this.dir.withWriter(
      async (db) =>
        this.#insertAll(db, target, rows.count, (out, o, i) => {
          for (let c = 0, from = i * width; c < width; c++) out[o + c] = values[from + c];
        }),
      { durable: false },
    );
    if (target.name === loadTable(entity)) this.#loaded.set(entity, (this.#loaded.get(entity) ?? 0) + rows.count);
  }

  async stageKeys(entity: DirectoryEntity, rows: StagedRows): Promise<void> {
    this.#check(entity);
    if (this.empty.has(entity)) throw new Error(`a first load of ${entity} stages whole records, not keys`);
    await this.#stage('keys', entity, rows);
  }

  async stageRecords(entity: DirectoryEntity, rows: StagedRows): Promise<void> {
    this.#check(entity);
    await this.#stage('records', entity, rows);
  }

  /**
   * Where an entity's staged keys are, with the line each comes from: a first load's records themselves (their id
   * is their line), else the key table.
   */
  #keys(entity: DirectoryEntity): { table: string; key: string; line: string } {
    return this.empty.has(entity)
      ? { table: `main.${loadTable(entity)}`, key: keyColumn(entity), line: 'id' }
      : { table: `temp.${keysTable(entity)}`, key: 'key', line: 'line' };
  }

  /** A query of the later lines (`line`) of keys that come more than once, each with its key's first (`first`). */
  #laterLines(entity: DirectoryEntity): string {
    const { table, key, line } = this.#keys(entity);
    const groups = `(SELECT ${key} AS key, min(${line}) AS first FROM ${table} GROUP BY ${key} HAVING count(*) > 1)`;
    return `SELECT k.${line} AS line, d.first AS first FROM ${table} k JOIN ${groups} d ON d.key = k.${key} AND k.${line} > d.first`;
  }

  /** The later lines of keys that come more than once, with the first line of each: `limit` of them, in line order. */
  #repeats(db: Db, entity: DirectoryEntity, limit: number): { line: number; firstLine: number }[] {
    const rows = db.prepare(`${this.#laterLines(entity)} ORDER BY line LIMIT ?`).all(limit) as Raw[];
    return rows.map((r) => ({ line: readInt(r, 'line'), firstLine: readInt(r, 'first') }));
  }

  async duplicates(entity: DirectoryEntity, limit: number): Promise<{ total: number; sample: { line: number; firstLine: number }[] }> {
    this.#check(entity);
    return this.dir.withWriter(async (db) => {
      const total = this.#keyStats(db, entity).duplicates;
      return { total, sample: total === 0 ? [] : this.#repeats(db, entity, limit) };
    });
  }

  #needed = false;

  async neededLines(afterLine: number, limit: number): Promise<{ line: number; entities: DirectoryEntity[] }[]> {
    if (this.#done) throw new Error('import session is over');
    return this.dir.withWriter(async (db) => {
      if (!this.#needed) {
        // Once: the first line of each key whose hash the directory does not hold on an active row. Both sides are
        // read in key order (the staged keys' index, the table's unique index), so the lookups stay local.
        db.exec('BEGIN');
        try {
          for (const e of this.entities) {
            if (this.empty.has(e)) continue;
            this.#indexKeys(db, e);
            const key = keyColumn(e);
            // SQLite takes the bare column `hash` from the row where min(line) is found: the first line's hash.
            db.prepare(
              `INSERT INTO temp.dir_stage_needed (line, entity)
               SELECT g.first, ? FROM (SELECT key, min(line) AS first, hash FROM temp.${keysTable(e)} GROUP BY key) g
                WHERE NOT EXISTS (SELECT 1 FROM ${spec(e).table} m INDEXED BY ${diffIndex(e)}
                                   WHERE m.${key} = g.key AND m.hash = g.hash AND m.active = 1)`,
            ).run(e);
          }
          db.exec('CREATE INDEX IF NOT EXISTS temp.dir_stage_needed_line ON dir_stage_needed (line, entity)');
          db.exec('COMMIT');
        } catch (err) {
          if (db.inTransaction) db.exec('ROLLBACK');
          throw err;
        }
        this.#needed = true;
      }
      const lines = db.prepare('SELECT DISTINCT line FROM temp.dir_stage_needed WHERE line > ? ORDER BY line LIMIT ?').all(afterLine, limit) as Raw[];
      if (lines.length === 0) return [];
      const rows = db
        .prepare('SELECT line, entity FROM temp.dir_stage_needed WHERE line BETWEEN ? AND ? ORDER BY line, entity')
        .all(readInt(lines[0]!, 'line'), readInt(lines[lines.length - 1]!, 'line')) as Raw[];
      const out: { line: number; entities: DirectoryEntity[] }[] = [];
      for (const r of rows) {
        const line = readInt(r, 'line');
        const entity = this.entities.find((e) => e === r.entity);
        if (!entity) throw new Error(`unexpected entity ${String(r.entity)}`);
        const last = out[out.length - 1];
        if (last && last.line === line) last.entities.push(entity);
        else out.push({ line, entities: [entity] });
      }
      return out;
    });
  }

  #indexed = new Set<DirectoryEntity>();

  /** The staged keys in key order, for the comparison (a first load's staged records are only counted and copied). */
  #indexKeys(db: Db, entity: DirectoryEntity): void {
    if (this.#indexed.has(entity) || this.empty.has(entity)) return;
    db.exec(`CREATE INDEX IF NOT EXISTS temp.${keysTable(entity)}_key ON ${keysTable(entity)} (key, line, hash)`);
    this.#indexed.add(entity);
  }

  readonly #stats = new Map<DirectoryEntity, { keys: number; duplicates: number }>();

  /**
   * Distinct staged keys and repeated lines, counted once. A first load's keys are counted by building an index
   * its table needs anyway: the unique key index when the key is not expected to repeat (the build fails at a
   * repeat; only then are they grouped and counted), else the (key, hash, active) index first, which the count
   * and the deletion of later duplicates then read in key order instead of sorting the table. Other keys by one
   * pass over them in key order.
   */
  #keyStats(db: Db, entity: DirectoryEntity): { keys: number; duplicates: number } {
    let stats = this.#stats.get(entity);
    if (!stats && this.empty.has(entity)) {
      this.#dropIndexes(db, entity);
      const indexes = indexesOf(entity, loadTable(entity));
      if (spec(entity).keyRepeats) {
        db.exec(indexes.find((i) => i.name === diffIndex(entity))!.sql);
      } else {
        try {
          db.exec(indexes[0]!.sql);
          stats = { keys: this.#loaded.get(entity) ?? 0, duplicates: 0 };
        } catch (err) {
          if (!isUniqueViolation(err)) throw err;
        }
      }
    }
    if (!stats) {
      this.#indexKeys(db, entity);
      const { table, key } = this.#keys(entity);
      const row = db.prepare(`SELECT count(*) AS keys, coalesce(sum(n - 1), 0) AS duplicates FROM (SELECT count(*) AS n FROM ${table} GROUP BY ${key})`).get() as Raw;
      stats = { keys: readInt(row, 'keys'), duplicates: readInt(row, 'duplicates') };
    }
    this.#stats.set(entity, stats);
    return stats;
  }

  /** Keeps, per key, only the record of its first line (a later duplicate may have been staged as changed). */
  #dropLaterDuplicates(db: Db, entity: DirectoryEntity): void {
    if (this.#keyStats(db, entity).duplicates === 0) return;
    // A first load's records are its keys (their id is their line); otherwise the changed records are staged apart.
    const records = this.empty.has(entity) ? { table: this.#keys(entity).table, line: 'id' } : { table: `temp.${stageTable(entity)}`, line: 'line' };
    db.exec(`DELETE FROM ${records.table} WHERE ${records.line} IN (SELECT line FROM (${this.#laterLines(entity)}))`);
  }

  /**
   * The entity table's own indexes, dropped while it is empty and a first load builds the same ones, under the
   * same names, on the table that replaces it. Given back by `restoreIndexes` if the import stops.
   */
  #dropIndexes(db: Db, entity: DirectoryEntity): void {
    if (this.#indexesDropped.has(entity)) return;
    if (db.prepare(`SELECT 1 FROM ${spec(entity).table} LIMIT 1`).get()) {
      throw new ImportConflictError(`the directory's ${entity} rows changed while this import ran: nothing was changed, import again`);
    }
    for (const { name } of indexesOf(entity)) db.exec(`DROP INDEX IF EXISTS ${name}`);
    this.#indexesDropped.add(entity);
  }

  readonly #indexesDropped = new Set<DirectoryEntity>();

  /**
   * A first load's table, ready to take the entity table's place: later duplicates deleted, then each index
   * built, every step its own transaction, so that the server's writers wait for one index at most.
   */
  #prepareLoad(db: Db, entity: DirectoryEntity): void {
    const load = loadTable(entity);
    const stats = this.#keyStats(db, entity);
    this.#dropIndexes(db, entity);
    const has = (name: string) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ? AND tbl_name = ?").get(name, load) !== undefined;
    if (stats.duplicates > 0) {
      db.exec('BEGIN IMMEDIATE');
      try {
        this.#dropLaterDuplicates(db, entity);
        db.exec('COMMIT');
      } catch (err) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw err;
      }
    }
    // The unique key index may be there already: counting the keys built it.
    for (const index of indexesOf(entity, load)) if (!has(index.name)) db.exec(index.sql);
  }

  async commit(info: ImportCommitInfo): Promise<ImportOutcome> {
    if (this.#done) throw new Error('import session is over');
    try {
      const outcome = await this.dir.withWriter(async (db) => {
        // Before the one transaction that changes the directory: temp-only work, and a first load's index builds.
        db.exec('BEGIN');
        try {
          for (const e of this.entities) if (!this.empty.has(e)) this.#dropLaterDuplicates(db, e);
          db.exec('COMMIT');
        } catch (err) {
          if (db.inTransaction) db.exec('ROLLBACK');
          throw err;
        }
        for (const e of this.entities) if (this.empty.has(e)) this.#prepareLoad(db, e);
        db.exec('BEGIN IMMEDIATE');
        try {
          const result = this.#apply(db, info);
          db.exec('COMMIT');
          return result;
        } catch (err) {
          if (db.inTransaction) db.exec('ROLLBACK');
          throw err;
        }
      });
      await this.#finish(null);
      return outcome;
    } catch (err) {
      await this.#finish(err instanceof Error ? err.message : String(err));
      throw err;
    }
  }

  #apply(db: Db, info: ImportCommitInfo): ImportOutcome {
    const latest = db.prepare("SELECT id FROM dir_snapshots WHERE kind = ? AND status = 'complete' ORDER BY id DESC LIMIT 1").get(this.kind) as
      | Raw
      | undefined;
    const latestId = latest ? readInt(latest, 'id') : null;
    if (latestId !== this.baseId) {
      throw new ImportConflictError(`another ${this.kind} import (snapshot ${latestId}) completed while this one ran: nothing was changed, import again`);
    }
    const initial = this.baseId === null;
    const snap = this.snapshotId;
    const diff: Partial<Record<DirectoryEntity, EntityDiff>> = {};
    for (const e of this.entities) {
      const s = spec(e);
      const key = keyColumn(e);
      const table = s.table;
      const stage = `temp.${stageTable(e)}`;
      const keys = `temp.${keysTable(e)}`;
      const count = (sql: string, ...params: unknown[]) => readInt(db.prepare(sql).get(...params) as Raw, 'n');
      const stats = this.#keyStats(db, e);
      const sizes = db.prepare(`SELECT count(*) AS total, coalesce(sum(active), 0) AS active FROM ${table}`).get() as Raw;
      const total = readInt(sizes, 'total');
      const activeBefore = readInt(sizes, 'active');
      if (this.empty.has(e)) {
        if (total > 0) throw new ImportConflictError(`the directory's ${e} rows changed while this import ran: nothing was changed, import again`);
        // A first load's table, its later duplicates deleted and its indexes built, takes the empty one's place.
        db.exec(`DROP TABLE ${table}`);
        db.exec(`ALTER TABLE ${loadTable(e)} RENAME TO ${table}`);
        diff[e] = { added: stats.keys, removed: 0, changed: 0, unchanged: 0 };
        continue;
      }
      // A table that held rows when the import began still does (rows are deactivated, never deleted).
      const staged = count(`SELECT count(*) AS n FROM ${stage}`);
      // Staged records are new or changed; every other key of the file is held unchanged. The rows the file
      // no longer has are counted without a scan, and looked for only when there are some.
      const changed = count(`SELECT count(*) AS n FROM ${stage} s WHERE EXISTS (SELECT 1 FROM ${table} m WHERE m.${key} = s.${key} AND m.active = 1)`);
      const added = staged - changed;
      const unchanged = stats.keys - staged;
      const removed = activeBefore - unchanged - changed;
      const notInFile = `active = 1 AND NOT EXISTS (SELECT 1 FROM ${keys} k WHERE k.key = ${table}.${key})`;
      if (!initial) {
        db.prepare(
          `INSERT INTO dir_changes (snapshot_id, entity, key, change)
           SELECT ?, ?, s.${key}, CASE WHEN EXISTS (SELECT 1 FROM ${table} m WHERE m.${key} = s.${key} AND m.active = 1) THEN 'changed' ELSE 'added' END
             FROM ${stage} s`,
        ).run(snap, e);
      }
      if (removed > 0) {
        let found: number;
        if (initial) {
          found = db.prepare(`UPDATE ${table} SET active = 0, removed_snapshot = ? WHERE ${notInFile}`).run(snap).changes;
        } else {
          found = db.prepare(`INSERT INTO dir_changes (snapshot_id, entity, key, change) SELECT ?, ?, ${key}, 'removed' FROM ${table} WHERE ${notInFile}`).run(snap, e).changes;
          db.prepare(
            `UPDATE ${table} SET active = 0, removed_snapshot = ?
              WHERE ${key} IN (SELECT key FROM dir_changes WHERE snapshot_id = ? AND entity = ? AND change = 'removed')`,
          ).run(snap, snap, e);
        }
        if (found !== removed) throw new Error(`directory ${e}: ${found} rows left the file, ${removed} expected`);
      }

      const bulk = staged >= BULK_ROWS && staged >= BULK_SHARE * total;
      if (bulk) for (const cols of s.indexes) db.exec(`DROP INDEX IF EXISTS ${indexName(table, cols)}`);
      const columns = s.columns.map((c) => c.column);
      db.exec(
        `INSERT INTO ${table} (${columns.join(', ')}, active, added_snapshot, changed_snapshot, removed_snapshot)
         SELECT ${columns.join(', ')}, 1, ${snap}, ${snap}, NULL FROM ${stage} WHERE true
         ON CONFLICT (${key}) DO UPDATE SET ${columns.map((c) => `${c} = excluded.${c}`).join(', ')},
           added_snapshot = CASE WHEN ${table}.active = 1 THEN ${table}.added_snapshot ELSE excluded.added_snapshot END,
           active = 1, changed_snapshot = excluded.changed_snapshot, removed_snapshot = NULL`,
      );
      if (bulk) for (const cols of s.indexes) db.exec(`CREATE INDEX ${indexName(table, cols)} ON ${table} (${cols.join(', ')})`);
      diff[e] = { added, removed, changed, unchanged };
    }
    db.prepare(
      `UPDATE dir_snapshots SET status = 'complete', finished_at = ?, rows_total = ?, rows_bad = ?, source_sha256 = ?, diff = ? WHERE id = ?`,
    ).run(Date.now(), info.rowsTotal, info.rowsBad, info.sourceSha256, JSON.stringify(diff), snap);
    const snapshot = toSnapshot(db.prepare('SELECT * FROM dir_snapshots WHERE id = ?').get(snap) as Raw);
    return { snapshot, diff, initial };
  }

  async abort(reason: string): Promise<void> {
    if (this.#done) return;
    await this.#finish(reason);
  }

  /** Drops the staging tables; a reason marks the snapshot failed. */
  async #finish(failure: string | null): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    try {
      await this.dir.withWriter(async (db) => {
        for (const e of this.entities) db.exec(`DROP TABLE IF EXISTS temp.${keysTable(e)}; DROP TABLE IF EXISTS temp.${stageTable(e)};`);
        // A first load that did not commit: its table goes, and the empty table gets back the indexes it gave up.
        for (const e of this.empty) {
          db.exec(`DROP TABLE IF EXISTS main.${loadTable(e)}`);
          restoreIndexes(db, e);
        }
        db.exec('DROP TABLE IF EXISTS temp.dir_stage_needed');
        if (failure !== null) {
          db.prepare("UPDATE dir_snapshots SET status = 'failed', finished_at = ?, error = ? WHERE id = ? AND status = 'running'").run(
            Date.now(),
            failure.slice(0, 2000),
            this.snapshotId,
          );
        }
      });
    } finally {
      this.dir.endImport();
    }
  }
}
