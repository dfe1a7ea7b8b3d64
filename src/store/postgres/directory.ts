import type pg from 'pg';
import {
  ENTITIES_OF_KIND,
  ENTITY_SPECS,
  ImportConflictError,
  keyColumn,
  type ColumnKind,
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
import { CorruptRowError, type Raw } from '../rows.js';
import { readInt } from './rows.js';

const { toEntity, toSnapshot, toChange, toCertificate } = directoryRowReaders({
  int: readInt,
  bool: (row, column) => {
    const v = row[column];
    if (typeof v === 'boolean') return v;
    throw new CorruptRowError(`column ${column}: expected a boolean`);
  },
});

/** Upper bound of a prefix range (columns searched by prefix are COLLATE "C": byte order). */
const PREFIX_END = '\u{10ffff}';
const BULK_ROWS = 50_000;
const BULK_SHARE = 0.25;
/** Serialises the commits of directory imports across processes (docs/decisions/0004 lists the others). */
const DIRECTORY_LOCK = 0x6d7373_07;

const SQL_TYPE: Record<ColumnKind, string> = { text: 'text', textOrNull: 'text', int: 'bigint', bool: 'boolean', boolOrNull: 'boolean' };

function spec(entity: DirectoryEntity): EntitySpec<DirectoryEntity> {
  return ENTITY_SPECS[entity] as EntitySpec<DirectoryEntity>;
}

const keysTable = (e: DirectoryEntity) => `dir_stage_keys_${e}`;
const stageTable = (e: DirectoryEntity) => `dir_stage_${e}`;
const indexName = (table: string, columns: readonly string[]) => `${table}_${columns.join('_')}`;

type Query = (sql: string, params?: unknown[]) => Promise<Raw[]>;

/**
 * Reads with a fixed text (the point lookups of the sender checks, the lookups of `mss directory show`) are
 * named statements: each pooled connection parses and plans them once, then only binds and executes.
 */
const namedReads = new Map<string, string>();
function named(sql: string): string {
  if (!namedReads.has(sql)) namedReads.set(sql, `mss_dir_${namedReads.size}`);
  return sql;
}

const SELECT_MAILBOX = named('SELECT * FROM dir_mailboxes WHERE address = $1');
const SELECT_PRACTITIONER = named('SELECT * FROM dir_practitioners WHERE id_nat_ps = $1');
const SELECT_ORGANISATION = named('SELECT * FROM dir_organisations WHERE id_nat_struct = $1');
const SELECT_MAILBOXES_OF_OWNER = named('SELECT * FROM dir_mailboxes WHERE owner_id = $1 AND active ORDER BY address');
const SELECT_ACTIVITIES_OF = named('SELECT * FROM dir_activities WHERE id_nat_ps = $1 AND active ORDER BY activity_key COLLATE "C"');

/**
 * The directory on PostgreSQL, on the pool of the `PostgresStore` it belongs to. An import holds one client of
 * the pool for its whole run: it stages into TEMP tables of that session (not WAL-logged), then applies the
 * difference in one transaction under an advisory lock (docs/decisions/0007-directory.md).
 */
export class PostgresDirectoryStore implements DirectoryStore {
  readonly #query: Query;
  #importing = false;

  constructor(private readonly pool: pg.Pool) {
    this.#query = async (sql, params = []) => {
      const name = namedReads.get(sql);
      return (await pool.query<Raw>(name ? { name, text: sql, values: params } : { text: sql, values: params })).rows;
    };
  }

  async #rows<E extends DirectoryEntity>(entity: E, sql: string, ...params: unknown[]): Promise<EntityRows[E][]> {
    return (await this.#query(sql, params)).map((r) => toEntity(entity, r));
  }

  async #entity<E extends DirectoryEntity>(entity: E, where: string, ...params: unknown[]): Promise<EntityRows[E][]> {
    return (await this.#query(`SELECT * FROM ${spec(entity).table} WHERE ${where}`, params)).map((r) => toEntity(entity, r));
  }

  async getMailbox(address: string): Promise<DirMailbox | null> {
    return (await this.#rows('mailbox', SELECT_MAILBOX, address.toLowerCase()))[0] ?? null;
  }

  mailboxesOfOwner(ownerId: string): Promise<DirMailbox[]> {
    return this.#rows('mailbox', SELECT_MAILBOXES_OF_OWNER, ownerId);
  }

  mailboxesOfStructure(structureId: string, limit: number): Promise<DirMailbox[]> {
    return this.#entity('mailbox', 'structure_id = $1 AND active ORDER BY address LIMIT $2', structureId, limit);
  }

  async getPractitioner(idNatPs: string): Promise<DirPractitioner | null> {
    return (await this.#rows('practitioner', SELECT_PRACTITIONER, idNatPs))[0] ?? null;
  }

  activitiesOf(idNatPs: string): Promise<DirActivity[]> {
    return this.#rows('activity', SELECT_ACTIVITIES_OF, idNatPs);
  }

  activitiesAtStructure(structureId: string, limit: number): Promise<DirActivity[]> {
    return this.#entity('activity', 'structure_id = $1 AND active ORDER BY id_nat_ps COLLATE "C", activity_key COLLATE "C" LIMIT $2', structureId, limit);
  }

  async getOrganisation(idNatStruct: string): Promise<DirOrganisation | null> {
    return (await this.#rows('organisation', SELECT_ORGANISATION, idNatStruct))[0] ?? null;
  }

  async searchMailboxes(
    keyPrefix: string,
    addressPrefix: string,
    options: { limit: number; includeListeRouge: boolean },
  ): Promise<DirMailbox[]> {
    const filter = `active${options.includeListeRouge ? '' : ' AND NOT liste_rouge'}`;
    const parts: string[] = [];
    const params: unknown[] = [options.limit];
    const range = (column: string, prefix: string) => {
      params.push(prefix, prefix + PREFIX_END);
      const [from, to] = [params.length - 1, params.length];
      parts.push(`(SELECT id FROM dir_mailboxes WHERE ${column} >= $${from} AND ${column} < $${to} AND ${filter} ORDER BY ${column} LIMIT $1)`);
    };
    if (keyPrefix) {
      range('name_key', keyPrefix);
      range('alt_key', keyPrefix);
    }
    if (addressPrefix) range('address', addressPrefix.toLowerCase());
    if (parts.length === 0) return [];
    return this.#entity('mailbox', `id IN (${parts.join(' UNION ')}) ORDER BY name_key, address LIMIT $1`, ...params);
  }

  searchPractitioners(keyPrefix: string, limit: number): Promise<DirPractitioner[]> {
    if (!keyPrefix) return Promise.resolve([]);
    return this.#entity(
      'practitioner',
      `id IN ((SELECT id FROM dir_practitioners WHERE name_key >= $1 AND name_key < $2 AND active ORDER BY name_key LIMIT $3)
              UNION (SELECT id FROM dir_practitioners WHERE alt_key >= $1 AND alt_key < $2 AND active ORDER BY alt_key LIMIT $3))
       ORDER BY name_key, id_nat_ps COLLATE "C" LIMIT $3`,
      keyPrefix,
      keyPrefix + PREFIX_END,
      limit,
    );
  }

  searchOrganisations(keyPrefix: string, limit: number): Promise<DirOrganisation[]> {
    if (!keyPrefix) return Promise.resolve([]);
    return this.#entity('organisation', 'name_key >= $1 AND name_key < $2 AND active ORDER BY name_key LIMIT $3', keyPrefix, keyPrefix + PREFIX_END, limit);
  }

  async listCertificates(ownerId: string): Promise<DirCertificate[]> {
    return (await this.#query('SELECT * FROM dir_certificates WHERE owner_id = $1 ORDER BY not_after DESC, fingerprint COLLATE "C"', [ownerId])).map(
      toCertificate,
    );
  }

  async getSnapshot(id: number): Promise<DirSnapshot | null> {
    const row = (await this.#query('SELECT * FROM dir_snapshots WHERE id = $1', [id]))[0];
    return row ? toSnapshot(row) : null;
  }

  async latestSnapshot(kind: SnapshotKind): Promise<DirSnapshot | null> {
    const row = (await this.#query("SELECT * FROM dir_snapshots WHERE kind = $1 AND status = 'complete' ORDER BY id DESC LIMIT 1", [kind]))[0];
    return row ? toSnapshot(row) : null;
  }

  async listSnapshots(limit: number): Promise<DirSnapshot[]> {
    return (await this.#query('SELECT * FROM dir_snapshots ORDER BY id DESC LIMIT $1', [limit])).map(toSnapshot);
  }

  async listChanges(snapshotId: number, options: { entity?: DirectoryEntity; limit: number }): Promise<DirChange[]> {
    const rows = options.entity
      ? await this.#query('SELECT * FROM dir_changes WHERE snapshot_id = $1 AND entity = $2 ORDER BY entity, key COLLATE "C" LIMIT $3', [
          snapshotId,
          options.entity,
          options.limit,
        ])
      : await this.#query('SELECT * FROM dir_changes WHERE snapshot_id = $1 ORDER BY entity, key COLLATE "C" LIMIT $2', [snapshotId, options.limit]);
    return rows.map(toChange);
  }

  async countRows(): Promise<Record<DirectoryEntity, { active: number; inactive: number }>> {
    const out = {} as Record<DirectoryEntity, { active: number; inactive: number }>;
    for (const entity of Object.keys(ENTITY_SPECS) as DirectoryEntity[]) {
      const row = (await this.#query(`SELECT count(*) FILTER (WHERE active) AS active, count(*) FILTER (WHERE NOT active) AS inactive FROM ${spec(entity).table}`))[0]!;
      out[entity] = { active: readInt(row, 'active'), inactive: readInt(row, 'inactive') };
    }
    return out;
  }

  async putCertificate(c: NewDirCertificate): Promise<void> {
    await this.#query(
      `INSERT INTO dir_certificates (fingerprint, owner_id, serial, subject, issuer, not_before, not_after, der, added_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (fingerprint) DO UPDATE SET owner_id = excluded.owner_id, serial = excluded.serial, subject = excluded.subject,
         issuer = excluded.issuer, not_before = excluded.not_before, not_after = excluded.not_after, der = excluded.der`,
      [c.fingerprint, c.ownerId, c.serial, c.subject, c.issuer, c.notBefore, c.notAfter, c.der, Date.now()],
    );
  }

  async removeCertificate(fingerprint: string): Promise<boolean> {
    return (await this.#query('DELETE FROM dir_certificates WHERE fingerprint = $1 RETURNING fingerprint', [fingerprint])).length === 1;
  }

  async beginImport(input: { kind: SnapshotKind; sourceName: string }): Promise<DirectoryImportSession> {
    if (this.#importing) throw new Error('an import is already running on this store');
    this.#importing = true;
    let client: pg.PoolClient | null = null;
    try {
      const base = (await this.#query("SELECT id FROM dir_snapshots WHERE kind = $1 AND status = 'complete' ORDER BY id DESC LIMIT 1", [input.kind]))[0];
      const baseId = base ? readInt(base, 'id') : null;
      const row = (
        await this.#query("INSERT INTO dir_snapshots (kind, status, base_id, source_name, started_at) VALUES ($1, 'running', $2, $3, $4) RETURNING id", [
          input.kind,
          baseId,
          input.sourceName,
          Date.now(),
        ])
      )[0]!;
      const snapshotId = readInt(row, 'id');
      client = await this.pool.connect();
      const entities = ENTITIES_OF_KIND[input.kind];
      // Sorts and hashes over a million staged keys stay in memory (reset when the session ends).
      await client.query(`SET work_mem = '${IMPORT_WORK_MEM}'`);
      await client.query('DROP TABLE IF EXISTS dir_stage_needed');
      await client.query('CREATE TEMP TABLE dir_stage_needed (line bigint NOT NULL, entity text NOT NULL)');
      const empty = new Set<DirectoryEntity>();
      for (const e of entities) if ((await client.query(`SELECT 1 FROM ${spec(e).table} LIMIT 1`)).rowCount === 0) empty.add(e);
      for (const e of entities) {
        const s = spec(e);
        await client.query(`DROP TABLE IF EXISTS ${keysTable(e)}; DROP TABLE IF EXISTS ${stageTable(e)};`);
        await client.query(`CREATE TEMP TABLE ${keysTable(e)} (key text COLLATE "C" NOT NULL, line bigint NOT NULL, hash bigint NOT NULL)`);
        await client.query(
          `CREATE TEMP TABLE ${stageTable(e)} (line bigint NOT NULL, ${s.columns.map((c) => `${c.column} ${SQL_TYPE[c.kind]}${c.kind === 'text' ? ' COLLATE "C"' : ''}`).join(', ')})`,
        );
      }
      return new PostgresImportSession(this, client, input.kind, snapshotId, baseId, entities, empty);
    } catch (err) {
      client?.release(true);
      this.#importing = false;
      throw err;
    }
  }

  endImport(): void {
    this.#importing = false;
  }

  markFailed(snapshotId: number, reason: string): Promise<Raw[]> {
    return this.#query("UPDATE dir_snapshots SET status = 'failed', finished_at = $1, error = $2 WHERE id = $3 AND status = 'running'", [
      Date.now(),
      reason.slice(0, 2000),
      snapshotId,
    ]);
  }
}

/** Memory for the import session's sorts and hashes, and for the index builds of its commit (per session). */
const IMPORT_WORK_MEM = '128MB';
const IMPORT_MAINTENANCE_WORK_MEM = '256MB';

/** What the driver's connection can do beyond its typings (pg 8: the COPY sub-protocol messages). */
interface CopyConnection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

/**
 * `COPY … FROM STDIN` of rows already encoded in the text format, as a submittable query of the `pg` driver
 * (which has no COPY API of its own): the driver sends the statement, the server asks for the data, the rows go
 * in one CopyData message, and `done` is called once the server has taken them (or refused them: an error
 * makes the whole COPY write nothing).
 */
class CopyIn implements pg.Submittable {
  #error: Error | null = null;

  constructor(
    private readonly text: string,
    private readonly data: Buffer,
    private readonly done: (err: Error | null) => void,
  ) {}

  submit(connection: pg.Connection): void {
    (connection as unknown as CopyConnection).query(this.text);
  }

  handleCopyInResponse(connection: pg.Connection): void {
    const c = connection as unknown as CopyConnection;
    if (this.data.length > 0) c.sendCopyFromChunk(this.data);
    c.endCopyFrom();
  }

  handleError(err: Error): void {
    // The driver delivers no ReadyForQuery to a query that failed.
    this.#error = err;
    this.done(err);
  }

  handleReadyForQuery(): void {
    if (!this.#error) this.done(null);
  }

  handleCommandComplete(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
}

class PostgresImportSession implements DirectoryImportSession {
  #done = false;
  readonly #query: Query;
  /** The COPY sent and not yet confirmed. */
  #inFlight: Promise<void> | null = null;

  constructor(
    private readonly dir: PostgresDirectoryStore,
    private readonly client: pg.PoolClient,
    readonly kind: SnapshotKind,
    readonly snapshotId: number,
    readonly baseId: number | null,
    private readonly entities: readonly DirectoryEntity[],
    /** Entities whose table was empty when the import began: every record is new. */
    private readonly empty: ReadonlySet<DirectoryEntity>,
  ) {
    this.#query = async (sql, params = []) => (await client.query<Raw>(sql, params)).rows;
  }

  #check(entity: DirectoryEntity): void {
    if (this.#done) throw new Error('import session is over');
    if (!this.entities.includes(entity)) throw new Error(`a ${this.kind} import has no ${entity} rows`);
  }

  stagesAll(entity: DirectoryEntity): boolean {
    return this.empty.has(entity);
  }

  /**
   * Sends a COPY after the previous one is confirmed, and returns without waiting for it: the server loads one
   * batch while the next is parsed (a failure is thrown by the next wait).
   */
  async #copy(table: string, columns: string, data: Buffer): Promise<void> {
    await this.#settle();
    const sent = new Promise<void>((resolve, reject) => {
      this.client.query(new CopyIn(`COPY ${table} (${columns}) FROM STDIN`, data, (err) => (err ? reject(err) : resolve())));
    });
    // Observed when it is waited for; not an unhandled rejection meanwhile.
    sent.catch(() => undefined);
    this.#inFlight = sent;
  }

  /** Waits for every COPY sent (before any other statement, and before the client is released). */
  async #settle(): Promise<void> {
    const sent = this.#inFlight;
    this.#inFlight = null;
    await sent;
  }

  readonly stagingFormat = 'copy';

  /** The rows' COPY text (the format this session asks for). */
  #copyText(rows: StagedRows): Buffer {
    if (rows.format !== 'copy') throw new Error(`staged rows: ${rows.format} instead of copy`);
    return Buffer.from(rows.text, 'utf8');
  }

  async stageKeys(entity: DirectoryEntity, rows: StagedRows): Promise<void> {
    this.#check(entity);
    if (rows.count === 0) return;
    await this.#copy(keysTable(entity), 'key, line, hash', this.#copyText(rows));
  }

  async stageRecords(entity: DirectoryEntity, rows: StagedRows): Promise<void> {
    this.#check(entity);
    if (rows.count === 0) return;
    await this.#copy(stageTable(entity), `line, ${spec(entity).columns.map((c) => c.column).join(', ')}`, this.#copyText(rows));
  }

  /**
   * Where an entity's staged keys are: the full records themselves when every record is staged (a first load:
   * no separate key table), else the key table.
   */
  #keys(entity: DirectoryEntity): { table: string; key: string } {
    return this.empty.has(entity) ? { table: stageTable(entity), key: keyColumn(entity) } : { table: keysTable(entity), key: 'key' };
  }

  #prepared = new Set<DirectoryEntity>();

  /**
   * Analyses the staged keys once (autovacuum never analyses temporary tables), for hash joins with the
   * directory: no index (building one, and the visibility map its index-only scans need, cost more than the
   * comparisons it would serve). A first load's staged records are only counted and copied: nothing to do.
   */
  async #prepare(entity: DirectoryEntity): Promise<void> {
    await this.#settle();
    if (this.#prepared.has(entity)) return;
    if (!this.empty.has(entity)) await this.#query(`ANALYZE ${keysTable(entity)}`);
    this.#prepared.add(entity);
  }

  readonly #stats = new Map<DirectoryEntity, { keys: number; duplicates: number }>();

  /** Distinct staged keys and repeated lines, counted once. */
  async #keyStats(entity: DirectoryEntity): Promise<{ keys: number; duplicates: number }> {
    let stats = this.#stats.get(entity);
    if (!stats) {
      await this.#prepare(entity);
      const { table, key } = this.#keys(entity);
      const row = (await this.#query(`SELECT count(*) AS keys, coalesce(sum(n - 1), 0) AS duplicates FROM (SELECT count(*) AS n FROM ${table} GROUP BY ${key}) g`))[0]!;
      stats = { keys: readInt(row, 'keys'), duplicates: readInt(row, 'duplicates') };
      this.#stats.set(entity, stats);
    }
    return stats;
  }

  async duplicates(entity: DirectoryEntity, limit: number): Promise<{ total: number; sample: { line: number; firstLine: number }[] }> {
    this.#check(entity);
    const total = (await this.#keyStats(entity)).duplicates;
    if (total === 0) return { total, sample: [] };
    const { table, key } = this.#keys(entity);
    const groups = `(SELECT ${key} AS key, min(line) AS first FROM ${table} GROUP BY ${key} HAVING count(*) > 1)`;
    const rows = await this.#query(`SELECT k.line AS line, d.first AS first FROM ${table} k JOIN ${groups} d ON d.key = k.${key} AND k.line > d.first ORDER BY k.line LIMIT $1`, [
      limit,
    ]);
    return { total, sample: rows.map((r) => ({ line: readInt(r, 'line'), firstLine: readInt(r, 'first') })) };
  }

  #needed = false;

  async neededLines(afterLine: number, limit: number): Promise<{ line: number; entities: DirectoryEntity[] }[]> {
    if (this.#done) throw new Error('import session is over');
    await this.#settle();
    if (!this.#needed) {
      for (const e of this.entities) {
        if (this.empty.has(e)) continue;
        const key = keyColumn(e);
        // The first line of each key, with its hash, unless the directory holds that key active with that hash
        // (when no key repeats, every line is the first of its key: no sort).
        const firstLines =
          (await this.#keyStats(e)).duplicates === 0
            ? keysTable(e)
            : `(SELECT DISTINCT ON (key) key, line, hash FROM ${keysTable(e)} ORDER BY key, line)`;
        await this.#query(
          `INSERT INTO dir_stage_needed (line, entity)
           SELECT g.line, $1 FROM ${firstLines} g
            WHERE NOT EXISTS (SELECT 1 FROM ${spec(e).table} m WHERE m.${key} = g.key AND m.hash = g.hash AND m.active)`,
          [e],
        );
      }
      await this.#query('CREATE INDEX ON dir_stage_needed (line, entity)');
      await this.#query('ANALYZE dir_stage_needed');
      this.#needed = true;
    }
    const lines = await this.#query('SELECT DISTINCT line FROM dir_stage_needed WHERE line > $1 ORDER BY line LIMIT $2', [afterLine, limit]);
    if (lines.length === 0) return [];
    const rows = await this.#query('SELECT line, entity FROM dir_stage_needed WHERE line BETWEEN $1 AND $2 ORDER BY line, entity', [
      readInt(lines[0]!, 'line'),
      readInt(lines[lines.length - 1]!, 'line'),
    ]);
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
  }

  async commit(info: ImportCommitInfo): Promise<ImportOutcome> {
    if (this.#done) throw new Error('import session is over');
    try {
      await this.#settle();
      for (const e of this.entities) {
        const stats = await this.#keyStats(e);
        if (!this.empty.has(e)) await this.#query(`ANALYZE ${stageTable(e)}`);
        if (stats.duplicates > 0) {
          // Keep, per key, only the record of its first line.
          const { table, key } = this.#keys(e);
          await this.#query(
            `DELETE FROM ${stageTable(e)} s USING (SELECT ${key} AS key, min(line) AS first FROM ${table} GROUP BY ${key} HAVING count(*) > 1) d
              WHERE s.${keyColumn(e)} = d.key AND s.line > d.first`,
          );
        }
      }
      await this.#query('BEGIN');
      let outcome: ImportOutcome;
      try {
        outcome = await this.#apply(info);
        await this.#query('COMMIT');
      } catch (err) {
        await this.#query('ROLLBACK').catch(() => undefined);
        throw err;
      }
      // After a bulk load, now rather than when autovacuum gets to it: statistics for the plans, and the
      // visibility map that lets the next import compare keys and hashes by index-only scans.
      for (const table of this.#bulkLoaded) await this.#query(`VACUUM (ANALYZE) ${table}`).catch(() => undefined);
      await this.#finish(null);
      return outcome;
    } catch (err) {
      await this.#finish(err instanceof Error ? err.message : String(err));
      throw err;
    }
  }

  /** Tables whose indexes the commit rebuilt. */
  readonly #bulkLoaded: string[] = [];

  async #apply(info: ImportCommitInfo): Promise<ImportOutcome> {
    this.#bulkLoaded.length = 0;
    await this.#query('SELECT pg_advisory_xact_lock($1)', [DIRECTORY_LOCK]);
    const latest = (await this.#query("SELECT id FROM dir_snapshots WHERE kind = $1 AND status = 'complete' ORDER BY id DESC LIMIT 1", [this.kind]))[0];
    const latestId = latest ? readInt(latest, 'id') : null;
    if (latestId !== this.baseId) {
      throw new ImportConflictError(`another ${this.kind} import (snapshot ${latestId}) completed while this one ran: nothing was changed, import again`);
    }
    await this.#query(`SET LOCAL maintenance_work_mem = '${IMPORT_MAINTENANCE_WORK_MEM}'`);
    const initial = this.baseId === null;
    const snap = this.snapshotId;
    const diff: Partial<Record<DirectoryEntity, EntityDiff>> = {};
    const count = async (sql: string, params: unknown[] = []) => readInt((await this.#query(sql, params))[0]!, 'n');
    for (const e of this.entities) {
      const s = spec(e);
      const key = keyColumn(e);
      const table = s.table;
      const stage = stageTable(e);
      const keys = keysTable(e);
      const stats = await this.#keyStats(e);
      const sizes = (await this.#query(`SELECT count(*) AS total, count(*) FILTER (WHERE active) AS active FROM ${table}`))[0]!;
      const total = readInt(sizes, 'total');
      const activeBefore = readInt(sizes, 'active');
      if (this.empty.has(e) && total > 0) {
        throw new ImportConflictError(`the directory's ${e} rows changed while this import ran: nothing was changed, import again`);
      }
      // A first load stages one record per line (later duplicates were deleted above): as many as keys.
      const staged = this.empty.has(e) ? stats.keys : await count(`SELECT count(*) AS n FROM ${stage}`);
      let added = staged;
      let removed = 0;
      let changed = 0;
      let unchanged = 0;
      if (total > 0) {
        // Staged records are new or changed; every other key of the file is held unchanged. The rows the file
        // no longer has are counted without a scan, and looked for only when there are some.
        changed = await count(`SELECT count(*) AS n FROM ${stage} s WHERE EXISTS (SELECT 1 FROM ${table} m WHERE m.${key} = s.${key} AND m.active)`);
        added = staged - changed;
        unchanged = stats.keys - staged;
        removed = activeBefore - unchanged - changed;
        const notInFile = `active AND NOT EXISTS (SELECT 1 FROM ${keys} k WHERE k.key = ${table}.${key})`;
        if (!initial) {
          await this.#query(
            `INSERT INTO dir_changes (snapshot_id, entity, key, change)
             SELECT $1, $2, s.${key}, CASE WHEN EXISTS (SELECT 1 FROM ${table} m WHERE m.${key} = s.${key} AND m.active) THEN 'changed' ELSE 'added' END
               FROM ${stage} s`,
            [snap, e],
          );
        }
        if (removed > 0) {
          const found = initial
            ? (await this.#query(`UPDATE ${table} SET active = false, removed_snapshot = $1 WHERE ${notInFile} RETURNING 1`, [snap])).length
            : (
                await this.#query(
                  `WITH gone AS (UPDATE ${table} SET active = false, removed_snapshot = $1 WHERE ${notInFile} RETURNING ${key} AS key)
                   INSERT INTO dir_changes (snapshot_id, entity, key, change) SELECT $1, $2, key, 'removed' FROM gone RETURNING 1`,
                  [snap, e],
                )
              ).length;
          if (found !== removed) throw new Error(`directory ${e}: ${found} rows left the file, ${removed} expected`);
        }
      }

      const bulk = staged >= BULK_ROWS && staged >= BULK_SHARE * total;
      const empty = total === 0;
      if (bulk) for (const cols of s.indexes) await this.#query(`DROP INDEX IF EXISTS ${indexName(table, cols)}`);
      if (empty) await this.#query(`DROP INDEX IF EXISTS ${table}_key`);
      const columns = s.columns.map((c) => c.column);
      const insert = `INSERT INTO ${table} AS t (${columns.join(', ')}, active, added_snapshot, changed_snapshot, removed_snapshot)
                      SELECT ${columns.join(', ')}, true, ${snap}, ${snap}, NULL FROM ${stage}`;
      if (empty) {
        await this.#query(insert);
        await this.#query(`CREATE UNIQUE INDEX ${table}_key ON ${table} (${key})`);
      } else {
        await this.#query(
          `${insert}
           ON CONFLICT (${key}) DO UPDATE SET ${columns.map((c) => `${c} = excluded.${c}`).join(', ')},
             added_snapshot = CASE WHEN t.active THEN t.added_snapshot ELSE excluded.added_snapshot END,
             active = true, changed_snapshot = excluded.changed_snapshot, removed_snapshot = NULL`,
        );
      }
      if (bulk) {
        for (const cols of s.indexes) await this.#query(`CREATE INDEX ${indexName(table, cols)} ON ${table} (${cols.join(', ')})`);
        this.#bulkLoaded.push(table);
      }
      diff[e] = { added, removed, changed, unchanged };
    }
    await this.#query(
      `UPDATE dir_snapshots SET status = 'complete', finished_at = $1, rows_total = $2, rows_bad = $3, source_sha256 = $4, diff = $5 WHERE id = $6`,
      [Date.now(), info.rowsTotal, info.rowsBad, info.sourceSha256, JSON.stringify(diff), snap],
    );
    const snapshot = toSnapshot((await this.#query('SELECT * FROM dir_snapshots WHERE id = $1', [snap]))[0]!);
    return { snapshot, diff, initial };
  }

  async abort(reason: string): Promise<void> {
    await this.#finish(reason);
  }

  async #finish(failure: string | null): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    let broken: Error | undefined;
    try {
      await this.#settle();
    } catch {
      // A COPY that failed: the import is failing anyway (its error is the one reported).
    }
    try {
      for (const e of this.entities) {
        await this.#query(`DROP TABLE IF EXISTS ${keysTable(e)}`);
        await this.#query(`DROP TABLE IF EXISTS ${stageTable(e)}`);
      }
      await this.#query('DROP TABLE IF EXISTS dir_stage_needed');
      await this.#query('RESET work_mem');
    } catch (err) {
      broken = err instanceof Error ? err : new Error(String(err));
    }
    this.client.release(broken);
    try {
      if (failure !== null) await this.dir.markFailed(this.snapshotId, failure);
    } finally {
      this.dir.endImport();
    }
  }
}
