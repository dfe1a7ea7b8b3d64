import { PostgresStore } from './postgres/index.js';
import { PostgresPatientDocumentStore } from './postgres/patient-documents.js';
import { SqliteStore } from './sqlite/index.js';
import { SqlitePatientDocumentStore } from './sqlite/patient-documents.js';
import type { Store } from './types.js';

/**
 * The documents patients saved from their messages (the webmail's "my documents", src/webmail/documents.ts):
 * a storage port beside `Store`, on the same database and engines (table `patient_documents`, migration 14).
 *
 * The port stores what it is given: `details` and `content` arrive sealed under the mailbox's data key, and
 * `sourceKey` is a keyed hash naming the (message, document) a row was saved from, so nothing about the
 * document or the message is readable in the database. One row per (mailbox, source key): saving the same
 * document again finds the first row.
 */

export interface PatientDocumentRow {
  id: number;
  mailboxId: number;
  sourceKey: string;
  savedAt: number;
  /** Sealed. */
  details: Buffer;
}

export interface PatientDocumentWithContent extends PatientDocumentRow {
  /** Sealed. */
  content: Buffer;
}

export interface NewPatientDocument {
  mailboxId: number;
  sourceKey: string;
  savedAt: number;
  details: Buffer;
  content: Buffer;
}

export type PatientDocumentInsert =
  /** A new row, or the row already saved from the same source. */
  | { outcome: 'created' | 'exists'; id: number }
  /** The mailbox already holds `maxPerMailbox` documents: nothing written. */
  | { outcome: 'full'; count: number };

export interface PatientDocumentStore {
  readonly engine: 'sqlite' | 'postgres';
  /**
   * Inserts the document unless the mailbox has one with the same source key (then returns that one), and
   * unless the mailbox already holds `maxPerMailbox` documents; one unit of work, safe against concurrent saves.
   */
  insert(doc: NewPatientDocument, maxPerMailbox: number): Promise<PatientDocumentInsert>;
  /** The mailbox's documents without their content, oldest first. */
  list(mailboxId: number): Promise<PatientDocumentRow[]>;
  /** One document of the mailbox, with its content; null when the mailbox has no such row. */
  get(mailboxId: number, id: number): Promise<PatientDocumentWithContent | null>;
  count(mailboxId: number): Promise<number>;
  /** Removes one document of the mailbox; false when it had none with this id. */
  delete(mailboxId: number, id: number): Promise<boolean>;
  /** Removes every document of the mailbox (opposition, purge); how many went. */
  deleteAll(mailboxId: number): Promise<number>;
}

/** The patient documents table of an open `Store`, sharing its connections or pool; close the store, not this. */
export function openPatientDocumentStore(store: Store): PatientDocumentStore {
  if (store instanceof SqliteStore) return new SqlitePatientDocumentStore(store.directoryAccess());
  if (store instanceof PostgresStore) return new PostgresPatientDocumentStore(store.directoryPool());
  throw new Error(`no patient document store for the ${store.engine} engine`);
}
