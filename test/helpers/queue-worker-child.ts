/**
 * A gateway process's queue side, for the multi-process queue test: `workers` queue workers on one PostgreSQL
 * store, delivering to an HTTP sink that stands for the peer operator (it deduplicates by idempotency key).
 *
 *   node --import tsx test/helpers/queue-worker-child.ts <db url> <sink url> <workers> <lease ms>
 */
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { QueueWorker, type QueueTransport } from '../../src/queue/worker.js';

const [url, sink, workersArg, leaseArg] = process.argv.slice(2);
if (!url || !sink || !workersArg || !leaseArg) throw new Error('usage: <db url> <sink url> <workers> <lease ms>');

const store = await openPostgresStore(url, { poolSize: 4 });
const transport: QueueTransport = {
  async deliver({ item, idempotencyKey, signal }) {
    const res = await fetch(sink, {
      method: 'POST',
      headers: { 'idempotency-key': idempotencyKey, 'x-worker': `${process.pid}` },
      body: item.sealedMessage,
      signal,
    });
    await res.arrayBuffer();
    return res.ok ? { kind: 'delivered' } : { kind: 'retry', reason: `sink answered ${res.status}` };
  },
};
const workers = Array.from(
  { length: Number(workersArg) },
  () => new QueueWorker({ store, transport, batch: 8, leaseMs: Number(leaseArg), idleMs: 50, retryDelayMs: () => 0 }),
);
for (const w of workers) w.start();
process.stdout.write('ready\n');

process.once('SIGTERM', () => {
  void (async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await store.close();
    process.exit(0);
  })();
});
