import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QueueWorker, type DeliveryAttempt, type DeliveryOutcome, type QueueTransport } from '../../src/queue/worker.js';
import type { NewQueueItem, Store } from '../../src/store/types.js';
import { ENGINES, openTestStore, type TestStore } from '../helpers/engines.js';

const item = (n: number): NewQueueItem => ({
  id: `q${String(n).padStart(5, '0')}`,
  destination: 'autre-operateur.test',
  sealedEnvelope: Buffer.from(`env-${n}`),
  sealedMessage: Buffer.from(`msg-${n}`),
  nextAttemptAt: 0,
});

async function fill(store: Store, n: number): Promise<void> {
  await store.transaction(async (tx) => {
    for (let i = 0; i < n; i++) await tx.enqueue(item(i));
  });
}

function transport(deliver: (a: DeliveryAttempt) => Promise<DeliveryOutcome>): QueueTransport {
  return { deliver };
}

describe.each(ENGINES)('queue worker (%s)', (engine) => {
  let t: TestStore;
  let store: Store;
  beforeEach(async () => {
    t = await openTestStore(engine);
    store = t.store;
  });
  afterEach(() => t.dispose());

  it('removes delivered items, reschedules temporary failures with backoff, and reports permanent ones in the same unit of work', async () => {
    await fill(store, 3);
    const failed: string[] = [];
    const now = 1_000_000;
    const worker = new QueueWorker({
      store,
      now: () => now,
      retryDelayMs: (attempts) => attempts * 1000,
      transport: transport(async ({ item, idempotencyKey }) => {
        expect(idempotencyKey).toBe(item.id);
        if (item.id === 'q00000') return { kind: 'delivered' };
        if (item.id === 'q00001') throw new Error('connection refused');
        return { kind: 'failed', reason: '550 5.1.1 no such user' };
      }),
      onFailed: async (tx, failedItem, reason) => {
        expect(await tx.getQueueItem(failedItem.id)).toBeNull(); // removed in this very unit of work
        failed.push(`${failedItem.id}: ${reason}`);
      },
    });
    expect(await worker.runOnce()).toBe(3);
    expect(failed).toEqual(['q00002: 550 5.1.1 no such user']);
    expect(await store.queueLength()).toBe(1);
    expect(await store.getQueueItem('q00001')).toMatchObject({ attempts: 1, leaseOwner: null, nextAttemptAt: now + 1000 });
    expect(await worker.runOnce()).toBe(0); // not due yet
  });

  it('fails an item instead of retrying it once it is older than the maximum age', async () => {
    await fill(store, 1);
    const failed: string[] = [];
    const worker = new QueueWorker({
      store,
      maxAgeMs: 1000,
      now: () => Date.now() + 5000,
      transport: transport(async () => ({ kind: 'retry', reason: '421 try later' })),
      onFailed: async (_tx, i, reason) => void failed.push(`${i.id}: ${reason}`),
    });
    await worker.runOnce();
    expect(failed).toEqual(['q00000: gave up after 1 attempts: 421 try later']);
    expect(await store.queueLength()).toBe(0);
  });

  it('renews the lease of a slow delivery, so no other worker takes the item meanwhile', async () => {
    await fill(store, 1);
    let release!: () => void;
    // Renewal runs every third of the lease; 1.2 s leaves room for a loaded machine's timer delays.
    const slow = new QueueWorker({
      store,
      leaseMs: 1200,
      transport: transport(() => new Promise((resolve) => (release = () => resolve({ kind: 'delivered' })))),
    });
    const delivering = slow.runOnce();
    await new Promise((r) => setTimeout(r, 3000)); // more than two leases
    const other = new QueueWorker({ store, leaseMs: 1200, transport: transport(async () => ({ kind: 'delivered' })) });
    expect(await other.runOnce()).toBe(0);
    release();
    expect(await delivering).toBe(1);
    expect(await store.queueLength()).toBe(0);
  });

  it('aborts a delivery whose lease was taken over, and leaves the item to its new holder', async () => {
    await fill(store, 1);
    let sawAbort = false;
    const worker = new QueueWorker({
      store,
      leaseMs: 300,
      transport: transport(
        ({ signal }) =>
          new Promise((resolve) =>
            signal.addEventListener('abort', () => {
              sawAbort = true;
              resolve({ kind: 'retry', reason: 'aborted' });
            }),
          ),
      ),
    });
    const delivering = worker.runOnce();
    await expect.poll(async () => (await store.getQueueItem('q00000'))?.leaseOwner, { timeout: 5000 }).toBe(worker.workerId);
    // Another worker whose clock says the lease has run out.
    expect(await store.transaction((tx) => tx.claimDue('thief', 1, 60_000, Date.now() + 10_000))).toHaveLength(1);
    await delivering;
    expect(sawAbort).toBe(true);
    expect(await store.getQueueItem('q00000')).toMatchObject({ leaseOwner: 'thief', attempts: 2 });
  });

  it('stop() aborts deliveries in progress and gives their items back at once', async () => {
    await fill(store, 1);
    let sawAbort = false;
    const worker = new QueueWorker({
      store,
      leaseMs: 200,
      idleMs: 20,
      transport: transport(
        ({ signal }) =>
          new Promise((resolve) =>
            signal.addEventListener('abort', () => {
              sawAbort = true;
              resolve({ kind: 'retry', reason: 'aborted' });
            }),
          ),
      ),
    });
    worker.start();
    await expect.poll(async () => (await store.getQueueItem('q00000'))?.leaseOwner, { timeout: 5000 }).toBe(worker.workerId);
    await worker.stop();
    expect(sawAbort).toBe(true);
    const back = await store.getQueueItem('q00000');
    expect(back).toMatchObject({ leaseOwner: null, attempts: 1 });
    expect(back!.nextAttemptAt).toBeLessThanOrEqual(Date.now());
  });
});

/**
 * The peer operator: records every arrival, accepts an idempotency key once and answers 200 to a repeat
 * (as our inbound relay does), holding each request a few milliseconds like a real handoff.
 */
async function startSink() {
  const arrivals: { key: string; worker: string }[] = [];
  const accepted = new Set<string>();
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const key = String(req.headers['idempotency-key']);
      arrivals.push({ key, worker: String(req.headers['x-worker']) });
      const fresh = !accepted.has(key);
      accepted.add(key);
      setTimeout(() => res.end(fresh ? 'accepted' : 'duplicate'), 1 + Math.random() * 4);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/deliver`, arrivals, accepted, close: () => new Promise((r) => server.close(r)) };
}

const CHILD = path.resolve('test/helpers/queue-worker-child.ts');
/**
 * Long enough that a worker stalled by a busy machine (shared CI cores) still renews in time: a lease lost to a
 * stall, not to the kill, would repeat an item the test counts against the victim.
 */
const LEASE_MS = 5000;

async function startWorkers(url: string, sink: string, workers: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, url, sink, String(workers), String(LEASE_MS)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`worker process exited (${code}) before ready`)));
  });
  return child;
}

async function stopped(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

describe('queue workers in two processes on one PostgreSQL database', () => {
  let t: TestStore;
  let sink: Awaited<ReturnType<typeof startSink>>;
  let children: ChildProcess[] = [];
  beforeEach(async () => {
    t = await openTestStore('postgres');
    sink = await startSink();
  });
  afterEach(async () => {
    await Promise.all(children.map((c) => stopped(c, 'SIGKILL')));
    children = [];
    await sink.close();
    await t.dispose();
  });

  const ids = Array.from({ length: 1000 }, (_, i) => item(i).id);

  it('4 workers in 2 processes drain 1,000 items, each handed over exactly once', async () => {
    await fill(t.store, 1000);
    children = await Promise.all([startWorkers(t.url!, sink.url, 2), startWorkers(t.url!, sink.url, 2)]);
    await expect.poll(() => t.store.queueLength(), { timeout: 60_000, interval: 100 }).toBe(0);
    expect(sink.arrivals).toHaveLength(1000);
    expect(new Set(sink.arrivals.map((a) => a.key))).toEqual(new Set(ids));
    // Both processes took part.
    expect(new Set(sink.arrivals.map((a) => a.worker)).size).toBe(2);
    await Promise.all(children.map((c) => stopped(c, 'SIGTERM')));
  });

  it('a process killed mid-run loses nothing: the survivor takes its items after their lease, the peer drops the repeats', async () => {
    await fill(t.store, 1000);
    const [victim, survivor] = await Promise.all([startWorkers(t.url!, sink.url, 2), startWorkers(t.url!, sink.url, 2)]);
    children = [victim!, survivor!];
    await expect.poll(() => sink.accepted.size, { timeout: 60_000, interval: 5 }).toBeGreaterThanOrEqual(300);
    await stopped(victim!, 'SIGKILL');
    const killedAt = sink.arrivals.length;
    await expect.poll(() => t.store.queueLength(), { timeout: 60_000, interval: 100 }).toBe(0);

    // Every item reached the peer and was accepted once.
    expect(sink.accepted).toEqual(new Set(ids));
    // Repeats are only the items the victim had claimed: at most its two workers' batches, and each one's
    // first arrival came from the victim.
    const first = new Map<string, string>();
    const repeats: string[] = [];
    for (const a of sink.arrivals) {
      if (first.has(a.key)) repeats.push(a.key);
      else first.set(a.key, a.worker);
    }
    expect(repeats.length).toBeLessThanOrEqual(16);
    for (const key of repeats) expect(first.get(key)).toBe(String(victim!.pid));
    // The survivor finished the run.
    expect(sink.arrivals.slice(killedAt).filter((a) => a.worker === String(survivor!.pid)).length).toBeGreaterThan(0);
    await stopped(survivor!, 'SIGTERM');
  });
});
