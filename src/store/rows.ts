import {
  AUDIT_ACTIONS,
  MAILBOX_STATES,
  MAILBOX_TYPES,
  type AuditAction,
  type AuditRow,
  type FolderRow,
  type MailboxRow,
  type MessageRow,
  type MessageSummary,
  type QueueItem,
  type NewAuditRecord,
} from './types.js';
import type { DumpRows, DumpTable } from './dump.js';
import { isColumnDumpTable, toColumnDumpRow } from './column-dump.js';
import { keystoreRowReaders } from './keystore-rows.js';

/**
 * Store rows are a boundary: each column is checked as it is read, never cast. The mapping from columns to
 * row types is the same for every engine; only how a driver returns integers and booleans differs, so each
 * engine's `rows.ts` supplies those two readers.
 */

export class CorruptRowError extends Error {}

export type Raw = Record<string, unknown>;

export interface EngineColumns {
  int(row: Raw, column: string): number;
  bool(row: Raw, column: string): boolean;
}

function text(row: Raw, column: string): string {
  const v = row[column];
  if (typeof v === 'string') return v;
  throw new CorruptRowError(`column ${column}: expected text`);
}

function textOrNull(row: Raw, column: string): string | null {
  return row[column] === null || row[column] === undefined ? null : text(row, column);
}

function bytes(row: Raw, column: string): Buffer {
  const v = row[column];
  if (Buffer.isBuffer(v)) return v;
  throw new CorruptRowError(`column ${column}: expected binary data`);
}

function oneOf<T extends string>(row: Raw, column: string, allowed: readonly T[]): T {
  const v = text(row, column);
  if ((allowed as readonly string[]).includes(v)) return v as T;
  throw new CorruptRowError(`column ${column}: unexpected value ${JSON.stringify(v)}`);
}

/** A flags column: a JSON array of strings. */
export function parseFlags(value: unknown): string[] {
  if (typeof value !== 'string') throw new CorruptRowError('column flags: expected text');
  const parsed: unknown = JSON.parse(value);
  if (Array.isArray(parsed) && parsed.every((f) => typeof f === 'string')) return parsed as string[];
  throw new CorruptRowError('column flags: expected a JSON array of strings');
}

function flags(row: Raw): string[] {
  return parseFlags(row.flags);
}

/** The column readers and row mappers of one engine. */
export function rowReaders({ int, bool }: EngineColumns) {
  const intOrNull = (row: Raw, column: string): number | null =>
    row[column] === null || row[column] === undefined ? null : int(row, column);

  const toSummary = (row: Raw): MessageSummary => ({
    id: int(row, 'id'),
    uid: int(row, 'uid'),
    modseq: int(row, 'modseq'),
    flags: flags(row),
    internalDate: int(row, 'internal_date'),
    size: int(row, 'size'),
    blobId: int(row, 'blob_id'),
  });

  const mappers = {
    readInt: int,
    readBytes: bytes,
    readText: text,
    readTextOrNull: textOrNull,

    toMailbox: (row: Raw): MailboxRow => ({
      id: int(row, 'id'),
      address: text(row, 'address'),
      type: oneOf(row, 'type', MAILBOX_TYPES),
      ownerId: textOrNull(row, 'owner_id'),
      displayName: textOrNull(row, 'display_name'),
      passwordHash: textOrNull(row, 'password_hash'),
      state: oneOf(row, 'state', MAILBOX_STATES),
      wrappedKey: bytes(row, 'wrapped_key'),
      createdAt: int(row, 'created_at'),
    }),

    toFolder: (row: Raw): FolderRow => ({
      id: int(row, 'id'),
      mailboxId: int(row, 'mailbox_id'),
      name: text(row, 'name'),
      uidValidity: int(row, 'uid_validity'),
      uidNext: int(row, 'uid_next'),
      highestModseq: int(row, 'highest_modseq'),
      specialUse: textOrNull(row, 'special_use'),
      subscribed: bool(row, 'subscribed'),
    }),

    toSummary,

    toMessage: (row: Raw): MessageRow => ({
      ...toSummary(row),
      mailboxId: int(row, 'mailbox_id'),
      folderId: int(row, 'folder_id'),
      sealedMeta: bytes(row, 'meta'),
    }),

    toAudit: (row: Raw): AuditRow => ({
      seq: int(row, 'seq'),
      time: text(row, 'time'),
      actor: text(row, 'actor'),
      action: oneOf<AuditAction>(row, 'action', AUDIT_ACTIONS),
      object: text(row, 'object'),
      outcome: text(row, 'outcome'),
      detail: text(row, 'detail'),
      prevHash: text(row, 'prev_hash'),
      hash: text(row, 'hash'),
    }),

    toPendingAudit: (row: Raw): NewAuditRecord => ({
      time: text(row, 'time'),
      actor: text(row, 'actor'),
      action: oneOf<AuditAction>(row, 'action', AUDIT_ACTIONS),
      object: text(row, 'object'),
      outcome: text(row, 'outcome'),
      detail: text(row, 'detail'),
    }),

    toQueueItem: (row: Raw): QueueItem => ({
      id: text(row, 'id'),
      destination: text(row, 'destination'),
      sealedEnvelope: bytes(row, 'sealed_envelope'),
      sealedMessage: bytes(row, 'sealed_message'),
      nextAttemptAt: int(row, 'next_attempt_at'),
      attempts: int(row, 'attempts'),
      leaseOwner: textOrNull(row, 'lease_owner'),
      leaseUntil: intOrNull(row, 'lease_until'),
      createdAt: int(row, 'created_at'),
    }),
  };

  const keystore = keystoreRowReaders({ readInt: int, readText: text, readTextOrNull: textOrNull, readBytes: bytes });

  /** Any table's row, for the export/import port (`mss store migrate`). */
  function toDumpRow<T extends DumpTable>(table: T, row: Raw): DumpRows[T] {
    if (isColumnDumpTable(table)) return toColumnDumpRow(table, row, { int, bool }) as DumpRows[T];
    const parsed: DumpRows[DumpTable] = (() => {
      switch (table) {
        case 'mailboxes':
          return mappers.toMailbox(row);
        case 'folders':
          return mappers.toFolder(row);
        case 'blobs':
          return { id: int(row, 'id'), mailboxId: int(row, 'mailbox_id'), size: int(row, 'size'), file: textOrNull(row, 'file') };
        case 'blob_chunks':
          return { id: int(row, 'id'), blobId: int(row, 'blob_id'), seq: int(row, 'seq'), data: bytes(row, 'data') };
        case 'messages':
          return mappers.toMessage(row);
        case 'expunged_messages':
          return { id: int(row, 'id'), folderId: int(row, 'folder_id'), uid: int(row, 'uid'), modseq: int(row, 'modseq') };
        case 'audit':
          return mappers.toAudit(row);
        case 'queue':
          return { ...mappers.toQueueItem(row), state: text(row, 'state') };
        case 'auth_failures':
          return { key: text(row, 'key'), failures: int(row, 'failures'), lockedUntil: int(row, 'locked_until'), updatedAt: int(row, 'updated_at') };
        case 'uid_validity_counter':
          if (int(row, 'id') !== 1) throw new CorruptRowError('uid_validity_counter: unexpected row id');
          return { id: 1 as const, last: int(row, 'last') };
        case 'mailbox_credentials':
          return keystore.toCredential(row);
        case 'correspondent_keys':
          return keystore.toCorrespondentKey(row);
      }
      throw new CorruptRowError(`unknown table ${String(table)}`);
    })();
    return parsed as DumpRows[T];
  }

  return { ...mappers, toDumpRow };
}
