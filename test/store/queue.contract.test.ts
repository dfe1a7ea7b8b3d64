import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NewQueueItem, Store } from '../../src/store/types.js';
import { ENGINES, openTestStore, type TestStore } from '../helpers/engines.js';

const item = (n: number, nextAttemptAt = 0): NewQueueItem => ({
  id: `q${String(n).padStart(5, '0')}`,
  destination: 'autre-operateur.test',
  sealedEnvelope: Buffer.from(`env-${n}`),
  sealedMessage: Buffer.from(`msg-${n}`),
  nextAttemptAt,
});

describe.each(ENGINES)('outbound queue contract (%s)', (engine) => {
  let t: TestStore;
  let store: Store;

  beforeEach(async () => {
    t = await openTestStore(engine);
    store = t.store;
  });
  afterEach(() => t.dispose());

  it('enqueues with the unit of work, claims due items oldest first with a lease, completes and releases', async () => {
    await expect(
      store.transaction(async (tx) => {
        await tx.enqueue(item(99));
        throw new Error('submission failed');
      }),
    ).rejects.toThrow('submission failed');
    expect(await store.queueLength()).toBe(0);

    await store.transaction(async (tx) => {
      await tx.enqueue(item(3, 300));
      await tx.enqueue(item(1, 100));
      await tx.enqueue(item(2, 200));
      await tx.enqueue(item(4, 10_000)); // not due yet
    });
    expect(await store.queueLength()).toBe(4);
    const claimed = await store.transaction((tx) => tx.claimDue('w1', 2, 60_000, 1_000));
    expect(claimed.map((c) => [c.id, c.attempts, c.leaseOwner, c.leaseUntil])).toEqual([
      ['q00001', 1, 'w1', 61_000],
      ['q00002', 1, 'w1', 61_000],
    ]);
    expect(claimed[0]!.sealedMessage.toString()).toBe('msg-1');
    // Leased items are not claimed again; the not-yet-due one is not claimed.
    expect((await store.transaction((tx) => tx.claimDue('w2', 10, 60_000, 1_000))).map((c) => c.id)).toEqual(['q00003']);

    expect(await store.transaction((tx) => tx.completeQueueItem('q00001', 'w2'))).toBe(false);
    expect(await store.transaction((tx) => tx.completeQueueItem('q00001', 'w1'))).toBe(true);
    expect(await store.getQueueItem('q00001')).toBeNull();
    // A temporary failure: back in the queue for later, lease cleared.
    expect(await store.transaction((tx) => tx.releaseQueueItem('q00002', 'w1', 5_000))).toBe(true);
    expect(await store.getQueueItem('q00002')).toMatchObject({ leaseOwner: null, leaseUntil: null, nextAttemptAt: 5_000, attempts: 1 });
    expect(await store.transaction((tx) => tx.claimDue('w1', 10, 60_000, 4_999))).toEqual([]);
    const again = await store.transaction((tx) => tx.claimDue('w1', 10, 60_000, 5_000));
    expect(again.map((c) => [c.id, c.attempts])).toEqual([['q00002', 2]]);
    expect(await store.queueLength()).toBe(3);
  });

  it('a claim whose worker died is released when its lease expires, and the late worker cannot complete it', async () => {
    await store.transaction((tx) => tx.enqueue(item(1)));
    const [first] = await store.transaction((tx) => tx.claimDue('dead', 1, 100, 1_000));
    expect(first!.leaseUntil).toBe(1_100);
    expect(await store.transaction((tx) => tx.claimDue('alive', 1, 100, 1_099))).toEqual([]);
    const [taken] = await store.transaction((tx) => tx.claimDue('alive', 1, 100, 1_100));
    expect(taken).toMatchObject({ id: 'q00001', leaseOwner: 'alive', attempts: 2 });
    expect(await store.transaction((tx) => tx.completeQueueItem('q00001', 'dead'))).toBe(false);
    expect(await store.transaction((tx) => tx.releaseQueueItem('q00001', 'dead', 0))).toBe(false);
    expect(await store.transaction((tx) => tx.completeQueueItem('q00001', 'alive'))).toBe(true);
    expect(await store.queueLength()).toBe(0);
  });

  it('4 concurrent claimers drain 1,000 items, each claimed and completed exactly once', async () => {
    await store.transaction(async (tx) => {
      for (let i = 0; i < 1000; i++) await tx.enqueue(item(i));
    });
    // PostgreSQL: two Store instances (two pools, as two processes would have). SQLite is one process, one store.
    const stores = engine === 'postgres' ? [store, await t.openAnother()] : [store];
    const claims = new Map<string, string[]>();
    const worker = async (name: string, s: Store) => {
      let completed = 0;
      for (;;) {
        const batch = await s.transaction((tx) => tx.claimDue(name, 10, 60_000));
        if (batch.length === 0) return completed;
        for (const c of batch) claims.set(c.id, [...(claims.get(c.id) ?? []), name]);
        await new Promise((r) => setImmediate(r)); // "delivering"
        const done = await s.transaction(async (tx) => {
          let n = 0;
          for (const c of batch) if (await tx.completeQueueItem(c.id, name)) n++;
          return n;
        });
        completed += done;
      }
    };
    const counts = await Promise.all(['w1', 'w2', 'w3', 'w4'].map((w, i) => worker(w, stores[i % stores.length]!)));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(1000);
    expect(claims.size).toBe(1000);
    expect([...claims.values()].filter((owners) => owners.length !== 1)).toEqual([]);
    // The work was shared, not done by one claimer alone.
    expect(counts.filter((n) => n > 0).length).toBeGreaterThan(1);
    expect(await store.queueLength()).toBe(0);
  });
});
