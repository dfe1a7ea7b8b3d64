import type { Raw } from './rows.js';

/**
 * Rows of the patient tables (migration 13, src/policy/patients.ts). A patient mailbox is a `mailboxes` row of type
 * PATIENT (its `state` says whether it may log in: `pending` before activation, `active`, `disabled` once opposed);
 * `patient_accounts` holds its life cycle beside it. Nothing secret is in clear: the activation code as a keyed
 * hash, the TOTP secret sealed under the mailbox key; conversation rows hold keyed hashes of Message-IDs and the
 * sealed addresses a reply may go to.
 */

export interface PatientAccountRow {
  mailboxId: number;
  createdAt: number; // ms since epoch
  /** Until when the patient may still oppose (the national model: one month after creation). */
  opposeUntil: number;
  /** Keyed hash of the current activation code, or null when none is outstanding. */
  activationHash: string | null;
  activationExpires: number | null;
  activatedAt: number | null;
  opposedAt: number | null;
  /** When the messages of an opposed mailbox are destroyed (opposition + grace period). */
  purgeAfter: number | null;
  purgedAt: number | null;
  /** The TOTP secret, sealed under the mailbox key; null before activation. */
  totp: Buffer | null;
  /** The last TOTP time step accepted (no replay of a step already used). */
  totpLastStep: number | null;
}

export interface NewPatientAccount {
  mailboxId: number;
  createdAt: number;
  opposeUntil: number;
}

/** A conversation a professional opened with the patient: its root's keyed hash and whether it is closed (FIN). */
export interface PatientThreadRow {
  mailboxId: number;
  threadKey: string;
  closedAt: number | null;
  updatedAt: number;
}

/** One message of a conversation, by keyed hash of its Message-ID, with the sealed addresses a reply may go to. */
export interface PatientThreadMessageRow {
  mailboxId: number;
  messageKey: string;
  threadKey: string;
  /** Sealed JSON array of lower-case addresses. */
  allowed: Buffer;
  createdAt: number;
}

export type PatientAccountChange = Partial<
  Pick<PatientAccountRow, 'activationHash' | 'activationExpires' | 'activatedAt' | 'opposedAt' | 'purgeAfter' | 'purgedAt' | 'totp' | 'totpLastStep'>
>;

/** The column readers an engine supplies (src/store/<engine>/rows.ts). */
export interface PatientColumns {
  readInt(row: Raw, column: string): number;
  readText(row: Raw, column: string): string;
  readBytes(row: Raw, column: string): Buffer;
}

/** Row mappers shared by both engines: every column checked as it is read. */
export function patientRowReaders({ readInt, readText, readBytes }: PatientColumns) {
  const intOrNull = (row: Raw, column: string): number | null => (row[column] === null || row[column] === undefined ? null : readInt(row, column));
  const textOrNull = (row: Raw, column: string): string | null => (row[column] === null || row[column] === undefined ? null : readText(row, column));
  const bytesOrNull = (row: Raw, column: string): Buffer | null => (row[column] === null || row[column] === undefined ? null : readBytes(row, column));
  return {
    toPatientAccount: (row: Raw): PatientAccountRow => ({
      mailboxId: readInt(row, 'mailbox_id'),
      createdAt: readInt(row, 'created_at'),
      opposeUntil: readInt(row, 'oppose_until'),
      activationHash: textOrNull(row, 'activation_hash'),
      activationExpires: intOrNull(row, 'activation_expires'),
      activatedAt: intOrNull(row, 'activated_at'),
      opposedAt: intOrNull(row, 'opposed_at'),
      purgeAfter: intOrNull(row, 'purge_after'),
      purgedAt: intOrNull(row, 'purged_at'),
      totp: bytesOrNull(row, 'totp'),
      totpLastStep: intOrNull(row, 'totp_last_step'),
    }),
    toPatientThread: (row: Raw): PatientThreadRow => ({
      mailboxId: readInt(row, 'mailbox_id'),
      threadKey: readText(row, 'thread_key'),
      closedAt: intOrNull(row, 'closed_at'),
      updatedAt: readInt(row, 'updated_at'),
    }),
    toPatientThreadMessage: (row: Raw): PatientThreadMessageRow => ({
      mailboxId: readInt(row, 'mailbox_id'),
      messageKey: readText(row, 'message_key'),
      threadKey: readText(row, 'thread_key'),
      allowed: readBytes(row, 'allowed'),
      createdAt: readInt(row, 'created_at'),
    }),
  };
}

/** The columns of `patient_accounts` a change may set, by field. */
export const PATIENT_ACCOUNT_COLUMNS: Record<keyof PatientAccountChange, string> = {
  activationHash: 'activation_hash',
  activationExpires: 'activation_expires',
  activatedAt: 'activated_at',
  opposedAt: 'opposed_at',
  purgeAfter: 'purge_after',
  purgedAt: 'purged_at',
  totp: 'totp',
  totpLastStep: 'totp_last_step',
};
