type Raw = Record<string, unknown>;
type Run = (sql: string, params?: unknown[]) => Promise<Raw[]>;

/**
 * The inbound relay's accepted idempotency keys on PostgreSQL (migration 11, docs/decisions/0008-queue-delivery.md).
 * `ON CONFLICT DO NOTHING` on the primary key: a unit of work inserting a key another one has inserted and not yet
 * committed waits for it, then inserts nothing if it committed (or the row if it rolled back).
 */

export async function relayKeyAccepted(run: Run, peerDomain: string, key: string): Promise<boolean> {
  return (await run('SELECT 1 FROM relay_accepted_keys WHERE peer_domain = $1 AND idem_key = $2', [peerDomain, key])).length > 0;
}

export async function recordRelayKey(run: Run, peerDomain: string, key: string, acceptedAt: number): Promise<boolean> {
  const rows = await run(
    `INSERT INTO relay_accepted_keys (peer_domain, idem_key, accepted_at) VALUES ($1, $2, $3)
     ON CONFLICT (peer_domain, idem_key) DO NOTHING RETURNING 1 AS inserted`,
    [peerDomain, key, acceptedAt],
  );
  return rows.length === 1;
}

export async function pruneRelayKeys(run: Run, before: number, limit: number): Promise<number> {
  const rows = await run(
    `DELETE FROM relay_accepted_keys WHERE ctid = ANY (ARRAY (SELECT ctid FROM relay_accepted_keys WHERE accepted_at < $1 LIMIT $2))
     RETURNING 1 AS gone`,
    [before, limit],
  );
  return rows.length;
}
