import type pg from 'pg';
import { inPoolTransaction } from './pool-transaction.js';
import type { Raw } from '../rows.js';
import { domainKey, trustRowReaders } from '../trust-rows.js';
import type { NewTrustList, TrustDomainRow, TrustListRow, TrustReplaceOutcome, TrustStore } from '../trust-types.js';
import { readInt, readText, readTextOrNull } from './rows.js';

const { toTrustList, toTrustDomain } = trustRowReaders({ readInt, readText, readTextOrNull });

/** Serialises imports of every process (pg_advisory_xact_lock key; the migration lock uses another). */
const TRUST_LOCK = 0x6d7373_09; // 'mss' 09
/** Domain rows sent per INSERT (as arrays through unnest). */
const BATCH = 2000;

const ACTIVE = 'SELECT * FROM trust_lists ORDER BY id DESC LIMIT 1';

/**
 * The trust-space tables on the pool of a `PostgresStore` (`PostgresStore.directoryPool()`): reads on any
 * pooled client (committed data), each import on one client between BEGIN and COMMIT.
 */
export class PostgresTrustStore implements TrustStore {
  readonly engine = 'postgres' as const;
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  async #rows(sql: string, params: unknown[] = []): Promise<Raw[]> {
    return (await this.#pool.query<Raw>(sql, params)).rows;
  }

  async activeList(): Promise<TrustListRow | null> {
    const [row] = await this.#rows(ACTIVE);
    return row ? toTrustList(row) : null;
  }

  async listDomains(): Promise<TrustDomainRow[]> {
    const rows = await this.#rows('SELECT * FROM trust_domains WHERE list_id = (SELECT max(id) FROM trust_lists) ORDER BY position');
    return rows.map(toTrustDomain);
  }

  async lookupDomain(name: string): Promise<TrustDomainRow[]> {
    const rows = await this.#rows(
      'SELECT * FROM trust_domains WHERE list_id = (SELECT max(id) FROM trust_lists) AND name_key = $1 ORDER BY position',
      [domainKey(name)],
    );
    return rows.map(toTrustDomain);
  }

  async history(limit: number): Promise<TrustListRow[]> {
    return (await this.#rows('SELECT * FROM trust_lists ORDER BY id DESC LIMIT $1', [limit])).map(toTrustList);
  }

  async replaceList(list: NewTrustList, importedAt = Date.now()): Promise<TrustReplaceOutcome> {
    return inPoolTransaction(this.#pool, (client) => replace(client, list, importedAt));
  }
}

async function replace(client: pg.PoolClient, list: NewTrustList, importedAt: number): Promise<TrustReplaceOutcome> {
  await client.query('SELECT pg_advisory_xact_lock($1)', [TRUST_LOCK]);
  const [activeRow] = (await client.query<Raw>(ACTIVE)).rows;
  const active = activeRow ? toTrustList(activeRow) : null;
  const caBundle = list.caBundle === undefined ? (active?.caBundle ?? null) : list.caBundle;
  if (active && active.sha256 === list.sha256 && active.caBundle === caBundle) return { list: active, replaced: false };
  const [row] = (
    await client.query<Raw>(
      `INSERT INTO trust_lists (generated_at, imported_at, source, sha256, domain_count, ca_bundle) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
      [list.generatedAt, importedAt, list.source, list.sha256, list.domains.length, caBundle],
    )
  ).rows;
  const created = toTrustList(row!);
  for (let start = 0; start < list.domains.length; start += BATCH) {
    const batch = list.domains.slice(start, start + BATCH);
    const column = <T>(pick: (d: TrustDomainRow, i: number) => T) => batch.map((d, i) => pick(d, start + i));
    await client.query(
      `INSERT INTO trust_domains (list_id, position, name, name_key, description, operator_dn, responsable_contact, support_contact, updated_at)
       SELECT $1::bigint, u.* FROM unnest($2::integer[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[]) AS u`,
      [
        created.id,
        column((_, i) => i),
        column((d) => d.name),
        column((d) => domainKey(d.name)),
        column((d) => d.description),
        column((d) => d.operatorDn),
        column((d) => d.responsableContact),
        column((d) => d.supportContact),
        column((d) => d.updatedAt),
      ],
    );
  }
  await client.query('DELETE FROM trust_domains WHERE list_id <> $1', [created.id]);
  return { list: created, replaced: true };
}
