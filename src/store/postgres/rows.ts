import { CorruptRowError, rowReaders, type Raw } from '../rows.js';

/** The `pg` driver returns BIGINT (int8) as a decimal string, INTEGER as a number, BOOLEAN as a boolean. */
const DECIMAL = /^-?\d{1,16}$/;

function int(row: Raw, column: string): number {
  const v = row[column];
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'string' && DECIMAL.test(v)) {
    const n = Number(v);
    if (Number.isSafeInteger(n)) return n;
  }
  throw new CorruptRowError(`column ${column}: expected an integer`);
}

function bool(row: Raw, column: string): boolean {
  const v = row[column];
  if (typeof v === 'boolean') return v;
  throw new CorruptRowError(`column ${column}: expected a boolean`);
}

export const { readInt, readBytes, readText, readTextOrNull, toMailbox, toFolder, toSummary, toMessage, toAudit, toPendingAudit, toQueueItem, toDumpRow } =
  rowReaders({ int, bool });
