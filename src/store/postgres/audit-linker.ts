import type pg from 'pg';
import { linkRecords } from '../../audit/chain.js';
import type { AuditRow } from '../types.js';
import { withPoolClient } from './pool-transaction.js';
import { readInt, readText, toPendingAudit } from './rows.js';

type Raw = Record<string, unknown>;

/** Advisory lock key of the audit chain (scoped to the database by PostgreSQL): 'mss' 02. */
export const AUDIT_LOCK = 0x6d7373_02;
/** Staged records linked per unit of work at most. */
export const CHAIN_BATCH = 2000;

/** A simple-protocol query of several statements: one round trip, one result per statement. */
async function statements(client: pg.PoolClient, sql: string): Promise<pg.QueryResult<Raw>[]> {
  const result = (await client.query<Raw>(sql)) as pg.QueryResult<Raw> | pg.QueryResult<Raw>[];
  return Array.isArray(result) ? result : [result];
}

/** The INSERT of linked rows into the journal as SQL text (quoted with the driver's literal escaping). */
function journalInsert(client: pg.PoolClient, rows: readonly AuditRow[]): string {
  const values = rows.map(
    (r) =>
      `(${String(r.seq)}, ${[r.time, r.actor, r.action, r.object, r.outcome, r.detail, r.prevHash, r.hash].map((v) => client.escapeLiteral(v)).join(', ')})`,
  );
  return `INSERT INTO audit (seq, time, actor, action, object, outcome, detail, prev_hash, hash) VALUES ${values.join(', ')}; `;
}

/**
 * Moves staged records into the chain, in staging order, in batches of one short unit of work each, under a
 * transaction-scoped advisory lock: only one linker at a time in the whole database, and the next one reads the
 * committed last record. `wait` blocks on the lock (readers); otherwise a busy chain returns 'busy'.
 *
 * Three round trips per batch (two when the chain is busy): BEGIN with the lock; then, in statements that start
 * after the lock is held (so that their snapshots see the last linker's commit), the staged records and the last
 * record; then the linked rows with the COMMIT.
 */
export async function linkPendingAudit(pool: pg.Pool, wait: boolean): Promise<'done' | 'busy'> {
  for (;;) {
    const linked = await withPoolClient(pool, async (client) => {
      const lock = wait ? `SELECT true AS got FROM pg_advisory_xact_lock(${AUDIT_LOCK})` : `SELECT pg_try_advisory_xact_lock(${AUDIT_LOCK}) AS got`;
      const [, locked] = await statements(client, `BEGIN; ${lock}`);
      if (locked?.rows[0]?.got !== true) {
        await client.query('ROLLBACK');
        return null;
      }
      const [pending, last] = await statements(
        client,
        `DELETE FROM audit_pending WHERE id IN (SELECT id FROM audit_pending ORDER BY id LIMIT ${CHAIN_BATCH}) RETURNING *; ` +
          'SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1',
      );
      const staged = pending!.rows.map((row) => ({ id: readInt(row, 'id'), record: toPendingAudit(row) })).sort((a, b) => a.id - b.id);
      const lastRow = last!.rows[0];
      const rows = linkRecords(
        lastRow ? { seq: readInt(lastRow, 'seq'), hash: readText(lastRow, 'hash') } : null,
        staged.map((s) => s.record),
      );
      await client.query(rows.length > 0 ? journalInsert(client, rows) + 'COMMIT' : 'COMMIT');
      return staged.length;
    });
    if (linked === null) return 'busy';
    if (linked < CHAIN_BATCH) return 'done';
  }
}
