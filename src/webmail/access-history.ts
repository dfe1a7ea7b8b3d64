import { z } from 'zod';
import type { AuditRow, StoreReads } from '../store/types.js';

/**
 * "Who accessed my messages": the records of the audit journal about one mailbox (logins, reads, downloads,
 * deliveries, moves, sends), most recent first. The journal is one chain for the whole operator, read forward in
 * batches; only the last `limit` matches are kept in memory.
 */

export interface AccessEntry {
  seq: number;
  time: string;
  actor: string;
  action: string;
  outcome: string;
  /** How: 'webmail', 'imap', 'smtp'… from the record's detail, when it says. */
  via: string | null;
}

const BATCH = 1000;

/** Whether a record concerns the mailbox: it acted, or the object is the mailbox or something in it. */
export function concerns(row: Pick<AuditRow, 'actor' | 'object'>, address: string): boolean {
  return row.actor === address || row.object === address || row.object.startsWith(`${address}/`);
}

const Via = z.object({ channel: z.string().optional(), protocol: z.string().optional() });

function viaOf(detail: string): string | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(detail);
  } catch {
    return null; // A detail that is not JSON says nothing about the channel.
  }
  const via = Via.safeParse(parsed);
  return via.success ? (via.data.channel ?? via.data.protocol ?? null) : null;
}

export async function accessHistory(store: Pick<StoreReads, 'readAudit'>, address: string, limit: number): Promise<AccessEntry[]> {
  const kept: AccessEntry[] = [];
  let after = 0;
  for (;;) {
    const rows = await store.readAudit(after, BATCH);
    if (rows.length === 0) break;
    for (const row of rows) {
      if (!concerns(row, address)) continue;
      kept.push({ seq: row.seq, time: row.time, actor: row.actor, action: row.action, outcome: row.outcome, via: viaOf(row.detail) });
      if (kept.length > limit) kept.shift();
    }
    after = rows[rows.length - 1]!.seq;
  }
  return kept.reverse();
}
