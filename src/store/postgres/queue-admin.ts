import type { QueueItem } from '../types.js';
import { toQueueItem } from './rows.js';

type Raw = Record<string, unknown>;
type Run = (sql: string, params?: unknown[]) => Promise<Raw[]>;

/**
 * What the outbound queue needs beyond claiming and settling (src/queue/): listing for `mss queue list`, the
 * delivery state kept in the sealed envelope, an operator's retry and delete.
 */

export async function listQueue(run: Run, limit: number): Promise<QueueItem[]> {
  return (await run('SELECT * FROM queue ORDER BY created_at, id LIMIT $1', [limit])).map(toQueueItem);
}

export async function updateQueueEnvelope(run: Run, id: string, sealedEnvelope: Buffer): Promise<boolean> {
  return (await run('UPDATE queue SET sealed_envelope = $1 WHERE id = $2 RETURNING id', [sealedEnvelope, id])).length === 1;
}

export async function rescheduleQueueItem(run: Run, id: string, nextAttemptAt: number): Promise<boolean> {
  return (await run('UPDATE queue SET next_attempt_at = $1 WHERE id = $2 RETURNING id', [nextAttemptAt, id])).length === 1;
}

export async function deleteQueueItem(run: Run, id: string): Promise<boolean> {
  return (await run('DELETE FROM queue WHERE id = $1 RETURNING id', [id])).length === 1;
}
