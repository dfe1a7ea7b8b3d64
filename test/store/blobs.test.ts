import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMailbox } from '../../src/accounts/mailboxes.js';
import { aad, Keyring, seal, sealJson } from '../../src/crypto/seal.js';
import { buildMessageMeta } from '../../src/mime/meta.js';
import { BLOB_CHUNK, type BlobBody } from '../../src/store/blobs.js';
import { copyStore, openDumpSource, openDumpTarget, verifyCopy } from '../../src/store/migrate.js';
import { migrations as pgMigrations } from '../../src/store/postgres/migrations.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { SealedMail } from '../../src/store/sealed-mail.js';
import { migrations as sqliteMigrations } from '../../src/store/sqlite/migrations.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { MailboxRow, Store, StoreTx } from '../../src/store/types.js';
import { blobBytes, createTestDatabase, ENGINE_BLOBS, ENGINES, openTestStore, tempDir, type TestStore } from '../helpers/engines.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const MB = 1024 * 1024;

/** Every regular file under `dir` (the blob directory), or none if it does not exist. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? filesUnder(full) : [full];
  });
}

function sample(subject: string, body = 'Bonjour.\r\n'): Buffer {
  return Buffer.from(`From: <a@hopital.test>\r\nTo: <b@hopital.test>\r\nSubject: ${subject}\r\n\r\n${body}`);
}

/** The largest piece a function handing over pieces ever handed over. */
class Largest {
  value = 0;

  async *watch(source: AsyncIterable<Buffer> | Iterable<Buffer>): AsyncIterable<Buffer> {
    for await (const piece of source) {
      this.value = Math.max(this.value, piece.length);
      yield piece;
    }
  }
}

/** A unit of work whose `insertBlob` records the largest piece it is given. */
function watchInserts(tx: StoreTx, largest: Largest): StoreTx {
  return new Proxy(tx, {
    get(target, prop) {
      if (prop === 'insertBlob') {
        return (mailboxId: number, body: BlobBody) =>
          target.insertBlob(mailboxId, Buffer.isBuffer(body) ? body : largest.watch(body));
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** A store whose `readBlob` records the largest piece it hands out. */
function watchReads(store: Store, largest: Largest): Store {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'readBlob') {
        return async (blobId: number) => {
          const pieces = await target.readBlob(blobId);
          return pieces && largest.watch(pieces);
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

describe.each(ENGINE_BLOBS)('streamed blobs (%s, blobs in the %s)', (engine, location) => {
  let t: TestStore;
  let store: Store;
  let keyring: Keyring;
  let mail: SealedMail;
  let mailbox: MailboxRow;
  const blobDir = () => t.blobs.directory!;

  beforeEach(async () => {
    t = await openTestStore(engine, location);
    store = t.store;
    keyring = new Keyring(randomBytes(32));
    mail = new SealedMail(store, keyring);
    mailbox = await createMailbox(store, keyring, { address: 'jean@hopital.test', type: 'PER' });
  });
  afterEach(() => t.dispose());

  const folder = async (name: string) => (await store.getFolder(mailbox.id, name))!;

  it('seals, stores and reads back a 50 MB body with bounded memory, in pieces of bounded size', async () => {
    const size = 50 * MB;
    const head = sample('Gros compte rendu', '');
    const meta = buildMessageMeta(head);
    const written = createHash('sha256');
    let peak = 0;
    const samples: number[] = [];
    gc();
    const base = process.memoryUsage().arrayBuffers;
    // After a full collection, freed ArrayBuffers are released by a concurrent sweeper: give it a moment.
    const measure = async () => {
      gc();
      await new Promise((r) => setTimeout(r, 5));
      gc();
      const live = process.memoryUsage().arrayBuffers - base;
      peak = Math.max(peak, live);
      samples.push(Math.round((live / MB) * 10) / 10);
    };
    async function* body(): AsyncIterable<Buffer> {
      written.update(head);
      yield head;
      for (let sent = 0, i = 0; sent < size; sent += 64 * 1024, i++) {
        const piece = Buffer.alloc(64 * 1024, i & 0xff); // a fresh Buffer each time: retaining them would show
        written.update(piece);
        yield piece;
        if (i % 32 === 0) await measure();
      }
    }
    const given = new Largest();
    const inbox = await folder('INBOX');
    const appended = await store.transaction((tx) => mail.append(watchInserts(tx, given), mailbox, inbox, body(), { meta }));
    const [row] = await store.getMessages(inbox.id, [appended.uid]);
    expect(row!.size).toBe(head.length + size);
    if (location === 'directory') expect(filesUnder(blobDir())).toHaveLength(1);

    const handedOut = new Largest();
    const read = createHash('sha256');
    let total = 0;
    let n = 0;
    for await (const piece of new SealedMail(watchReads(store, handedOut), keyring).openBodyStream(mailbox, row!)) {
      read.update(piece);
      total += piece.length;
      if (n++ % 32 === 0) await measure();
    }
    expect(total).toBe(head.length + size);
    expect(read.digest('hex')).toBe(written.digest('hex'));
    // The port was given sealed segments, and handed out no piece above one chunk row or file read.
    expect(given.value).toBeLessThanOrEqual(64 * 1024 + 16 + 24);
    expect(handedOut.value).toBeLessThanOrEqual(BLOB_CHUNK);
    // What stayed alive at any point is a few pieces, far from the 50 MB of the body.
    expect(peak, `live ArrayBuffer MB above the start, sampled: ${samples.join(' ')}`).toBeLessThan(8 * MB);
  }, 120_000);

  it('refuses a body stream read once already (a unit of work run again), rather than storing it empty', async () => {
    const inbox = await folder('INBOX');
    const raw = sample('Une seule fois');
    const stream = (async function* () {
      yield raw;
    })();
    const work = (tx: StoreTx) => mail.append(tx, mailbox, inbox, stream, { meta: buildMessageMeta(raw) });
    let runs = 0;
    const attempt = store.transaction(async (tx) => {
      runs++;
      await work(tx);
      throw Object.assign(new Error('deadlock detected'), { code: '40P01' }); // as PostgreSQL says it
    });
    if (engine === 'postgres') {
      // The engine runs a deadlock victim again: the second run finds the stream spent.
      await expect(attempt).rejects.toThrow(/already read/);
      expect(runs).toBe(2);
    } else {
      await expect(attempt).rejects.toThrow('deadlock detected');
      await expect(store.transaction(work)).rejects.toThrow(/already read/);
    }
    expect(await store.listMessages(inbox.id)).toEqual([]);
    expect(filesUnder(path.join(t.dir, 'blobs'))).toEqual([]);
  });

  it('a rolled-back unit of work leaves no blob behind (and no file)', async () => {
    const inbox = await folder('INBOX');
    let blobId = 0;
    await expect(
      store.transaction(async (tx) => {
        blobId = await tx.insertBlob(mailbox.id, randomBytes(3 * BLOB_CHUNK + 5));
        await tx.appendMessage(inbox.id, { blobId, sealedMeta: Buffer.from('m'), flags: [], internalDate: 0, size: 1 });
        if (location === 'directory') expect(filesUnder(blobDir())).toHaveLength(1); // durable before the commit
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    expect(await store.readBlob(blobId)).toBeNull();
    expect(filesUnder(path.join(t.dir, 'blobs'))).toEqual([]);
  });

  it('keeps a copied body until its last message is expunged, then removes it (and its file)', async () => {
    const inbox = await folder('INBOX');
    const trash = await folder('Trash');
    const raw = sample('Copie', 'x'.repeat(300_000));
    await store.transaction((tx) => mail.append(tx, mailbox, inbox, raw));
    await store.transaction((tx) => tx.copyMessages(inbox.id, [1], trash.id));
    const [original] = await store.getMessages(inbox.id, [1]);
    const files = filesUnder(blobDir());
    expect(files).toHaveLength(location === 'directory' ? 1 : 0);
    await store.transaction((tx) => tx.expunge(inbox.id, [1]));
    expect((await mail.openBody(mailbox, original!)).equals(raw)).toBe(true);
    expect(filesUnder(blobDir())).toEqual(files);
    await store.transaction((tx) => tx.expunge(trash.id, [1]));
    expect(await store.readBlob(original!.blobId)).toBeNull();
    expect(filesUnder(blobDir())).toEqual([]);
    await expect(mail.openBody(mailbox, original!)).rejects.toThrow(/missing/);
  });

  it('the sweep removes blobs no message refers to, stray files past the grace period, and nothing else', async () => {
    const inbox = await folder('INBOX');
    const kept = await store.transaction((tx) => mail.append(tx, mailbox, inbox, sample('Gardé')));
    const orphan = await store.transaction((tx) => tx.insertBlob(mailbox.id, randomBytes(1000)));
    // Files no row names: one left by a crash long ago, a temporary file of an interrupted write, a fresh one
    // (a unit of work may be about to commit the row that names it).
    const stray = (name: string, ageMs: number) => {
      const dir = path.join(blobDir(), name.slice(0, 2));
      mkdirSync(dir, { recursive: true });
      const file = path.join(dir, name);
      writeFileSync(file, randomBytes(100));
      const when = new Date(Date.now() - ageMs);
      utimesSync(file, when, when);
      return file;
    };
    const old = stray(randomBytes(16).toString('hex'), 2 * 3600_000);
    const temp = stray(`${randomBytes(16).toString('hex')}.tmp`, 2 * 3600_000);
    const fresh = stray(randomBytes(16).toString('hex'), 0);

    const swept = await store.sweepBlobs();
    expect(swept).toEqual({ rows: 1, files: 2 });
    expect(await store.readBlob(orphan)).toBeNull();
    expect(existsSync(old) || existsSync(temp)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
    const [row] = await store.getMessages(inbox.id, [kept.uid]);
    expect((await mail.openBody(mailbox, row!)).toString()).toContain('Gardé');
    expect(filesUnder(blobDir())).toHaveLength(location === 'directory' ? 2 : 1); // the message's, and the fresh stray
    expect(await store.sweepBlobs({ graceMs: 0 })).toEqual({ rows: 0, files: 1 });
    expect((await mail.openBody(mailbox, row!)).toString()).toContain('Gardé');
  });

  it('reads blobs wherever their row says they are, whatever the location configured now', async () => {
    const inbox = await folder('INBOX');
    const first = sample('Avant', 'a'.repeat(700_000));
    await store.transaction((tx) => mail.append(tx, mailbox, inbox, first));
    // Reopen with the other location: the first body stays where it was, the second goes to the new place.
    const other = location === 'database' ? 'directory' : 'database';
    await store.close();
    store =
      engine === 'sqlite'
        ? await openSqliteStore(path.join(t.dir, 'mss.sqlite'), { blobs: { ...t.blobs, location: other } })
        : await openPostgresStore(t.url!, { blobs: { ...t.blobs, location: other } });
    t.store = store;
    mail = new SealedMail(store, keyring);
    const second = sample('Après', 'b'.repeat(10));
    await store.transaction((tx) => mail.append(tx, mailbox, inbox, second));
    const rows = await store.getMessages(inbox.id, [1, 2]);
    expect((await mail.openBody(mailbox, rows[0]!)).equals(first)).toBe(true);
    expect((await mail.openBody(mailbox, rows[1]!)).equals(second)).toBe(true);
    expect(filesUnder(blobDir())).toHaveLength(1);
  });
});

describe.each(ENGINES)('blobs written before streaming (%s)', (engine) => {
  it('migration 4 cuts whole values into chunk rows, and bodies sealed whole (format 1) still open', async () => {
    const keyring = new Keyring(randomBytes(32));
    const address = 'ancien@hopital.test';
    const { key, wrapped } = keyring.newMailboxKey(address);
    const small = sample('Ancien', 'petit');
    const large = sample('Ancien et gros', 'z'.repeat(700_000)); // three chunks of 256 KiB once cut
    const tmp = tempDir('mss-v1-');
    const db = engine === 'postgres' ? await createTestDatabase() : null;
    let store: Store | null = null;
    try {
      // A database as version 3 left it: bodies whole in blobs.data, sealed with format 1.
      const rows = async (run: (sql: string, params: unknown[]) => Promise<unknown>) => {
        await run(`INSERT INTO mailboxes (address, type, state, wrapped_key, created_at) VALUES ('${address}', 'PER', 'active', $1, 0)`, [wrapped]);
        await run(`INSERT INTO folders (mailbox_id, name, uid_validity, uid_next, highest_modseq) VALUES (1, 'INBOX', 1, 3, 3)`, []);
        for (const [i, raw] of [small, large].entries()) {
          await run('INSERT INTO blobs (mailbox_id, data) VALUES (1, $1)', [seal(key, raw, aad.blob(1))]);
          await run(`INSERT INTO messages (mailbox_id, folder_id, uid, modseq, internal_date, size, blob_id, meta) VALUES (1, 1, ${i + 1}, ${i + 2}, 0, ${raw.length}, ${i + 1}, $1)`, [
            sealJson(key, buildMessageMeta(raw), aad.messageMeta(1)),
          ]);
        }
      };
      if (db) {
        const client = new pg.Client({ connectionString: db.url });
        await client.connect();
        try {
          await client.query('CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at BIGINT NOT NULL)');
          for (const m of pgMigrations.filter((m) => m.version <= 3)) {
            await client.query(m.sql);
            await client.query('INSERT INTO schema_version VALUES ($1, 0)', [m.version]);
          }
          await rows((sql, params) => client.query(sql, params));
        } finally {
          await client.end();
        }
        store = await openPostgresStore(db.url);
      } else {
        const file = path.join(tmp.dir, 'mss.sqlite');
        const raw = new Database(file);
        raw.exec('CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at INTEGER NOT NULL)');
        for (const m of sqliteMigrations.filter((m) => m.version <= 3)) {
          raw.exec(m.sql);
          raw.prepare('INSERT INTO schema_version VALUES (?, 0)').run(m.version);
        }
        await rows(async (sql, params) => raw.prepare(sql.replace(/\$1/g, '?')).run(...params));
        raw.close();
        store = await openSqliteStore(file);
      }
      expect(await store.migrate()).toBeGreaterThanOrEqual(4);
      const mailbox = (await store.getMailbox(address))!;
      const mail = new SealedMail(store, keyring);
      const inbox = (await store.getFolder(mailbox.id, 'INBOX'))!;
      const [one, two] = await store.getMessages(inbox.id, [1, 2]);
      expect((await mail.openBody(mailbox, one!)).equals(small)).toBe(true);
      expect((await mail.openBody(mailbox, two!)).equals(large)).toBe(true);
      const pieces: number[] = [];
      for await (const piece of (await store.readBlob(two!.blobId))!) pieces.push(piece.length);
      expect(pieces).toEqual([BLOB_CHUNK, BLOB_CHUNK, seal(key, large, 'x').length - 2 * BLOB_CHUNK]);
      expect(mail.openMeta(mailbox, two!).envelope.subject).toBe('Ancien et gros');
    } finally {
      await store?.close();
      await db?.drop();
      tmp.dispose();
    }
  });
});

describe('streamed blobs, two processes on one PostgreSQL database with a shared blob directory', () => {
  let t: TestStore;
  let second: Store;
  let keyring: Keyring;
  let mailbox: MailboxRow;

  beforeEach(async () => {
    t = await openTestStore('postgres', 'directory');
    second = await t.openAnother();
    keyring = new Keyring(randomBytes(32));
    mailbox = await createMailbox(t.store, keyring, { address: 'jean@hopital.test', type: 'PER' });
  });
  afterEach(() => t.dispose());

  it('a body written by one is read by the other, and the last expunge by either removes the file', async () => {
    const [a, b] = [new SealedMail(t.store, keyring), new SealedMail(second, keyring)];
    const inbox = (await t.store.getFolder(mailbox.id, 'INBOX'))!;
    const raw = sample('Partagé', 'p'.repeat(BLOB_CHUNK * 2));
    await t.store.transaction((tx) => a.append(tx, mailbox, inbox, raw));
    const [row] = await second.getMessages(inbox.id, [1]);
    expect((await b.openBody(mailbox, row!)).equals(raw)).toBe(true);
    expect(filesUnder(t.blobs.directory!)).toHaveLength(1);
    await second.transaction((tx) => tx.expunge(inbox.id, [1]));
    expect(filesUnder(t.blobs.directory!)).toEqual([]);
    expect(await t.store.readBlob(row!.blobId)).toBeNull();
  });

  it('two concurrent expunges of the last two copies, one per process, leave neither row nor file', async () => {
    const mail = new SealedMail(t.store, keyring);
    const inbox = (await t.store.getFolder(mailbox.id, 'INBOX'))!;
    const archive = await t.store.transaction((tx) => tx.insertFolder({ mailboxId: mailbox.id, name: 'Archive', specialUse: null, subscribed: true }));
    for (let round = 1; round <= 8; round++) {
      const appended = await t.store.transaction((tx) => mail.append(tx, mailbox, inbox, sample(`Tour ${round}`)));
      const copied = await t.store.transaction((tx) => tx.copyMessages(inbox.id, [appended.uid], archive.id));
      const [row] = await t.store.getMessages(inbox.id, [appended.uid]);
      await Promise.all([
        t.store.transaction((tx) => tx.expunge(inbox.id, [appended.uid])),
        second.transaction((tx) => tx.expunge(archive.id, [copied.copies[0]!.uid])),
      ]);
      expect(await blobBytes(t.store, row!.blobId)).toBeNull();
      expect(filesUnder(t.blobs.directory!)).toEqual([]);
    }
    expect(await t.store.sweepBlobs({ graceMs: 0 })).toEqual({ rows: 0, files: 0 });
  });
});

describe('mss store migrate with streamed blobs (sqlite → postgres, in process)', () => {
  it('copies chunk rows batch by batch and blob files by reference, verifies, and every body opens on the target', async () => {
    const tmp = tempDir('mss-blob-migrate-');
    const db = await createTestDatabase();
    const file = path.join(tmp.dir, 'mss.sqlite');
    const directory = path.join(tmp.dir, 'blobs');
    const keyring = new Keyring(randomBytes(32));
    const bodies = [sample('En base', 'd'.repeat(3 * MB)), sample('En fichier', 'f'.repeat(MB))];
    try {
      let sqlite = await openSqliteStore(file, { blobs: { location: 'database', directory } });
      const mailbox = await createMailbox(sqlite, keyring, { address: 'jean@hopital.test', type: 'PER' });
      const inbox = (await sqlite.getFolder(mailbox.id, 'INBOX'))!;
      await sqlite.transaction((tx) => new SealedMail(sqlite, keyring).append(tx, mailbox, inbox, bodies[0]!));
      await sqlite.close();
      sqlite = await openSqliteStore(file, { blobs: { location: 'directory', directory } });
      await sqlite.transaction((tx) => new SealedMail(sqlite, keyring).append(tx, mailbox, inbox, bodies[1]!));
      await sqlite.close();

      const source = await openDumpSource({ engine: 'sqlite', path: file });
      const target = await openDumpTarget({ engine: 'postgres', url: db.url });
      let largestBatch = 0;
      const exportRows = source.exportRows.bind(source);
      source.exportRows = async (table, after, limit) => {
        const rows = await exportRows(table, after, limit);
        if (table === 'blob_chunks') {
          largestBatch = Math.max(largestBatch, rows.reduce((n, r) => n + (r as { data: Buffer }).data.length, 0));
        }
        return rows;
      };
      try {
        const counts = await copyStore(source, target);
        expect(counts.blobs).toBe(2);
        expect(counts.blob_chunks).toBe(Math.ceil((bodies[0]!.length + 24 + 16 * Math.ceil(bodies[0]!.length / 65536)) / BLOB_CHUNK));
        expect(await verifyCopy(source, target)).toMatchObject({ ok: true });
        expect(largestBatch).toBeLessThanOrEqual(10 * BLOB_CHUNK);
      } finally {
        await Promise.all([source.close(), target.close()]);
      }

      const copy = await openPostgresStore(db.url, { blobs: { location: 'directory', directory } });
      try {
        const mail = new SealedMail(copy, keyring);
        const box = (await copy.getMailbox('jean@hopital.test'))!;
        const rows = await copy.getMessages((await copy.getFolder(box.id, 'INBOX'))!.id, [1, 2]);
        expect((await mail.openBody(box, rows[0]!)).equals(bodies[0]!)).toBe(true);
        expect((await mail.openBody(box, rows[1]!)).equals(bodies[1]!)).toBe(true);
      } finally {
        await copy.close();
      }
    } finally {
      await db.drop();
      tmp.dispose();
    }
  }, 60_000);
});
