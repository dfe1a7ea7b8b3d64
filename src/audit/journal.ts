import { GENESIS_HASH, hashRecord } from './chain.js';
import type { AuditAction, Store, StoreReads, StoreTx } from '../store/types.js';

/**
 * The audit journal: append-only and hash-chained (`chain.ts`). Records say who did what to which object
 * with which outcome; they never hold message content.
 */

export { GENESIS_HASH, hashRecord } from './chain.js';

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

/**
 * Appends inside the caller's unit of work, so the records commit with the change they describe (and vanish
 * with it when it rolls back).
 */
export async function appendAudit(tx: StoreTx, events: AuditEvent | AuditEvent[], now = new Date()): Promise<void> {
  const list = Array.isArray(events) ? events : [events];
  if (list.length === 0) return;
  const time = now.toISOString();
  await tx.appendAudit(
    list.map((e) => ({ time, actor: e.actor, action: e.action, object: e.object, outcome: e.outcome, detail: canonicalDetail(e.detail) })),
  );
}

/** Appends in a unit of work of its own (for events that change nothing else, such as a failed login). */
export async function audit(store: Store, event: AuditEvent): Promise<void> {
  await store.transaction((tx) => appendAudit(tx, event));
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
