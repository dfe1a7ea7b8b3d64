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

type Run = (sql: string, params?: unknown[]) => Promise<Raw[]>;

/**
 * The patient tables on PostgreSQL (migration 13, src/store/patients.ts). The TOTP step is accepted by one
 * conditional UPDATE: of two logins racing with the same code, the second finds the step taken.
 */

const { toPatientAccount, toPatientThread, toPatientThreadMessage } = patientRowReaders({ readInt, readText, readBytes });

export async function getPatientAccount(run: Run, mailboxId: number): Promise<PatientAccountRow | null> {
  const [row] = await run('SELECT * FROM patient_accounts WHERE mailbox_id = $1', [mailboxId]);
  return row ? toPatientAccount(row) : null;
}

export async function getPatientThread(run: Run, mailboxId: number, threadKey: string): Promise<PatientThreadRow | null> {
  const [row] = await run('SELECT * FROM patient_threads WHERE mailbox_id = $1 AND thread_key = $2', [mailboxId, threadKey]);
  return row ? toPatientThread(row) : null;
}

export async function getPatientThreadMessages(run: Run, mailboxId: number, messageKeys: readonly string[]): Promise<PatientThreadMessageRow[]> {
  if (messageKeys.length === 0) return [];
  const rows = await run('SELECT * FROM patient_thread_messages WHERE mailbox_id = $1 AND message_key = ANY($2::text[])', [mailboxId, [...messageKeys]]);
  return rows.map(toPatientThreadMessage);
}

export async function listPatientsToPurge(run: Run, now: number, limit: number): Promise<PatientAccountRow[]> {
  const rows = await run(
    'SELECT * FROM patient_accounts WHERE purge_after <= $1 AND purged_at IS NULL ORDER BY purge_after, mailbox_id LIMIT $2 FOR UPDATE SKIP LOCKED',
    [now, limit],
  );
  return rows.map(toPatientAccount);
}

export async function insertPatientAccount(run: Run, a: NewPatientAccount): Promise<boolean> {
  const rows = await run(
    'INSERT INTO patient_accounts (mailbox_id, created_at, oppose_until) VALUES ($1, $2, $3) ON CONFLICT (mailbox_id) DO NOTHING RETURNING mailbox_id',
    [a.mailboxId, a.createdAt, a.opposeUntil],
  );
  return rows.length === 1;
}

export async function updatePatientAccount(run: Run, mailboxId: number, change: PatientAccountChange): Promise<boolean> {
  const entries = (Object.keys(PATIENT_ACCOUNT_COLUMNS) as (keyof PatientAccountChange)[]).filter((k) => change[k] !== undefined);
  if (entries.length === 0) return (await getPatientAccount(run, mailboxId)) !== null;
  const sets = entries.map((k, i) => `${PATIENT_ACCOUNT_COLUMNS[k]} = $${i + 1}`).join(', ');
  const rows = await run(`UPDATE patient_accounts SET ${sets} WHERE mailbox_id = $${entries.length + 1} RETURNING mailbox_id`, [
    ...entries.map((k) => change[k]),
    mailboxId,
  ]);
  return rows.length === 1;
}

export async function acceptTotpStep(run: Run, mailboxId: number, step: number): Promise<boolean> {
  const rows = await run(
    'UPDATE patient_accounts SET totp_last_step = $1 WHERE mailbox_id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1) RETURNING mailbox_id',
    [step, mailboxId],
  );
  return rows.length === 1;
}

export async function upsertPatientThread(run: Run, mailboxId: number, threadKey: string, at: number, closedAt: number | null): Promise<void> {
  await run(
    `INSERT INTO patient_threads (mailbox_id, thread_key, closed_at, updated_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (mailbox_id, thread_key) DO UPDATE SET updated_at = excluded.updated_at,
       closed_at = coalesce(patient_threads.closed_at, excluded.closed_at)`,
    [mailboxId, threadKey, closedAt, at],
  );
}

export async function insertPatientThreadMessage(run: Run, r: PatientThreadMessageRow): Promise<void> {
  await run(
    `INSERT INTO patient_thread_messages (mailbox_id, message_key, thread_key, allowed, created_at) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (mailbox_id, message_key) DO NOTHING`,
    [r.mailboxId, r.messageKey, r.threadKey, r.allowed, r.createdAt],
  );
}

export async function purgePatientData(run: Run, mailboxId: number, at: number): Promise<void> {
  await run('DELETE FROM patient_thread_messages WHERE mailbox_id = $1', [mailboxId]);
  await run('DELETE FROM patient_threads WHERE mailbox_id = $1', [mailboxId]);
  await run('DELETE FROM patient_documents WHERE mailbox_id = $1', [mailboxId]);
  await run(
    'UPDATE patient_accounts SET purged_at = $1, activation_hash = NULL, activation_expires = NULL, totp = NULL, totp_last_step = NULL WHERE mailbox_id = $2',
    [at, mailboxId],
  );
}
