import type { PatientDocumentRow, PatientDocumentWithContent } from './patient-documents.js';
import type { Raw } from './rows.js';

/** The columns of a document's row without its content (lists). */
export const PATIENT_DOCUMENT_SUMMARY_COLUMNS = 'id, mailbox_id, source_key, saved_at, details';

/** The column readers of one engine (its `rows.ts`), which differ in how integers and bytes come back. */
export interface PatientDocumentColumnReaders {
  readInt(row: Raw, column: string): number;
  readText(row: Raw, column: string): string;
  readBytes(row: Raw, column: string): Buffer;
}

/** Row mappers of `patient_documents`: each column checked as it is read, never cast (as `rows.ts`). */
export function patientDocumentReaders({ readInt, readText, readBytes }: PatientDocumentColumnReaders) {
  const toRow = (row: Raw): PatientDocumentRow => ({
    id: readInt(row, 'id'),
    mailboxId: readInt(row, 'mailbox_id'),
    sourceKey: readText(row, 'source_key'),
    savedAt: readInt(row, 'saved_at'),
    details: readBytes(row, 'details'),
  });
  return { toRow, toRowWithContent: (row: Raw): PatientDocumentWithContent => ({ ...toRow(row), content: readBytes(row, 'content') }) };
}
