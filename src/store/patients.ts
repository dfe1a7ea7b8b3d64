import type { NewPatientAccount, PatientAccountChange, PatientAccountRow, PatientThreadMessageRow, PatientThreadRow } from './patient-types.js';

/**
 * The patient tables' port (migration 13): part of `StoreReads` / `StoreTx` (src/store/types.ts) rather than a
 * store of its own, so the conversations a delivery opens with a patient are recorded in the delivery's unit of
 * work, and an opposition closes the mailbox and writes its audit record in one. Engines: src/store/sqlite/patients.ts
 * and src/store/postgres/patients.ts.
 */

export interface PatientReads {
  getPatientAccount(mailboxId: number): Promise<PatientAccountRow | null>;
  getPatientThread(mailboxId: number, threadKey: string): Promise<PatientThreadRow | null>;
  /** The known messages among `messageKeys`, in no particular order. */
  getPatientThreadMessages(mailboxId: number, messageKeys: readonly string[]): Promise<PatientThreadMessageRow[]>;
  /** Opposed accounts whose grace period ended before `now` and that are not purged yet, oldest first, at most `limit`. */
  listPatientsToPurge(now: number, limit: number): Promise<PatientAccountRow[]>;
}

export interface PatientWrites {
  /** Creates the account row of a new patient mailbox; false when it exists already (nothing written). */
  insertPatientAccount(account: NewPatientAccount): Promise<boolean>;
  /** Sets the given columns; false when there is no such account. */
  updatePatientAccount(mailboxId: number, change: PatientAccountChange): Promise<boolean>;
  /**
   * Accepts TOTP step `step` when it is above the last one accepted (compare-and-set, so two logins racing with
   * the same code cannot both pass); false otherwise.
   */
  acceptTotpStep(mailboxId: number, step: number): Promise<boolean>;
  /** Creates the conversation or marks it updated; `closedAt` closes it (a closed one stays closed). */
  upsertPatientThread(mailboxId: number, threadKey: string, at: number, closedAt: number | null): Promise<void>;
  /** Records a message of a conversation; a message recorded before keeps its first row. */
  insertPatientThreadMessage(row: PatientThreadMessageRow): Promise<void>;
  /**
   * Forgets what the patient tables hold about the mailbox's conversations and saved documents, and marks the
   * account purged at `at` (its activation code and TOTP secret are removed too).
   */
  purgePatientData(mailboxId: number, at: number): Promise<void>;
}
