import { COLUMN_DUMP_COLUMNS, COLUMN_DUMP_KEY, COLUMN_DUMP_TABLES, isColumnDumpTable, type ColumnDumpRow, type ColumnDumpTable } from './column-dump.js';
import { correspondentKeyDumpValues, credentialDumpValues, KEYSTORE_DUMP_COLUMNS } from './keystore-rows.js';
import type { CorrespondentKeyRow, CredentialRow } from './keystore-types.js';
import type { AuditRow, FolderRow, MailboxRow, MessageRow, QueueItem } from './types.js';

/**
 * The export/import port (docs/decisions/0005-store-migration.md): a narrow side door beside `Store` for
 * `mss store migrate`, which must copy rows with their ids, UIDs, MODSEQs and audit hashes as they are — the
 * `Store` port (for the running server) allocates all of those itself and cannot.
 *
 * Rows are engine-neutral records (the same shapes the `Store` port reads, plus the columns it never shows).
 * Sealed columns are opaque `Buffer`s copied byte for byte: nothing is opened or re-sealed, so the master key
 * and the mailbox keys do not change. Each engine implements the port in its own `dump.ts` (only `src/store/`
 * writes SQL).
 */

export interface BlobDumpRow {
  id: number;
  mailboxId: number;
  size: number; // sealed bytes
  file: string | null; // a file of the blob directory (copied as a reference), or null: the bytes are chunk rows
}

/** One piece of a blob stored in the database; a blob's chunks, in `seq` order, are its sealed bytes. */
export interface BlobChunkDumpRow {
  id: number;
  blobId: number;
  seq: number;
  data: Buffer; // sealed
}

export interface QueueDumpRow extends QueueItem {
  state: string;
}

export interface AuthFailureDumpRow {
  key: string;
  failures: number;
  lockedUntil: number;
  updatedAt: number;
}

/** A message expunged from a folder (QRESYNC's VANISHED): its UID and the MODSEQ of its removal. */
export interface ExpungedMessageDumpRow {
  id: number;
  folderId: number;
  uid: number;
  modseq: number;
}

export interface UidValidityCounterDumpRow {
  id: 1;
  last: number;
}

/** Every table of the schema, in an order where each row's references are already copied. */
export type DumpRows = {
  mailboxes: MailboxRow;
  folders: FolderRow;
  blobs: BlobDumpRow;
  blob_chunks: BlobChunkDumpRow;
  messages: MessageRow;
  expunged_messages: ExpungedMessageDumpRow;
  audit: AuditRow;
  queue: QueueDumpRow;
  auth_failures: AuthFailureDumpRow;
  uid_validity_counter: UidValidityCounterDumpRow;
  mailbox_credentials: CredentialRow;
  correspondent_keys: CorrespondentKeyRow;
} & { [T in ColumnDumpTable]: ColumnDumpRow }

export type DumpTable = keyof DumpRows;

export const DUMP_TABLES: readonly DumpTable[] = [
  'mailboxes',
  'folders',
  'blobs',
  'blob_chunks',
  'messages',
  'expunged_messages',
  'audit',
  'queue',
  'auth_failures',
  'uid_validity_counter',
  'mailbox_credentials',
  'correspondent_keys',
  ...COLUMN_DUMP_TABLES,
];

/** The key rows are exported in (ascending): a number (ids, audit seq) or text (queue id, auth-failure key). */
export type DumpKey = number | string;

export function dumpKey<T extends DumpTable>(table: T, row: DumpRows[T]): DumpKey {
  if (isColumnDumpTable(table)) return (row as ColumnDumpRow).key;
  switch (table) {
    case 'audit':
      return (row as AuditRow).seq;
    case 'auth_failures':
      return (row as AuthFailureDumpRow).key;
    default:
      return (row as { id: number | string }).id;
  }
}

/** One side of a migration: an open database of one engine, read in key order, batch by batch. */
export interface DumpSource {
  readonly engine: 'sqlite' | 'postgres';
  /** The highest schema migration applied (0 when there is no schema). */
  schemaVersion(): Promise<number>;
  count(table: DumpTable): Promise<number>;
  /** Rows with a key above `afterKey` (all when null), in key order, at most `limit`. */
  exportRows<T extends DumpTable>(table: T, afterKey: DumpKey | null, limit: number): Promise<DumpRows[T][]>;
  close(): Promise<void>;
}

/** Inserts rows as they are, ids included, inside the one unit of work of `DumpTarget.importAll`. */
export interface DumpSink {
  importRows<T extends DumpTable>(table: T, rows: DumpRows[T][]): Promise<void>;
}

export interface DumpTarget extends DumpSource {
  /**
   * Runs `work` in one transaction: committed when it resolves (after the engine has moved its id
   * generators past the imported ids), rolled back when it throws, so a failed import writes nothing.
   * Refuses (throws `TargetNotEmptyError`) when the database already holds any operator data.
   */
  importAll(work: (sink: DumpSink) => Promise<void>): Promise<void>;
}

/** The tables whose rows make a database "not empty" for an import. */
export const OPERATOR_TABLES: readonly DumpTable[] = [
  'mailboxes',
  'folders',
  'blobs',
  'blob_chunks',
  'messages',
  'expunged_messages',
  'audit',
  'queue',
  'auth_failures',
  'mailbox_credentials',
  'correspondent_keys',
  ...COLUMN_DUMP_TABLES,
];

export class TargetNotEmptyError extends Error {
  constructor(readonly counts: Partial<Record<DumpTable, number>>) {
    const held = Object.entries(counts)
      .map(([table, n]) => `${table}: ${n}`)
      .join(', ');
    super(`the target database is not empty (rows in ${held}): migrate into a fresh, empty database`);
  }
}

/** A value as both engines store it; each engine converts booleans to its own representation. */
export type DumpValue = number | string | boolean | Buffer | null;

/** The columns of each table, in the order `dumpValues` gives their values (the same on both engines). */
export const DUMP_COLUMNS: { readonly [T in DumpTable]: readonly string[] } = {
  mailboxes: ['id', 'address', 'type', 'owner_id', 'display_name', 'password_hash', 'state', 'wrapped_key', 'created_at'],
  folders: ['id', 'mailbox_id', 'name', 'uid_validity', 'uid_next', 'highest_modseq', 'special_use', 'subscribed'],
  blobs: ['id', 'mailbox_id', 'size', 'file'],
  blob_chunks: ['id', 'blob_id', 'seq', 'data'],
  messages: ['id', 'mailbox_id', 'folder_id', 'uid', 'modseq', 'flags', 'internal_date', 'size', 'blob_id', 'meta'],
  expunged_messages: ['id', 'folder_id', 'uid', 'modseq'],
  audit: ['seq', 'time', 'actor', 'action', 'object', 'outcome', 'detail', 'prev_hash', 'hash'],
  queue: ['id', 'destination', 'state', 'attempts', 'next_attempt_at', 'lease_owner', 'lease_until', 'created_at', 'sealed_envelope', 'sealed_message'],
  auth_failures: ['key', 'failures', 'locked_until', 'updated_at'],
  uid_validity_counter: ['id', 'last'],
  mailbox_credentials: KEYSTORE_DUMP_COLUMNS.mailbox_credentials,
  correspondent_keys: KEYSTORE_DUMP_COLUMNS.correspondent_keys,
  ...COLUMN_DUMP_COLUMNS,
};

/** The key column of each table (rows are exported in its ascending order). */
export const DUMP_KEY_COLUMN: { readonly [T in DumpTable]: string } = {
  mailboxes: 'id',
  folders: 'id',
  blobs: 'id',
  blob_chunks: 'id',
  messages: 'id',
  expunged_messages: 'id',
  audit: 'seq',
  queue: 'id',
  auth_failures: 'key',
  uid_validity_counter: 'id',
  mailbox_credentials: 'id',
  correspondent_keys: 'id',
  ...COLUMN_DUMP_KEY,
};

/** The values of one row, in `DUMP_COLUMNS` order. */
export function dumpValues<T extends DumpTable>(table: T, record: DumpRows[T]): DumpValue[] {
  const r = record as DumpRows[DumpTable];
  if (isColumnDumpTable(table)) return (r as ColumnDumpRow).values;
  switch (table) {
    case 'mailboxes': {
      const m = r as MailboxRow;
      return [m.id, m.address, m.type, m.ownerId, m.displayName, m.passwordHash, m.state, m.wrappedKey, m.createdAt];
    }
    case 'folders': {
      const f = r as FolderRow;
      return [f.id, f.mailboxId, f.name, f.uidValidity, f.uidNext, f.highestModseq, f.specialUse, f.subscribed];
    }
    case 'blobs': {
      const b = r as BlobDumpRow;
      return [b.id, b.mailboxId, b.size, b.file];
    }
    case 'blob_chunks': {
      const c = r as BlobChunkDumpRow;
      return [c.id, c.blobId, c.seq, c.data];
    }
    case 'messages': {
      const m = r as MessageRow;
      return [m.id, m.mailboxId, m.folderId, m.uid, m.modseq, JSON.stringify(m.flags), m.internalDate, m.size, m.blobId, m.sealedMeta];
    }
    case 'expunged_messages': {
      const e = r as ExpungedMessageDumpRow;
      return [e.id, e.folderId, e.uid, e.modseq];
    }
    case 'audit': {
      const a = r as AuditRow;
      return [a.seq, a.time, a.actor, a.action, a.object, a.outcome, a.detail, a.prevHash, a.hash];
    }
    case 'queue': {
      const q = r as QueueDumpRow;
      return [q.id, q.destination, q.state, q.attempts, q.nextAttemptAt, q.leaseOwner, q.leaseUntil, q.createdAt, q.sealedEnvelope, q.sealedMessage];
    }
    case 'auth_failures': {
      const a = r as AuthFailureDumpRow;
      return [a.key, a.failures, a.lockedUntil, a.updatedAt];
    }
    case 'uid_validity_counter': {
      const c = r as UidValidityCounterDumpRow;
      return [c.id, c.last];
    }
    case 'mailbox_credentials':
      return credentialDumpValues(r as CredentialRow);
    case 'correspondent_keys':
      return correspondentKeyDumpValues(r as CorrespondentKeyRow);
  }
  throw new Error(`unknown table ${String(table)}`);
}
