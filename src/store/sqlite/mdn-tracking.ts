import type Database from 'better-sqlite3';
import type { Raw } from '../rows.js';
import type { MdnArrival, MdnTrackingRow, NewMdnTracking } from '../types.js';
import { readBytes, readInt, readText } from './rows.js';

type Db = Database.Database;

/**
 * The sending side's MDN tracker on SQLite (migration 12, src/queue/mdn-tracker.ts). Units of work are serialised
 * on the writer connection, so an overdue row claimed by one sweep cannot be claimed by another before it commits.
 */

function toRow(row: Raw): MdnTrackingRow {
  return {
    id: readInt(row, 'id'),
    mailboxId: readInt(row, 'mailbox_id'),
    trackKey: readText(row, 'track_key'),
    deadline: readInt(row, 'deadline'),
    wantDispatched: readInt(row, 'want_dispatched') !== 0,
    processedAt: row.processed_at === null ? null : readInt(row, 'processed_at'),
    createdAt: readInt(row, 'created_at'),
    sealedDetails: readBytes(row, 'details'),
  };
}

export function trackMdn(db: Db, e: NewMdnTracking): boolean {
  return (
    db
      .prepare(
        `INSERT OR IGNORE INTO mdn_tracking (mailbox_id, track_key, deadline, want_dispatched, created_at, details)
         VALUES (?, ?, ?, ?, ?, ?)`,
      )
      .run(e.mailboxId, e.trackKey, e.deadline, e.wantDispatched ? 1 : 0, e.createdAt, e.sealedDetails).changes === 1
  );
}

export function recordMdn(db: Db, mailboxId: number, trackKey: string, arrival: MdnArrival, at: number): 'settled' | 'waiting' | null {
  const settled = db
    .prepare('DELETE FROM mdn_tracking WHERE mailbox_id = ? AND track_key = ? AND (? = 1 OR want_dispatched = 0)')
    .run(mailboxId, trackKey, arrival === 'final' ? 1 : 0).changes;
  if (settled === 1) return 'settled';
  const noted = db
    .prepare('UPDATE mdn_tracking SET processed_at = coalesce(processed_at, ?) WHERE mailbox_id = ? AND track_key = ?')
    .run(at, mailboxId, trackKey).changes;
  return noted === 1 ? 'waiting' : null;
}

export function claimOverdueMdn(db: Db, now: number, limit: number): MdnTrackingRow[] {
  return (db.prepare('SELECT * FROM mdn_tracking WHERE deadline <= ? ORDER BY deadline, id LIMIT ?').all(now, limit) as Raw[]).map(toRow);
}

export function deleteMdnTracking(db: Db, id: number): boolean {
  return db.prepare('DELETE FROM mdn_tracking WHERE id = ?').run(id).changes === 1;
}
