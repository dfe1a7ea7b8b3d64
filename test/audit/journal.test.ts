import Database from 'better-sqlite3';
import path from 'node:path';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendAudit, audit, verifyJournal } from '../../src/audit/journal.js';
import type { Store } from '../../src/store/types.js';
import { ENGINES, openTestStore, type TestStore } from '../helpers/engines.js';

describe.each(ENGINES)('audit journal (%s)', (engine) => {
  let t: TestStore;
  let store: Store;
  beforeEach(async () => {
    t = await openTestStore(engine);
    store = t.store;
  });
  afterEach(() => t.dispose());

  async function fill(n: number) {
    for (let i = 0; i < n; i++) {
      await audit(store, { actor: `a${i}@h.test`, action: 'login', object: `a${i}@h.test`, outcome: 'ok', detail: { remote: '127.0.0.1', n: i } });
    }
    // A read through the store links what PostgreSQL staged, so raw SQL below sees every record.
    await store.readAudit(0, 1);
  }

  it('chains records and verifies an empty and a full journal', async () => {
    expect(await verifyJournal(store)).toEqual({ ok: true, records: 0 });
    await fill(25);
    expect(await verifyJournal(store, 7)).toEqual({ ok: true, records: 25 });
    const rows = await store.readAudit(0, 100);
    expect(rows[1]!.prevHash).toBe(rows[0]!.hash);
  });

  it('keeps one chain under concurrent writers', async () => {
    await Promise.all(Array.from({ length: 30 }, (_, i) => audit(store, { actor: 'x', action: 'login', object: String(i), outcome: 'ok' })));
    expect(await verifyJournal(store)).toEqual({ ok: true, records: 30 });
  });

  it.runIf(engine === 'postgres')('keeps one chain with concurrent writers on two Store instances of one database', async () => {
    const second = await t.openAnother();
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => audit(i % 2 === 0 ? store : second, { actor: 'x', action: 'login', object: String(i), outcome: 'ok' })),
    );
    expect(await verifyJournal(second)).toEqual({ ok: true, records: 40 });
  });

  it('a record rolls back with the unit of work it belongs to', async () => {
    await fill(2);
    await expect(
      store.transaction(async (tx) => {
        await appendAudit(tx, { actor: 'x', action: 'deliver', object: 'y', outcome: 'ok' });
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    expect(await verifyJournal(store)).toEqual({ ok: true, records: 2 });
  });

  if (engine === 'sqlite') {
    it('refuses UPDATE and DELETE through SQL, and detects a record altered behind its back', async () => {
      await fill(5);
      const file = path.join(t.dir, 'mss.sqlite');
      const db = new Database(file);
      expect(() => db.prepare("UPDATE audit SET outcome = 'forged' WHERE seq = 3").run()).toThrow(/append-only/);
      expect(() => db.prepare('DELETE FROM audit WHERE seq = 3').run()).toThrow(/append-only/);
      db.exec('DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete');
      db.prepare("UPDATE audit SET outcome = 'forged' WHERE seq = 3").run();
      expect(await verifyJournal(store)).toMatchObject({ ok: false, brokenSeq: 3, records: 2 });
      db.prepare("UPDATE audit SET outcome = 'ok' WHERE seq = 3").run();
      expect(await verifyJournal(store)).toEqual({ ok: true, records: 5 });
      db.prepare('DELETE FROM audit WHERE seq = 2').run();
      expect(await verifyJournal(store)).toMatchObject({ ok: false, brokenSeq: 3 });
      db.close();
    });
  }

  if (engine === 'postgres') {
    it('links records a stopped process staged but never linked: on the next read, and by the sweep without one', async () => {
      await fill(3);
      const db = new pg.Client({ connectionString: t.url });
      await db.connect();
      try {
        // Committed with their unit of work, then the process died before linking them.
        const stage = (object: string) =>
          db.query(`INSERT INTO audit_pending (time, actor, action, object, outcome, detail) VALUES ($1, 'x', 'deliver', $2, 'ok', '{}')`, [
            new Date().toISOString(),
            object,
          ]);
        await stage('first');
        await stage('second');
        const rows = await store.readAudit(0, 100);
        expect(rows.map((r) => r.object).slice(3)).toEqual(['first', 'second']);
        expect(await verifyJournal(store)).toEqual({ ok: true, records: 5 });

        await stage('third');
        await expect.poll(async () => (await db.query('SELECT count(*)::int AS n FROM audit')).rows[0].n, { timeout: 10_000, interval: 200 }).toBe(6);
        expect((await db.query('SELECT count(*)::int AS n FROM audit_pending')).rows[0].n).toBe(0);
      } finally {
        await db.end();
      }
    });

    it("keeps each unit of work's records together and in order when several stage at once", async () => {
      const second = await t.openAnother();
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 ? store : second).transaction((tx) =>
            appendAudit(tx, [0, 1, 2].map((k) => ({ actor: `w${i}`, action: 'deliver' as const, object: `${i}.${k}`, outcome: 'ok' }))),
          ),
        ),
      );
      const rows = await second.readAudit(0, 100);
      expect(rows).toHaveLength(60);
      for (let i = 0; i < 20; i++) {
        expect(rows.filter((r) => r.actor === `w${i}`).map((r) => r.object)).toEqual([`${i}.0`, `${i}.1`, `${i}.2`]);
      }
      expect(await verifyJournal(store)).toEqual({ ok: true, records: 60 });
    });

    it('refuses UPDATE, DELETE and TRUNCATE through SQL, and detects a record altered behind its back', async () => {
      await fill(5);
      // A superuser connection, as an intruder with database access would have.
      const db = new pg.Client({ connectionString: t.url });
      await db.connect();
      try {
        await expect(db.query("UPDATE audit SET outcome = 'forged' WHERE seq = 3")).rejects.toThrow(/append-only/);
        await expect(db.query('DELETE FROM audit WHERE seq = 3')).rejects.toThrow(/append-only/);
        await expect(db.query('TRUNCATE audit')).rejects.toThrow(/append-only/);
        await db.query('ALTER TABLE audit DISABLE TRIGGER audit_no_update');
        await db.query('ALTER TABLE audit DISABLE TRIGGER audit_no_delete');
        await db.query("UPDATE audit SET outcome = 'forged' WHERE seq = 3");
        expect(await verifyJournal(store)).toMatchObject({ ok: false, brokenSeq: 3, records: 2 });
        await db.query("UPDATE audit SET outcome = 'ok' WHERE seq = 3");
        expect(await verifyJournal(store)).toEqual({ ok: true, records: 5 });
        await db.query('DELETE FROM audit WHERE seq = 2');
        expect(await verifyJournal(store)).toMatchObject({ ok: false, brokenSeq: 3 });
      } finally {
        await db.end();
      }
    });
  }
});
