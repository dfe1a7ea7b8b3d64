import type Database from 'better-sqlite3';
import type { QueueItem } from '../types.js';
import { toQueueItem } from './rows.js';

type Db = Database.Database;
type Raw = Record<string, unknown>;

/**
 * What the outbound queue needs beyond claiming and settling (src/queue/): listing for `mss queue list`, the
 * delivery state kept in the sealed envelope, an operator's retry and delete.
 */

export function listQueue(db: Db, limit: number): QueueItem[] {
  return (db.prepare('SELECT * FROM queue ORDER BY created_at, id LIMIT ?').all(limit) as Raw[]).map(toQueueItem);
}

export function updateQueueEnvelope(db: Db, id: string, sealedEnvelope: Buffer): boolean {
  return db.prepare('UPDATE queue SET sealed_envelope = ? WHERE id = ?').run(sealedEnvelope, id).changes === 1;
}

export function rescheduleQueueItem(db: Db, id: string, nextAttemptAt: number): boolean {
  return db.prepare('UPDATE queue SET next_attempt_at = ? WHERE id = ?').run(nextAttemptAt, id).changes === 1;
}

export function deleteQueueItem(db: Db, id: string): boolean {
  return db.prepare('DELETE FROM queue WHERE id = ?').run(id).changes === 1;
}
