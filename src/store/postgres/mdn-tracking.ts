import { CorruptRowError, type Raw } from '../rows.js';
import type { MdnArrival, MdnTrackingRow, NewMdnTracking } from '../types.js';
import { readBytes, readInt, readText } from './rows.js';

type Run = (sql: string, params?: unknown[]) => Promise<Raw[]>;

/**
 * The sending side's MDN tracker on PostgreSQL (migration 12, src/queue/mdn-tracker.ts). A sweep claims overdue
 * rows `FOR UPDATE SKIP LOCKED`: sweeps in several processes write each failure notice once; an MDN arriving for a
 * row being swept waits for that unit of work, then finds the row gone.
 */

function toRow(row: Raw): MdnTrackingRow {
  if (typeof row.want_dispatched !== 'boolean') throw new CorruptRowError('column want_dispatched: expected a boolean');
  return {
    id: readInt(row, 'id'),
    mailboxId: readInt(row, 'mailbox_id'),
    trackKey: readText(row, 'track_key'),
    deadline: readInt(row, 'deadline'),
    wantDispatched: row.want_dispatched,
    processedAt: row.processed_at === null ? null : readInt(row, 'processed_at'),
    createdAt: readInt(row, 'created_at'),
    sealedDetails: readBytes(row, 'details'),
  };
}

export async function trackMdn(run: Run, e: NewMdnTracking): Promise<boolean> {
  const rows = await run(
    `INSERT INTO mdn_tracking (mailbox_id, track_key, deadline, want_dispatched, created_at, details)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (mailbox_id, track_key) DO NOTHING RETURNING id`,
    [e.mailboxId, e.trackKey, e.deadline, e.wantDispatched, e.createdAt, e.sealedDetails],
  );
  return rows.length === 1;
}

export async function recordMdn(run: Run, mailboxId: number, trackKey: string, arrival: MdnArrival, at: number): Promise<'settled' | 'waiting' | null> {
  const settled = await run(
    'DELETE FROM mdn_tracking WHERE mailbox_id = $1 AND track_key = $2 AND ($3::boolean OR NOT want_dispatched) RETURNING id',
    [mailboxId, trackKey, arrival === 'final'],
  );
  if (settled.length === 1) return 'settled';
  const noted = await run(
    'UPDATE mdn_tracking SET processed_at = coalesce(processed_at, $1) WHERE mailbox_id = $2 AND track_key = $3 RETURNING id',
    [at, mailboxId, trackKey],
  );
  return noted.length === 1 ? 'waiting' : null;
}

export async function claimOverdueMdn(run: Run, now: number, limit: number): Promise<MdnTrackingRow[]> {
  const rows = await run('SELECT * FROM mdn_tracking WHERE deadline <= $1 ORDER BY deadline, id LIMIT $2 FOR UPDATE SKIP LOCKED', [now, limit]);
  return rows.map(toRow);
}

export async function deleteMdnTracking(run: Run, id: number): Promise<boolean> {
  return (await run('DELETE FROM mdn_tracking WHERE id = $1 RETURNING id', [id])).length === 1;
}
