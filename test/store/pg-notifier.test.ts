import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { decodePayload, encodePayload, MAX_PAYLOAD_BYTES, PgNotifier } from '../../src/store/postgres/notifier.js';
import type { MailboxEvent } from '../../src/store/types.js';

/**
 * PgNotifier over a real PostgreSQL: two instances on the same database stand for two processes. LISTEN/NOTIFY
 * needs no table, so the `postgres` database is used as it is; each test has its own channel.
 */

const URL = process.env.MSS_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const exists = (mailboxId: number, uid = 1): MailboxEvent => ({ kind: 'exists', mailboxId, folderId: 10, uid, modseq: uid + 100 });

describe('PgNotifier', () => {
  let admin: pg.Client;
  let channel = '';
  const opened: PgNotifier[] = [];
  const open = async (reconnectDelayMs = 50) => {
    const n = await PgNotifier.connect(URL, { channel, reconnectDelayMs });
    opened.push(n);
    return n;
  };
  /** Backends whose last statement was the LISTEN on this test's channel (so: listening, not publishing since). */
  const listeners = async (): Promise<number[]> => {
    const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE query = $1', [`LISTEN "${channel}"`]);
    return rows.map((r) => r.pid);
  };

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: URL });
    await admin.connect();
  });
  afterAll(async () => {
    await admin.end();
  });
  beforeEach(() => {
    channel = `mss_test_${randomBytes(6).toString('hex')}`;
  });
  afterEach(async () => {
    for (const n of opened.splice(0)) await n.close();
  });

  it('delivers an event published by one process to the other, once to its own subscribers, only for that mailbox', async () => {
    const a = await open();
    const b = await open();
    const atA: MailboxEvent[] = [];
    const atB: MailboxEvent[] = [];
    const otherAtB: MailboxEvent[] = [];
    a.subscribe(1, (e) => atA.push(e));
    b.subscribe(1, (e) => atB.push(e));
    b.subscribe(2, (e) => otherAtB.push(e));

    a.publish(exists(1));
    // Local delivery is synchronous.
    expect(atA).toEqual([exists(1)]);
    await waitFor(() => atB.length === 1, 1000, 'B to hear of it');
    expect(atB).toEqual([exists(1)]);

    const flags: MailboxEvent = { kind: 'flags', mailboxId: 1, folderId: 10, uid: 1, modseq: 102, flags: ['\\Seen', 'urgent'], origin: 'session-a' };
    a.publish(flags);
    a.publish({ kind: 'expunge', mailboxId: 1, folderId: 10, uid: 1, modseq: 103 });
    await waitFor(() => atB.length === 3, 1000, 'B to hear of flags and expunge');
    // The session origin stays in the process: no session of B made the change.
    expect(atB[1]).toEqual({ kind: 'flags', mailboxId: 1, folderId: 10, uid: 1, modseq: 102, flags: ['\\Seen', 'urgent'] });
    expect(atB[2]).toEqual({ kind: 'expunge', mailboxId: 1, folderId: 10, uid: 1, modseq: 103 });

    // B publishes back: A hears of it, B's own subscriber once.
    b.publish(exists(1, 2));
    await waitFor(() => atA.length === 4, 1000, 'A to hear of B');
    await sleep(200);
    expect(atA).toHaveLength(4);
    expect(atA[3]).toEqual(exists(1, 2));
    expect(atB).toHaveLength(4);
    // A's own notifications never came back to it twice.
    expect(atA.filter((e) => e.kind === 'exists' && e.uid === 1)).toHaveLength(1);
    expect(otherAtB).toEqual([]);
  });

  it('sends a burst of events in order, and close() sends at once the events it was gathering', async () => {
    const a = await open();
    const b = await open();
    const atB: MailboxEvent[] = [];
    b.subscribe(1, (e) => atB.push(e));
    for (let uid = 1; uid <= 25; uid++) a.publish(exists(1, uid));
    await sleep(1); // the sender is now gathering more
    for (let uid = 26; uid <= 50; uid++) a.publish(exists(1, uid));
    await a.close();
    await waitFor(() => atB.length === 50, 1000, 'B to hear of the burst');
    expect(atB.map((e) => (e.kind === 'exists' ? e.uid : 0))).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  });

  it('stops delivering to a subscriber once it unsubscribes', async () => {
    const a = await open();
    const b = await open();
    const atB: MailboxEvent[] = [];
    const unsubscribe = b.subscribe(1, (e) => atB.push(e));
    a.publish(exists(1, 1));
    await waitFor(() => atB.length === 1, 1000);
    unsubscribe();
    unsubscribe();
    a.publish(exists(1, 2));
    await sleep(200);
    expect(atB).toHaveLength(1);
  });

  it('ignores malformed notifications without crashing', async () => {
    const b = await open();
    const atB: MailboxEvent[] = [];
    b.subscribe(1, (e) => atB.push(e));
    const origin = 'f00dfeedf00dfeed';
    const bad = [
      '',
      'not json',
      'null',
      '[]',
      '42',
      '{}',
      JSON.stringify({ v: 2, origin, kind: 'exists', mailboxId: 1, folderId: 1, uid: 1, modseq: 1 }),
      JSON.stringify({ v: 1, kind: 'exists', mailboxId: 1, folderId: 1, uid: 1, modseq: 1 }),
      JSON.stringify({ v: 1, origin, kind: 'bogus', mailboxId: 1 }),
      JSON.stringify({ v: 1, origin, kind: 'exists', mailboxId: '1', folderId: 1, uid: 1, modseq: 1 }),
      JSON.stringify({ v: 1, origin, kind: 'exists', mailboxId: 1, folderId: 1.5, uid: 1, modseq: 1 }),
      JSON.stringify({ v: 1, origin, kind: 'exists', mailboxId: 1, folderId: 1, uid: -1, modseq: 1 }),
      JSON.stringify({ v: 1, origin, kind: 'exists', mailboxId: 1, folderId: 1, uid: 1 }),
      JSON.stringify({ v: 1, origin, kind: 'exists', mailboxId: 1, folderId: 1, uid: 1, modseq: 1e300 }),
      JSON.stringify({ v: 1, origin, kind: 'flags', mailboxId: 1, folderId: 1, uid: 1, modseq: 1 }),
      JSON.stringify({ v: 1, origin, kind: 'flags', mailboxId: 1, folderId: 1, uid: 1, modseq: 1, flags: '\\Seen' }),
      JSON.stringify({ v: 1, origin, kind: 'flags', mailboxId: 1, folderId: 1, uid: 1, modseq: 1, flags: [1] }),
      JSON.stringify({ v: 1, origin, kind: 'flags', mailboxId: 1, folderId: 1, uid: 1, modseq: 1, flags: ['a b'] }),
      JSON.stringify({ v: 1, origin, kind: 'flags', mailboxId: 1, folderId: 1, uid: 1, modseq: 1, flags: ['x)\r\n* BYE'] }),
      JSON.stringify({ v: 1, origin, kind: 'resync' }),
      JSON.stringify({ v: 1, origin: 7, kind: 'resync', mailboxId: 1 }),
    ];
    for (const payload of bad) await admin.query('SELECT pg_notify($1, $2)', [channel, payload]);
    // NOTIFY without payload.
    await admin.query(`NOTIFY "${channel}"`);
    const good = JSON.stringify({ v: 1, origin, kind: 'flags', mailboxId: 1, folderId: 3, uid: 4, modseq: 5, flags: ['\\Seen', '$Label1'] });
    await admin.query('SELECT pg_notify($1, $2)', [channel, good]);
    await waitFor(() => atB.length > 0, 1000, 'the valid notification');
    await sleep(100);
    expect(atB).toEqual([{ kind: 'flags', mailboxId: 1, folderId: 3, uid: 4, modseq: 5, flags: ['\\Seen', '$Label1'] }]);
  });

  it('keeps payloads under the NOTIFY limit: flags too long become a resync hint', async () => {
    const many = Array.from({ length: 200 }, (_, i) => `keyword-${i}-${'x'.repeat(80)}`);
    const big: MailboxEvent = { kind: 'flags', mailboxId: 1, folderId: 2, uid: 3, modseq: 4, flags: many };
    const payload = encodePayload('abc', big);
    expect(Buffer.byteLength(payload)).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES);
    expect(JSON.parse(payload)).toMatchObject({ kind: 'flags', resync: true });
    expect(decodePayload(payload)).toEqual({ origin: 'abc', event: { kind: 'resync', mailboxId: 1 } });
    // 64 keywords of 100 characters (the IMAP limits) still fit.
    const max = Array.from({ length: 64 }, (_, i) => `${i}`.padEnd(100, 'k'));
    const fits = encodePayload('abc', { ...big, flags: max });
    expect(Buffer.byteLength(fits)).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES);
    expect(decodePayload(fits)?.event).toEqual({ ...big, flags: max });

    const a = await open();
    const b = await open();
    const atB: MailboxEvent[] = [];
    b.subscribe(1, (e) => atB.push(e));
    a.publish(big);
    await waitFor(() => atB.length === 1, 1000);
    expect(atB).toEqual([{ kind: 'resync', mailboxId: 1 }]);
  });

  it('reconnects after its backend is killed, resyncs its subscribers, then receives again', async () => {
    const a = await open();
    const b = await open();
    const atA: MailboxEvent[] = [];
    const atB: MailboxEvent[] = [];
    const otherAtB: MailboxEvent[] = [];
    a.subscribe(1, (e) => atA.push(e));
    b.subscribe(1, (e) => atB.push(e));
    b.subscribe(1, () => {});
    b.subscribe(7, (e) => otherAtB.push(e));
    const pid = b.backendPid;
    expect(pid).toBeGreaterThan(0);

    const { rows } = await admin.query<{ ok: boolean }>('SELECT pg_terminate_backend($1) AS ok', [pid]);
    expect(rows[0]?.ok).toBe(true);
    // Published by B while its connection is down (or dying): A hears of it after all, or is told to resync.
    b.publish(exists(1, 50));
    await waitFor(() => atB.some((e) => e.kind === 'resync'), 5000, 'B to resync');
    expect(atB.filter((e) => e.kind === 'resync')).toEqual([{ kind: 'resync', mailboxId: 1 }]);
    expect(otherAtB).toEqual([{ kind: 'resync', mailboxId: 7 }]);
    expect(b.backendPid).not.toBe(pid);
    expect(b.backendPid).toBeGreaterThan(0);
    await waitFor(() => atA.some((e) => (e.kind === 'exists' && e.uid === 50) || e.kind === 'resync'), 2000, 'A to hear of the event B published while down');

    const before = atB.length;
    a.publish(exists(1, 51));
    await waitFor(() => atB.length === before + 1, 1000, 'events to flow again');
    expect(atB[before]).toEqual(exists(1, 51));
    // And B can publish again.
    b.publish(exists(1, 52));
    await waitFor(() => atA.some((e) => e.kind === 'exists' && e.uid === 52), 1000);
  });

  it('keeps retrying while the backend is killed repeatedly', async () => {
    const b = await open(20);
    const atB: MailboxEvent[] = [];
    b.subscribe(1, (e) => atB.push(e));
    for (let i = 0; i < 3; i++) {
      const pid = b.backendPid;
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      await waitFor(() => b.backendPid !== null && b.backendPid !== pid, 5000, 'reconnection');
    }
    await waitFor(() => atB.filter((e) => e.kind === 'resync').length === 3, 1000);
    const a = await open();
    a.publish(exists(1, 9));
    await waitFor(() => atB.some((e) => e.kind === 'exists'), 1000);
  });

  it('close() unlistens, ends the connection and never reconnects', async () => {
    const handles = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'Timeout').length;
    const baseline = handles();
    const a = await open();
    const b = await open(20);
    const atB: MailboxEvent[] = [];
    b.subscribe(1, (e) => atB.push(e));
    const pidA = a.backendPid;
    const pidB = b.backendPid;
    expect(await listeners()).toEqual(expect.arrayContaining([pidA, pidB]));

    await b.close();
    await b.close(); // idempotent
    expect(b.backendPid).toBeNull();
    a.publish(exists(1));
    await sleep(200);
    expect(atB).toEqual([]);
    expect(await listeners()).not.toContain(pidB);

    // Closed while waiting to reconnect: the pending attempt is cancelled.
    await admin.query('SELECT pg_terminate_backend($1)', [pidA]);
    await waitFor(() => a.backendPid === null, 2000, 'A to notice');
    await a.close();
    const after = await listeners();
    await sleep(300);
    expect(await listeners()).toEqual(after);
    expect(after).not.toContain(pidA);
    b.publish(exists(1)); // harmless after close
    await waitFor(() => handles() <= baseline, 2000, 'handles to be released');
  });

  it('rejects when the first connection fails, and refuses odd channel names', async () => {
    await expect(PgNotifier.connect('postgres://postgres@127.0.0.1:1/postgres')).rejects.toThrow();
    await expect(PgNotifier.connect(URL, { channel: 'bad"name' })).rejects.toThrow(/channel/);
  });
});
