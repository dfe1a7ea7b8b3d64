import { createHash } from 'node:crypto';
import type { AuditAction, AuditRow, Store, StoreReads, StoreTx } from '../store/types.js';

/**
 * The audit journal: append-only, each record carries the SHA-256 of the previous one, so changing,
 * removing or reordering any record breaks every hash after it. Records say who did what to which object
 * with which outcome; they never hold message content.
 */

export const GENESIS_HASH = '0'.repeat(64);

export interface AuditEvent {
  actor: string;
  action: AuditAction;
  object: string;
  outcome: string;
  detail?: Record<string, string | number | boolean | null>;
}

function canonicalDetail(detail: AuditEvent['detail']): string {
  const entries = Object.entries(detail ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify(Object.fromEntries(entries));
}

export function hashRecord(row: Omit<AuditRow, 'hash'>): string {
  const canonical = JSON.stringify([row.seq, row.time, row.actor, row.action, row.object, row.outcome, row.detail, row.prevHash]);
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}

/**
 * Appends inside the caller's unit of work, so the records commit with the change they describe. Several
 * writers share one chain, so appending takes the chain lock until the commit: call it once, as the LAST step
 * of a unit of work, with all its events (the lock is then held only for the append and the commit).
 */
export async function appendAudit(tx: StoreTx, events: AuditEvent | AuditEvent[], now = new Date()): Promise<AuditRow[]> {
  const list = Array.isArray(events) ? events : [events];
  if (list.length === 0) return [];
  await tx.lockAuditChain();
  const last = await tx.lastAudit();
  let seq = last?.seq ?? 0;
  let prevHash = last?.hash ?? GENESIS_HASH;
  const rows: AuditRow[] = [];
  for (const event of list) {
    const partial = {
      seq: ++seq,
      time: now.toISOString(),
      actor: event.actor,
      action: event.action,
      object: event.object,
      outcome: event.outcome,
      detail: canonicalDetail(event.detail),
      prevHash,
    };
    const row: AuditRow = { ...partial, hash: hashRecord(partial) };
    await tx.insertAudit(row);
    rows.push(row);
    prevHash = row.hash;
  }
  return rows;
}

/** Appends in a unit of work of its own (for events that change nothing else, such as a failed login). */
export async function audit(store: Store, event: AuditEvent): Promise<AuditRow> {
  const [row] = await store.transaction((tx) => appendAudit(tx, event));
  return row!;
}

export type VerifyResult = { ok: true; records: number } | { ok: false; records: number; brokenSeq: number; reason: string };

/** Needs only `readAudit`, so it also checks a journal read through the export port (`mss store migrate`). */
export async function verifyJournal(store: Pick<StoreReads, 'readAudit'>, batch = 1000): Promise<VerifyResult> {
  let prevHash = GENESIS_HASH;
  let expectedSeq = 1;
  let count = 0;
  for (;;) {
    const rows = await store.readAudit(expectedSeq - 1, batch);
    if (rows.length === 0) return { ok: true, records: count };
    for (const row of rows) {
      const fail = (reason: string): VerifyResult => ({ ok: false, records: count, brokenSeq: row.seq, reason });
      if (row.seq !== expectedSeq) return fail(`expected record ${expectedSeq}, found ${row.seq} (a record was removed)`);
      if (row.prevHash !== prevHash) return fail('previous-hash link does not match the record before it');
      const { hash, ...rest } = row;
      if (hashRecord(rest) !== hash) return fail('record content does not match its hash (altered)');
      prevHash = hash;
      expectedSeq++;
      count++;
    }
  }
}
