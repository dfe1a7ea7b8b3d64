import { CorruptRowError, parseFlags, rowReaders, type Raw } from '../rows.js';
import type { MessageSummary } from '../types.js';

/** better-sqlite3 returns INTEGER as a number (a bigint only past 2^53) and has no boolean type (0/1). */
function intValue(v: unknown, column: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  throw new CorruptRowError(`column ${column}: expected an integer`);
}

function int(row: Raw, column: string): number {
  return intValue(row[column], column);
}

function bool(row: Raw, column: string): boolean {
  return int(row, column) !== 0;
}

export const { readInt, readBytes, readText, readTextOrNull, toMailbox, toFolder, toSummary, toMessage, toAudit, toQueueItem, toDumpRow } =
  rowReaders({ int, bool });

/** The columns `toSummaryValues` reads, in its order (a statement in raw mode returns arrays, not objects). */
const SUMMARY_COLUMNS = 'id, uid, modseq, flags, internal_date, size, blob_id';

/** A folder's summaries, and those above a UID: both read from the covering index `messages_summary` alone. */
export const FOLDER_LISTING = `SELECT ${SUMMARY_COLUMNS} FROM messages WHERE folder_id = ? ORDER BY uid`;
export const FOLDER_LISTING_SINCE = `SELECT ${SUMMARY_COLUMNS} FROM messages WHERE folder_id = ? AND uid > ? ORDER BY uid`;

/** A message summary from the values of `SUMMARY_COLUMNS`: for folder listings, without an object per row first. */
export function toSummaryValues(v: readonly unknown[]): MessageSummary {
  return {
    id: intValue(v[0], 'id'),
    uid: intValue(v[1], 'uid'),
    modseq: intValue(v[2], 'modseq'),
    flags: parseFlags(v[3]),
    internalDate: intValue(v[4], 'internal_date'),
    size: intValue(v[5], 'size'),
    blobId: intValue(v[6], 'blob_id'),
  };
}
