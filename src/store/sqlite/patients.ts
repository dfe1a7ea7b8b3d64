import type Database from 'better-sqlite3';
import {
  PATIENT_ACCOUNT_COLUMNS,
  patientRowReaders,
  type NewPatientAccount,
  type PatientAccountChange,
  type PatientAccountRow,
  type PatientThreadMessageRow,
  type PatientThreadRow,
} from '../patient-types.js';
import type { Raw } from '../rows.js';
import { readBytes, readInt, readText } from './rows.js';

type Db = Database.Database;

/**
 * The patient tables on SQLite (migration 13, src/store/patients.ts). Units of work are serialised on the writer
 * connection, so the TOTP compare-and-set needs no lock of its own.
 */

const { toPatientAccount, toPatientThread, toPatientThreadMessage } = patientRowReaders({ readInt, readText, readBytes });

export function getPatientAccount(db: Db, mailboxId: number): PatientAccountRow | null {
  const row = db.prepare('SELECT * FROM patient_accounts WHERE mailbox_id = ?').get(mailboxId) as Raw | undefined;
  return row ? toPatientAccount(row) : null;
}

export function getPatientThread(db: Db, mailboxId: number, threadKey: string): PatientThreadRow | null {
  const row = db.prepare('SELECT * FROM patient_threads WHERE mailbox_id = ? AND thread_key = ?').get(mailboxId, threadKey) as Raw | undefined;
  return row ? toPatientThread(row) : null;
}

export function getPatientThreadMessages(db: Db, mailboxId: number, messageKeys: readonly string[]): PatientThreadMessageRow[] {
  if (messageKeys.length === 0) return [];
  const marks = messageKeys.map(() => '?').join(', ');
  const rows = db
    .prepare(`SELECT * FROM patient_thread_messages WHERE mailbox_id = ? AND message_key IN (${marks})`)
    .all(mailboxId, ...messageKeys) as Raw[];
  return rows.map(toPatientThreadMessage);
}

export function listPatientsToPurge(db: Db, now: number, limit: number): PatientAccountRow[] {
  const rows = db
    .prepare('SELECT * FROM patient_accounts WHERE purge_after <= ? AND purged_at IS NULL ORDER BY purge_after, mailbox_id LIMIT ?')
    .all(now, limit) as Raw[];
  return rows.map(toPatientAccount);
}

export function insertPatientAccount(db: Db, a: NewPatientAccount): boolean {
  return (
    db
      .prepare('INSERT OR IGNORE INTO patient_accounts (mailbox_id, created_at, oppose_until) VALUES (?, ?, ?)')
      .run(a.mailboxId, a.createdAt, a.opposeUntil).changes === 1
  );
}

export function updatePatientAccount(db: Db, mailboxId: number, change: PatientAccountChange): boolean {
  const entries = (Object.keys(PATIENT_ACCOUNT_COLUMNS) as (keyof PatientAccountChange)[]).filter((k) => change[k] !== undefined);
  if (entries.length === 0) return getPatientAccount(db, mailboxId) !== null;
  const sets = entries.map((k) => `${PATIENT_ACCOUNT_COLUMNS[k]} = ?`).join(', ');
  return db.prepare(`UPDATE patient_accounts SET ${sets} WHERE mailbox_id = ?`).run(...entries.map((k) => change[k]), mailboxId).changes === 1;
}

export function acceptTotpStep(db: Db, mailboxId: number, step: number): boolean {
  return (
    db
      .prepare('UPDATE patient_accounts SET totp_last_step = ? WHERE mailbox_id = ? AND (totp_last_step IS NULL OR totp_last_step < ?)')
      .run(step, mailboxId, step).changes === 1
  );
}

export function upsertPatientThread(db: Db, mailboxId: number, threadKey: string, at: number, closedAt: number | null): void {
  db.prepare(
    `INSERT INTO patient_threads (mailbox_id, thread_key, closed_at, updated_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (mailbox_id, thread_key) DO UPDATE SET updated_at = excluded.updated_at,
       closed_at = coalesce(patient_threads.closed_at, excluded.closed_at)`,
  ).run(mailboxId, threadKey, closedAt, at);
}

export function insertPatientThreadMessage(db: Db, r: PatientThreadMessageRow): void {
  db.prepare(
    'INSERT OR IGNORE INTO patient_thread_messages (mailbox_id, message_key, thread_key, allowed, created_at) VALUES (?, ?, ?, ?, ?)',
  ).run(r.mailboxId, r.messageKey, r.threadKey, r.allowed, r.createdAt);
}

export function purgePatientData(db: Db, mailboxId: number, at: number): void {
  db.prepare('DELETE FROM patient_thread_messages WHERE mailbox_id = ?').run(mailboxId);
  db.prepare('DELETE FROM patient_threads WHERE mailbox_id = ?').run(mailboxId);
  db.prepare('DELETE FROM patient_documents WHERE mailbox_id = ?').run(mailboxId);
  db.prepare(
    'UPDATE patient_accounts SET purged_at = ?, activation_hash = NULL, activation_expires = NULL, totp = NULL, totp_last_step = NULL WHERE mailbox_id = ?',
  ).run(at, mailboxId);
}
