import { createHash } from 'node:crypto';
import type { AuditRow, NewAuditRecord } from '../store/types.js';

/**
 * The hash chain itself, apart from the journal's API so that both store engines can link records: each record
 * carries the SHA-256 of the previous one, so changing, removing or reordering any record breaks every hash
 * after it.
 */

export const GENESIS_HASH = '0'.repeat(64);

export function hashRecord(row: Omit<AuditRow, 'hash'>): string {
  const canonical = JSON.stringify([row.seq, row.time, row.actor, row.action, row.object, row.outcome, row.detail, row.prevHash]);
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}

/** Links `records`, in order, after `last` (the journal's last record, or none). */
export function linkRecords(last: Pick<AuditRow, 'seq' | 'hash'> | null, records: readonly NewAuditRecord[]): AuditRow[] {
  let seq = last?.seq ?? 0;
  let prevHash = last?.hash ?? GENESIS_HASH;
  return records.map((record) => {
    const partial = { seq: ++seq, ...pick(record), prevHash };
    const row: AuditRow = { ...partial, hash: hashRecord(partial) };
    prevHash = row.hash;
    return row;
  });
}

function pick(r: NewAuditRecord): NewAuditRecord {
  return { time: r.time, actor: r.actor, action: r.action, object: r.object, outcome: r.outcome, detail: r.detail };
}
