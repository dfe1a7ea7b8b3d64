import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Keyring } from '../../src/crypto/seal.js';
import { RelayPipeline } from '../../src/pipeline/relay.js';
import { RelayServer } from '../../src/smtp/relay.js';
import { relayConfigSchema } from '../../src/smtp/relay-config.js';
import { LocalNotifier } from '../../src/store/notifier.js';
import { SealedMail } from '../../src/store/sealed-mail.js';
import type { Store } from '../../src/store/types.js';
import { ENGINES, openTestStore, type TestStore } from '../helpers/engines.js';

const DAY = 86_400_000;

/** The relay's accepted idempotency keys (migration 11) on every engine: once per peer domain, in the unit of work, pruned by age. */
describe.each(ENGINES)('relay idempotency keys (%s)', (engine) => {
  let t: TestStore;
  let store: Store;

  beforeEach(async () => {
    t = await openTestStore(engine);
    store = t.store;
  });
  afterEach(() => t.dispose());

  const record = (domain: string, key: string, at = Date.now()) => store.transaction((tx) => tx.recordRelayKey(domain, key, at));

  it('records a key once per peer domain, and only when its unit of work commits', async () => {
    expect(await store.relayKeyAccepted('a.test', 'k1')).toBe(false);
    expect(await record('a.test', 'k1')).toBe(true);
    expect(await store.relayKeyAccepted('a.test', 'k1')).toBe(true);
    expect(await record('a.test', 'k1')).toBe(false);
    // Another operator's key space: the same value is another key.
    expect(await record('b.test', 'k1')).toBe(true);

    await expect(
      store.transaction(async (tx) => {
        expect(await tx.recordRelayKey('a.test', 'k2', Date.now())).toBe(true);
        throw new Error('delivery failed');
      }),
    ).rejects.toThrow('delivery failed');
    expect(await store.relayKeyAccepted('a.test', 'k2')).toBe(false);
    expect(await record('a.test', 'k2')).toBe(true);
  });

  it('lets one of two concurrent deliveries of a key record it: the other finds it once the first commits, or takes it when it rolls back', async () => {
    for (const firstCommits of [true, false]) {
      const key = `race-${firstCommits}`;
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let recorded!: () => void;
      const inserted = new Promise<void>((r) => (recorded = r));
      const first = store.transaction(async (tx) => {
        const ok = await tx.recordRelayKey('a.test', key, Date.now());
        recorded();
        await gate;
        if (!firstCommits) throw new Error('rolled back');
        return ok;
      });
      await inserted;
      // Waits for the first unit of work (SQLite: the writer lock; PostgreSQL: the key's row lock).
      const second = store.transaction((tx) => tx.recordRelayKey('a.test', key, Date.now()));
      release();
      if (firstCommits) {
        expect(await first).toBe(true);
        expect(await second).toBe(false);
      } else {
        await expect(first).rejects.toThrow('rolled back');
        expect(await second).toBe(true);
      }
    }
  });

  it('forgets keys past the retention (relay.idempotencyRetentionDays), in batches, and keeps the others', async () => {
    const now = Date.UTC(2026, 10, 25);
    for (let i = 0; i < 25; i++) await record('a.test', `old-${i}`, now - 11 * DAY);
    await record('a.test', 'recent', now - 9 * DAY);
    const keyring = new Keyring(randomBytes(32));
    const log = pino({ level: 'silent' });
    const pipeline = new RelayPipeline({
      mail: new SealedMail(store, keyring),
      notifier: new LocalNotifier(),
      hostname: 'localhost',
      localDomains: [],
      limits: { maxMessageSize: 1024, maxRecipients: 1 },
      log,
      requireProtection: true,
      reporter: { report: async () => undefined },
    });
    expect(await pipeline.pruneKeys(now - 10 * DAY, 10)).toBe(25);
    expect(await store.relayKeyAccepted('a.test', 'old-0')).toBe(false);
    expect(await store.relayKeyAccepted('a.test', 'recent')).toBe(true);

    // The server prunes with the configured retention (default 10 days).
    const config = relayConfigSchema.parse({});
    expect(config.idempotencyRetentionDays).toBe(10);
    const server = new RelayServer({
      config,
      hostname: 'localhost',
      tls: { key: '', cert: '' },
      trust: { anchors: async () => [], checkPeer: async () => ({ ok: false, reason: 'no-trust-list', expected: [], presented: null }) },
      revocation: null,
      pipeline: { report: async () => undefined },
      relay: pipeline,
      log,
    });
    expect(await server.pruneKeys(now)).toBe(0);
    expect(await server.pruneKeys(now + 2 * DAY)).toBe(1);
    expect(await store.relayKeyAccepted('a.test', 'recent')).toBe(false);
  });
});
