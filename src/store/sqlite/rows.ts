import { CorruptRowError, rowReaders, type Raw } from '../rows.js';

/** better-sqlite3 returns INTEGER as a number (a bigint only past 2^53) and has no boolean type (0/1). */
function int(row: Raw, column: string): number {
  const v = row[column];
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  throw new CorruptRowError(`column ${column}: expected an integer`);
}

function bool(row: Raw, column: string): boolean {
  return int(row, column) !== 0;
}

export const { readInt, readBytes, readText, readTextOrNull, toMailbox, toFolder, toSummary, toMessage, toAudit, toQueueItem, toDumpRow } =
  rowReaders({ int, bool });
