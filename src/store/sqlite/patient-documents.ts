import type Database from 'better-sqlite3';
import type { NewPatientDocument, PatientDocumentInsert, PatientDocumentRow, PatientDocumentStore, PatientDocumentWithContent } from '../patient-documents.js';
import type { Raw } from '../rows.js';
import { readBytes, readInt, readText } from './rows.js';
import { PATIENT_DOCUMENT_SUMMARY_COLUMNS, patientDocumentReaders } from '../patient-document-rows.js';
import type { SqliteTrustAccess } from './trust.js';

type Db = Database.Database;

const { toRow, toRowWithContent } = patientDocumentReaders({ readBytes, readInt, readText });

/** `patient_documents` on the connections of a `SqliteStore`: reads on its reader, writes on its writer. */
export class SqlitePatientDocumentStore implements PatientDocumentStore {
  readonly engine = 'sqlite' as const;
  readonly #reader: Db;
  readonly #withWriter: SqliteTrustAccess['withWriter'];

  constructor(access: SqliteTrustAccess) {
    this.#reader = access.reader;
    this.#withWriter = access.withWriter;
  }

  insert(doc: NewPatientDocument, maxPerMailbox: number): Promise<PatientDocumentInsert> {
    return this.#withWriter(async (db) => {
      db.exec('BEGIN IMMEDIATE');
      try {
        const outcome = insert(db, doc, maxPerMailbox);
        db.exec('COMMIT');
        return outcome;
      } catch (err) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  async list(mailboxId: number): Promise<PatientDocumentRow[]> {
    const rows = this.#reader.prepare(`SELECT ${PATIENT_DOCUMENT_SUMMARY_COLUMNS} FROM patient_documents WHERE mailbox_id = ? ORDER BY id`).all(mailboxId) as Raw[];
    return rows.map(toRow);
  }

  async get(mailboxId: number, id: number): Promise<PatientDocumentWithContent | null> {
    const row = this.#reader.prepare('SELECT * FROM patient_documents WHERE mailbox_id = ? AND id = ?').get(mailboxId, id) as Raw | undefined;
    return row ? toRowWithContent(row) : null;
  }

  async count(mailboxId: number): Promise<number> {
    return countOf(this.#reader, mailboxId);
  }

  delete(mailboxId: number, id: number): Promise<boolean> {
    return this.#withWriter(async (db) => db.prepare('DELETE FROM patient_documents WHERE mailbox_id = ? AND id = ?').run(mailboxId, id).changes > 0);
  }

  deleteAll(mailboxId: number): Promise<number> {
    return this.#withWriter(async (db) => db.prepare('DELETE FROM patient_documents WHERE mailbox_id = ?').run(mailboxId).changes);
  }
}

function countOf(db: Db, mailboxId: number): number {
  const row = db.prepare('SELECT count(*) AS n FROM patient_documents WHERE mailbox_id = ?').get(mailboxId) as Raw;
  return readInt(row, 'n');
}

function insert(db: Db, doc: NewPatientDocument, maxPerMailbox: number): PatientDocumentInsert {
  const existing = db.prepare('SELECT id FROM patient_documents WHERE mailbox_id = ? AND source_key = ?').get(doc.mailboxId, doc.sourceKey) as Raw | undefined;
  if (existing) return { outcome: 'exists', id: readInt(existing, 'id') };
  const count = countOf(db, doc.mailboxId);
  if (count >= maxPerMailbox) return { outcome: 'full', count };
  const row = db
    .prepare('INSERT INTO patient_documents (mailbox_id, source_key, saved_at, details, content) VALUES (?, ?, ?, ?, ?) RETURNING id')
    .get(doc.mailboxId, doc.sourceKey, doc.savedAt, doc.details, doc.content) as Raw;
  return { outcome: 'created', id: readInt(row, 'id') };
}
