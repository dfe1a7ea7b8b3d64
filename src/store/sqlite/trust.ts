import type Database from 'better-sqlite3';
import type { Raw } from '../rows.js';
import { domainKey, trustRowReaders } from '../trust-rows.js';
import type { NewTrustList, TrustDomainRow, TrustListRow, TrustReplaceOutcome, TrustStore } from '../trust-types.js';
import { readInt, readText, readTextOrNull } from './rows.js';

type Db = Database.Database;

/** What the trust store needs of the `SqliteStore` it lives beside (`SqliteStore.directoryAccess()`). */
export interface SqliteTrustAccess {
  reader: Db;
  /** Runs `work` with the writer connection under the store's unit-of-work lock (no transaction opened). */
  withWriter<T>(work: (writer: Db) => Promise<T>): Promise<T>;
}

const { toTrustList, toTrustDomain } = trustRowReaders({ readInt, readText, readTextOrNull });

const ACTIVE = 'SELECT * FROM trust_lists ORDER BY id DESC LIMIT 1';

/** The trust-space tables on the connections of a `SqliteStore`: reads on its reader, imports on its writer. */
export class SqliteTrustStore implements TrustStore {
  readonly engine = 'sqlite' as const;
  readonly #reader: Db;
  readonly #withWriter: SqliteTrustAccess['withWriter'];

  constructor(access: SqliteTrustAccess) {
    this.#reader = access.reader;
    this.#withWriter = access.withWriter;
  }

  async activeList(): Promise<TrustListRow | null> {
    const row = this.#reader.prepare(ACTIVE).get() as Raw | undefined;
    return row ? toTrustList(row) : null;
  }

  async listDomains(): Promise<TrustDomainRow[]> {
    const rows = this.#reader
      .prepare(`SELECT * FROM trust_domains WHERE list_id = (SELECT max(id) FROM trust_lists) ORDER BY position`)
      .all() as Raw[];
    return rows.map(toTrustDomain);
  }

  async lookupDomain(name: string): Promise<TrustDomainRow[]> {
    const rows = this.#reader
      .prepare(`SELECT * FROM trust_domains WHERE list_id = (SELECT max(id) FROM trust_lists) AND name_key = ? ORDER BY position`)
      .all(domainKey(name)) as Raw[];
    return rows.map(toTrustDomain);
  }

  async history(limit: number): Promise<TrustListRow[]> {
    return (this.#reader.prepare('SELECT * FROM trust_lists ORDER BY id DESC LIMIT ?').all(limit) as Raw[]).map(toTrustList);
  }

  replaceList(list: NewTrustList, importedAt = Date.now()): Promise<TrustReplaceOutcome> {
    return this.#withWriter(async (db) => {
      db.exec('BEGIN IMMEDIATE');
      try {
        const outcome = replace(db, list, importedAt);
        db.exec('COMMIT');
        return outcome;
      } catch (err) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw err;
      }
    });
  }
}

function replace(db: Db, list: NewTrustList, importedAt: number): TrustReplaceOutcome {
  const activeRow = db.prepare(ACTIVE).get() as Raw | undefined;
  const active = activeRow ? toTrustList(activeRow) : null;
  const caBundle = list.caBundle === undefined ? (active?.caBundle ?? null) : list.caBundle;
  if (active && active.sha256 === list.sha256 && active.caBundle === caBundle) return { list: active, replaced: false };
  const row = db
    .prepare(
      `INSERT INTO trust_lists (generated_at, imported_at, source, sha256, domain_count, ca_bundle) VALUES (?, ?, ?, ?, ?, ?) RETURNING *`,
    )
    .get(list.generatedAt, importedAt, list.source, list.sha256, list.domains.length, caBundle) as Raw;
  const created = toTrustList(row);
  const insert = db.prepare(
    `INSERT INTO trust_domains (list_id, position, name, name_key, description, operator_dn, responsable_contact, support_contact, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  list.domains.forEach((d, i) =>
    insert.run(created.id, i, d.name, domainKey(d.name), d.description, d.operatorDn, d.responsableContact, d.supportContact, d.updatedAt),
  );
  db.prepare('DELETE FROM trust_domains WHERE list_id <> ?').run(created.id);
  return { list: created, replaced: true };
}
