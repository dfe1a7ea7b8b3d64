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
} from '../types.js';

/** Store rows are a boundary: each column is checked as it is read, never cast. */

export class CorruptRowError extends Error {}

type Raw = Record<string, unknown>;

function int(row: Raw, column: string): number {
  const v = row[column];
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  throw new CorruptRowError(`column ${column}: expected an integer`);
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
  throw new CorruptRowError(`column ${column}: expected a blob`);
}

function oneOf<T extends string>(row: Raw, column: string, allowed: readonly T[]): T {
  const v = text(row, column);
  if ((allowed as readonly string[]).includes(v)) return v as T;
  throw new CorruptRowError(`column ${column}: unexpected value ${JSON.stringify(v)}`);
}

function flags(row: Raw): string[] {
  const parsed: unknown = JSON.parse(text(row, 'flags'));
  if (Array.isArray(parsed) && parsed.every((f) => typeof f === 'string')) return parsed as string[];
  throw new CorruptRowError('column flags: expected a JSON array of strings');
}

export function toMailbox(row: Raw): MailboxRow {
  return {
    id: int(row, 'id'),
    address: text(row, 'address'),
    type: oneOf(row, 'type', MAILBOX_TYPES),
    ownerId: textOrNull(row, 'owner_id'),
    displayName: textOrNull(row, 'display_name'),
    passwordHash: textOrNull(row, 'password_hash'),
    state: oneOf(row, 'state', MAILBOX_STATES),
    wrappedKey: bytes(row, 'wrapped_key'),
    createdAt: int(row, 'created_at'),
  };
}

export function toFolder(row: Raw): FolderRow {
  return {
    id: int(row, 'id'),
    mailboxId: int(row, 'mailbox_id'),
    name: text(row, 'name'),
    uidValidity: int(row, 'uid_validity'),
    uidNext: int(row, 'uid_next'),
    highestModseq: int(row, 'highest_modseq'),
    specialUse: textOrNull(row, 'special_use'),
    subscribed: int(row, 'subscribed') !== 0,
  };
}

export function toSummary(row: Raw): MessageSummary {
  return {
    id: int(row, 'id'),
    uid: int(row, 'uid'),
    modseq: int(row, 'modseq'),
    flags: flags(row),
    internalDate: int(row, 'internal_date'),
    size: int(row, 'size'),
  };
}

export function toMessage(row: Raw): MessageRow {
  return {
    ...toSummary(row),
    mailboxId: int(row, 'mailbox_id'),
    folderId: int(row, 'folder_id'),
    blobId: int(row, 'blob_id'),
    sealedMeta: bytes(row, 'meta'),
  };
}

export function toAudit(row: Raw): AuditRow {
  return {
    seq: int(row, 'seq'),
    time: text(row, 'time'),
    actor: text(row, 'actor'),
    action: oneOf<AuditAction>(row, 'action', AUDIT_ACTIONS),
    object: text(row, 'object'),
    outcome: text(row, 'outcome'),
    detail: text(row, 'detail'),
    prevHash: text(row, 'prev_hash'),
    hash: text(row, 'hash'),
  };
}

function intOrNull(row: Raw, column: string): number | null {
  return row[column] === null || row[column] === undefined ? null : int(row, column);
}

export function toQueueItem(row: Raw): QueueItem {
  return {
    id: text(row, 'id'),
    destination: text(row, 'destination'),
    sealedEnvelope: bytes(row, 'sealed_envelope'),
    sealedMessage: bytes(row, 'sealed_message'),
    nextAttemptAt: int(row, 'next_attempt_at'),
    attempts: int(row, 'attempts'),
    leaseOwner: textOrNull(row, 'lease_owner'),
    leaseUntil: intOrNull(row, 'lease_until'),
    createdAt: int(row, 'created_at'),
  };
}

export { int as readInt, bytes as readBytes, text as readText, textOrNull as readTextOrNull };
