import { open } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite/index.js';
import { WalSync } from '../../src/store/sqlite/wal-sync.js';
import { tempDir } from '../helpers/engines.js';

/** fdatasync calls held until the test lets them finish (or fail), in call order. */
async function holdDatasync() {
  const probe = await open(import.meta.filename, 'r');
  const proto = Object.getPrototypeOf(probe) as { datasync(): Promise<void> };
  await probe.close();
  const calls: { finish(): void; fail(err: Error): void }[] = [];
  const spy = vi.spyOn(proto, 'datasync').mockImplementation(
    () =>
      new Promise<void>((resolve, reject) => {
        calls.push({ finish: resolve, fail: reject });
      }),
  );
  return { calls, restore: () => spy.mockRestore() };
}

const settled = async <T>(p: Promise<T>) => {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 2));
  return done;
};

describe('WalSync', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => (tmp = tempDir('mss-wal-sync-')));
  afterEach(() => {
    vi.restoreAllMocks();
    tmp.dispose();
  });

  it('resolves a commit only after an fdatasync begun after it, and one fdatasync covers the commits before it began', async () => {
    const file = path.join(tmp.dir, 'mss.sqlite');
    writeFileSync(`${file}-wal`, 'frames');
    const held = await holdDatasync();
    const sync = new WalSync(file);

    const first = sync.durable(sync.committed());
    expect(await settled(first)).toBe(false);
    expect(held.calls).toHaveLength(1);
    // Committed while the first fdatasync runs: it may not count on that one.
    const second = sync.durable(sync.committed());
    const third = sync.durable(sync.committed());
    held.calls[0]!.finish();
    expect(await settled(first)).toBe(true);
    expect(await settled(second)).toBe(false);
    expect(held.calls).toHaveLength(2);
    held.calls[1]!.finish();
    expect(await settled(second)).toBe(true);
    expect(await settled(third)).toBe(true);
    expect(held.calls).toHaveLength(2);
    await sync.close();
  });

  it('rejects the commits a failed fdatasync was to cover, and tries again for the next', async () => {
    const file = path.join(tmp.dir, 'mss.sqlite');
    writeFileSync(`${file}-wal`, 'frames');
    const held = await holdDatasync();
    const sync = new WalSync(file);
    const lost = sync.durable(sync.committed());
    await settled(lost);
    held.calls[0]!.fail(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    await expect(lost).rejects.toThrow(/EIO/);
    const next = sync.durable(sync.committed());
    await settled(next);
    expect(held.calls).toHaveLength(2);
    held.calls[1]!.finish();
    await expect(next).resolves.toBeUndefined();
    await sync.close();
  });
});

describe('SQLite units of work and the WAL fdatasync', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => (tmp = tempDir('mss-wal-store-')));
  let store: SqliteStore | null = null;
  afterEach(async () => {
    vi.restoreAllMocks();
    await store?.close();
    store = null;
    tmp.dispose();
  });

  it('resolves a unit of work once its commit is synced, and lets the next one commit meanwhile', async () => {
    store = (await openSqliteStore(path.join(tmp.dir, 'mss.sqlite'))) as SqliteStore;
    const held = await holdDatasync();
    const first = store.transaction((tx) => tx.recordAuthFailure('imap:192.0.2.1', Date.now(), 5, 60_000));
    expect(await settled(first)).toBe(false);
    expect(held.calls).toHaveLength(1);
    // The writer is free while the first waits for the disk: a second unit commits, and waits for the next sync.
    const second = store.transaction((tx) => tx.recordAuthFailure('imap:192.0.2.2', Date.now(), 5, 60_000));
    expect(await settled(second)).toBe(false);
    held.calls[0]!.finish();
    expect(await settled(first)).toBe(true);
    expect(await settled(second)).toBe(false);
    held.calls[1]!.finish();
    expect(await settled(second)).toBe(true);
    held.restore();
    expect((await store.getAuthFailures('imap:192.0.2.2')).failures).toBe(1);
  });
});
