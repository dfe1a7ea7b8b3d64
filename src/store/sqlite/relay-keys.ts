import type Database from 'better-sqlite3';

type Db = Database.Database;

/**
 * The inbound relay's accepted idempotency keys on SQLite (migration 11, docs/decisions/0008-queue-delivery.md).
 * Units of work are serialised on the writer connection, so `INSERT OR IGNORE` decides alone which delivery of a
 * key is the first.
 */

export function relayKeyAccepted(db: Db, peerDomain: string, key: string): boolean {
  return db.prepare('SELECT 1 FROM relay_accepted_keys WHERE peer_domain = ? AND idem_key = ?').get(peerDomain, key) !== undefined;
}

export function recordRelayKey(db: Db, peerDomain: string, key: string, acceptedAt: number): boolean {
  return db.prepare('INSERT OR IGNORE INTO relay_accepted_keys (peer_domain, idem_key, accepted_at) VALUES (?, ?, ?)').run(peerDomain, key, acceptedAt).changes === 1;
}

export function pruneRelayKeys(db: Db, before: number, limit: number): number {
  return db
    .prepare('DELETE FROM relay_accepted_keys WHERE rowid IN (SELECT rowid FROM relay_accepted_keys WHERE accepted_at < ? LIMIT ?)')
    .run(before, limit).changes;
}
