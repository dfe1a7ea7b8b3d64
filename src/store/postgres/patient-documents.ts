import type pg from 'pg';
import { inPoolTransaction } from './pool-transaction.js';
import type { NewPatientDocument, PatientDocumentInsert, PatientDocumentRow, PatientDocumentStore, PatientDocumentWithContent } from '../patient-documents.js';
import type { Raw } from '../rows.js';
import { readBytes, readInt, readText } from './rows.js';
import { PATIENT_DOCUMENT_SUMMARY_COLUMNS, patientDocumentReaders } from '../patient-document-rows.js';

/**
 * First key of the advisory lock that serialises the saves of one mailbox (`pg_advisory_xact_lock(int, int)`,
 * the second key being the mailbox id: a lock space apart from the single-key locks of migrations and imports).
 */
const SAVE_LOCK = 0x6d7314; // 'ms' 0x14 (migration 14)
const INT4_MAX = 0x7fffffff;

const { toRow, toRowWithContent } = patientDocumentReaders({ readBytes, readInt, readText });

/** `patient_documents` on the pool of a `PostgresStore`: reads on any pooled client, each save in one transaction. */
export class PostgresPatientDocumentStore implements PatientDocumentStore {
  readonly engine = 'postgres' as const;
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  async #rows(sql: string, params: unknown[]): Promise<Raw[]> {
    return (await this.#pool.query<Raw>(sql, params)).rows;
  }

  async insert(doc: NewPatientDocument, maxPerMailbox: number): Promise<PatientDocumentInsert> {
    return inPoolTransaction(this.#pool, (client) => insert(client, doc, maxPerMailbox));
  }

  async list(mailboxId: number): Promise<PatientDocumentRow[]> {
    return (await this.#rows(`SELECT ${PATIENT_DOCUMENT_SUMMARY_COLUMNS} FROM patient_documents WHERE mailbox_id = $1 ORDER BY id`, [mailboxId])).map(toRow);
  }

  async get(mailboxId: number, id: number): Promise<PatientDocumentWithContent | null> {
    const [row] = await this.#rows('SELECT * FROM patient_documents WHERE mailbox_id = $1 AND id = $2', [mailboxId, id]);
    return row ? toRowWithContent(row) : null;
  }

  async count(mailboxId: number): Promise<number> {
    const [row] = await this.#rows('SELECT count(*) AS n FROM patient_documents WHERE mailbox_id = $1', [mailboxId]);
    return readInt(row!, 'n');
  }

  async delete(mailboxId: number, id: number): Promise<boolean> {
    const result = await this.#pool.query('DELETE FROM patient_documents WHERE mailbox_id = $1 AND id = $2', [mailboxId, id]);
    return (result.rowCount ?? 0) > 0;
  }

  async deleteAll(mailboxId: number): Promise<number> {
    const result = await this.#pool.query('DELETE FROM patient_documents WHERE mailbox_id = $1', [mailboxId]);
    return result.rowCount ?? 0;
  }
}

async function insert(client: pg.PoolClient, doc: NewPatientDocument, maxPerMailbox: number): Promise<PatientDocumentInsert> {
  // Mailbox ids past the int4 range share one lock: still correct, only less concurrent.
  await client.query('SELECT pg_advisory_xact_lock($1::integer, $2::integer)', [SAVE_LOCK, doc.mailboxId <= INT4_MAX ? doc.mailboxId : 0]);
  const [existing] = (await client.query<Raw>('SELECT id FROM patient_documents WHERE mailbox_id = $1 AND source_key = $2', [doc.mailboxId, doc.sourceKey])).rows;
  if (existing) return { outcome: 'exists', id: readInt(existing, 'id') };
  const [counted] = (await client.query<Raw>('SELECT count(*) AS n FROM patient_documents WHERE mailbox_id = $1', [doc.mailboxId])).rows;
  const count = readInt(counted!, 'n');
  if (count >= maxPerMailbox) return { outcome: 'full', count };
  const [row] = (
    await client.query<Raw>(
      'INSERT INTO patient_documents (mailbox_id, source_key, saved_at, details, content) VALUES ($1, $2, $3, $4, $5) RETURNING id',
      [doc.mailboxId, doc.sourceKey, doc.savedAt, doc.details, doc.content],
    )
  ).rows;
  return { outcome: 'created', id: readInt(row!, 'id') };
}
