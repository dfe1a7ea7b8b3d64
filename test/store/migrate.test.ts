import { execFile } from 'node:child_process';
import { randomBytes, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqlitePath } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { Keystore } from '../../src/crypto/keystore.js';
import { openKeyring } from '../../src/init.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { openStore } from '../../src/store/open.js';
import { copyStore, openDumpSource, openDumpTarget, parseStoreLocation, verifyCopy } from '../../src/store/migrate.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { createTestDatabase, tempDir } from '../helpers/engines.js';
import { DEMO, passwordOf, startOperator, type TestOperator } from '../helpers/operator.js';

const repo = path.resolve(__dirname, '../..');
const cli = path.join(repo, 'dist/src/cli.js');

/** The built CLI, run asynchronously (a server runs in this process). */
function mss(cwd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { cwd, encoding: 'utf8' }, (error, out, err) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out, err });
    });
  });
}

function client(port: number, user: string, pass: string): ImapFlow {
  return new ImapFlow({ host: '127.0.0.1', port, secure: true, tls: { rejectUnauthorized: false }, auth: { user, pass }, logger: false, disableAutoIdle: true });
}

function message(subject: string, body: string): Buffer {
  return Buffer.from(
    [`From: Dr Jean Dupont <${DEMO.jean}>`, `To: <${DEMO.claire}>`, `Subject: ${subject}`, `Message-ID: <${randomBytes(6).toString('hex')}@hopital-demo.mssante.test>`, 'Date: Mon, 05 Jan 2026 10:00:00 +0100', 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', '', body, ''].join('\r\n'),
  );
}

interface FolderView {
  path: string;
  uidValidity: string;
  uidNext: number;
  messages: { uid: number; flags: string[]; internalDate: string; size: number; source: string }[];
}

/** Everything an IMAP client sees of a mailbox: folders, UIDVALIDITY, UIDNEXT, UIDs, flags, dates and bytes. */
async function view(port: number, user: string, pass: string): Promise<FolderView[]> {
  const c = client(port, user, pass);
  await c.connect();
  try {
    const out: FolderView[] = [];
    for (const folder of (await c.list()).sort((a, b) => (a.path < b.path ? -1 : 1))) {
      const box = await c.mailboxOpen(folder.path, { readOnly: true });
      const messages: FolderView['messages'] = [];
      if (box.exists > 0) {
        for await (const m of c.fetch('1:*', { uid: true, flags: true, internalDate: true, size: true, source: true })) {
          messages.push({
            uid: m.uid,
            flags: [...(m.flags ?? [])].sort(),
            internalDate: new Date(m.internalDate!).toISOString(),
            size: m.size!,
            source: m.source!.toString('base64'),
          });
        }
      }
      out.push({ path: folder.path, uidValidity: String(box.uidValidity), uidNext: box.uidNext, messages: messages.sort((a, b) => a.uid - b.uid) });
    }
    return out;
  } finally {
    await c.logout().catch(() => c.close());
  }
}

describe('mss store migrate (sqlite → postgres, built CLI)', () => {
  let op: TestOperator;
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let pgServer: RunningServer | null = null;
  let before: Map<string, FolderView[]>;
  let sourceAuditRecords: number;
  const users = [DEMO.jean, DEMO.claire];

  beforeAll(async () => {
    op = await startOperator();
    db = await createTestDatabase();

    // Populate through the real server: appends with flags and dates, a flag change, an expunge (a UID gap),
    // a new folder and a copy into it, a failed login (auth failure + audit).
    const jean = client(op.ports.imaps, DEMO.jean, passwordOf(op, DEMO.jean));
    await jean.connect();
    for (let i = 1; i <= 4; i++) {
      await jean.append('INBOX', message(`Compte rendu ${i}`, `Résultat ${i}\r\n${'x'.repeat(i * 300)}`), i === 1 ? ['\\Flagged'] : [], new Date(Date.UTC(2026, 0, i, 8, 30)));
    }
    await jean.mailboxOpen('INBOX');
    await jean.messageFlagsAdd('2', ['\\Seen', '$Urgent'], { uid: true });
    await jean.messageDelete('3', { uid: true });
    await jean.mailboxCreate('Dossiers/Cardio');
    await jean.messageCopy('1,4', 'Dossiers/Cardio', { uid: true });
    await jean.logout();
    const claire = client(op.ports.imaps, DEMO.claire, passwordOf(op, DEMO.claire));
    await claire.connect();
    await claire.append('Sent', message('Envoyé', 'Bonjour'), ['\\Seen'], new Date(Date.UTC(2026, 1, 3)));
    await claire.logout();
    const intruder = client(op.ports.imaps, DEMO.claire, 'not the password');
    await expect(intruder.connect()).rejects.toThrow();

    before = new Map();
    for (const user of users) before.set(user, await view(op.ports.imaps, user, passwordOf(op, user)));
    await op.stop();

    // One outbound item, sealed bytes the store never opens.
    const store = await openSqliteStore(sqlitePath(op.config));
    await store.transaction((tx) =>
      tx.enqueue({ id: 'q-1', destination: 'autre-operateur.test', sealedEnvelope: randomBytes(40), sealedMessage: randomBytes(300), nextAttemptAt: Date.now() }),
    );
    await store.close();

    const verified = await mss(op.dir, ['audit', 'verify']);
    sourceAuditRecords = Number(/^ok (\d+) records$/m.exec(verified.out)![1]);
    writeFileSync(path.join(op.dir, 'config-pg.json'), JSON.stringify({ dataDir: 'data', certsDir: 'certs', store: { engine: 'postgres', url: db.url } }));
  }, 120_000);

  afterAll(async () => {
    await pgServer?.close();
    await op?.dispose();
    await db?.drop();
  });

  it('refuses a bad --from/--to and a missing source, writing nothing', async () => {
    const bad = await mss(op.dir, ['store', 'migrate', '--from', 'mysql:/x', '--to', `postgres:${db.url}`]);
    expect(bad).toMatchObject({ code: 2, err: expect.stringMatching(/expected sqlite:<path> or postgres:<url>/) });
    const swapped = await mss(op.dir, ['store', 'migrate', '--from', `postgres:${db.url}`, '--to', `postgres:${db.url}`]);
    expect(swapped).toMatchObject({ code: 2, err: expect.stringMatching(/the source must be sqlite:<path>/) });
    const missing = await mss(op.dir, ['store', 'migrate', '--from', 'sqlite:data/nothing.sqlite', '--to', `postgres:${db.url}`]);
    expect(missing).toMatchObject({ code: 2, err: expect.stringMatching(/no SQLite database at .*nothing\.sqlite/) });
    expect(parseStoreLocation('postgres://u@h/db')).toEqual({ engine: 'postgres', url: 'postgres://u@h/db' });
  });

  it('copies the operator and verifies it; the audit chain verifies with the same count; a client sees identical folders, UIDs, flags and bytes', async () => {
    const run = await mss(op.dir, ['store', 'migrate', '--from', 'sqlite:data/mss.sqlite', '--to', `postgres:${db.url}`]);
    expect(run.err).not.toMatch(/mss:/);
    expect(run.code).toBe(0);
    const summary = /^migrated (\d+) mailboxes, (\d+) folders, (\d+) messages, (\d+) blobs, (\d+) audit records; verified$/m.exec(run.out);
    expect(summary, run.out).not.toBeNull();
    expect(Number(summary![1])).toBe(4);
    expect(Number(summary![3])).toBe(3 + 2 + 1); // INBOX 1,2,4; Cardio copies of 1,4; Claire's Sent
    expect(Number(summary![4])).toBe(4); // copies share their blob
    expect(Number(summary![5])).toBe(sourceAuditRecords);
    expect(run.out).toMatch(/same dataDir/);
    expect(run.err).toMatch(/copying: 100%/); // stderr is a pipe: periodic lines, no bar

    const verify = await mss(op.dir, ['audit', 'verify', '--config', 'config-pg.json']);
    expect(verify).toMatchObject({ code: 0, out: `ok ${sourceAuditRecords} records\n` });

    const config: Config = { ...op.config, store: { ...op.config.store, engine: 'postgres', url: db.url } };
    // The keystore came along, and its sealed private keys open with the same master key.
    const copied = await openStore(config);
    try {
      const keystore = new Keystore({ store: copied, keyring: openKeyring(config) });
      expect((await keystore.list()).length).toBeGreaterThanOrEqual(6);
      const sign = await keystore.credentialsFor(DEMO.jean, 'sign');
      const signature = cryptoSign('sha256', Buffer.from('migré'), sign.key);
      expect(cryptoVerify('sha256', Buffer.from('migré'), sign.certificate.publicKey, signature)).toBe(true);
    } finally {
      await copied.close();
    }
    pgServer = await startServer(config, pino({ level: 'silent' }));
    const imaps = pgServer.listeners.find((l) => l.protocol === 'imap (TLS)')!.port;
    for (const user of users) {
      const after = await view(imaps, user, passwordOf(op, user));
      expect(after).toEqual(before.get(user));
    }
    const inbox = before.get(DEMO.jean)!.find((f) => f.path === 'INBOX')!;
    expect(inbox.messages.map((m) => m.uid)).toEqual([1, 2, 4]);
    expect(inbox.messages[1]!.flags).toEqual(['$Urgent', '\\Seen']);

    // New rows get fresh ids on the target (sequences moved past the imported ids).
    const jean = client(imaps, DEMO.jean, passwordOf(op, DEMO.jean));
    await jean.connect();
    const appended = await jean.append('INBOX', message('Après migration', 'ok'), [], new Date());
    expect(appended && appended.uid).toBe(5);
    await jean.mailboxCreate('Nouveau');
    await jean.logout();
    await pgServer.close();
    pgServer = null;
  }, 120_000);

  it('refuses to migrate again onto the populated target, changing nothing', async () => {
    const count = async () => {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      try {
        const r = await c.query<{ m: string; a: string; f: string }>('SELECT (SELECT count(*) FROM messages) AS m, (SELECT count(*) FROM audit) AS a, (SELECT count(*) FROM folders) AS f');
        return r.rows[0];
      } finally {
        await c.end();
      }
    };
    const was = await count();
    const again = await mss(op.dir, ['store', 'migrate', '--from', 'sqlite:data/mss.sqlite', '--to', `postgres:${db.url}`]);
    expect(again).toMatchObject({ code: 2, err: expect.stringMatching(/target database is not empty \(rows in mailboxes: 4, .*\): migrate into a fresh, empty database/) });
    expect(await count()).toEqual(was);
  });

  it('reports the first mismatch and exits 1 when the copy differs from the source', async () => {
    const fresh = await createTestDatabase();
    try {
      expect((await mss(op.dir, ['store', 'migrate', '--from', 'sqlite:data/mss.sqlite', '--to', `postgres:${fresh.url}`])).code).toBe(0);
      expect((await mss(op.dir, ['store', 'migrate', '--verify-only', '--from', 'sqlite:data/mss.sqlite', '--to', `postgres:${fresh.url}`])).code).toBe(0);
      const c = new pg.Client({ connectionString: fresh.url });
      await c.connect();
      const chunk = (await c.query<{ id: string }>('SELECT min(id) AS id FROM blob_chunks')).rows[0]!.id;
      await c.query('UPDATE blob_chunks SET data = set_byte(data, 20, (get_byte(data, 20) + 1) % 256) WHERE id = $1', [chunk]);
      await c.end();
      const corrupted = await mss(op.dir, ['store', 'migrate', '--verify-only', '--from', 'sqlite:data/mss.sqlite', '--to', `postgres:${fresh.url}`]);
      expect(corrupted.code).toBe(1);
      expect(corrupted.out).toMatch(new RegExp(`^mismatch: blob_chunks ${chunk}: column data: \\d+ bytes, sha256 [0-9a-f]{16}… in the source, \\d+ bytes, sha256 [0-9a-f]{16}… in the target$`, 'm'));
      expect(corrupted.out).not.toMatch(/verified/);
    } finally {
      await fresh.drop();
    }
  });

  it('copies between any two engines through the port (sqlite → sqlite, in process) and verifies', async () => {
    const tmp = tempDir('mss-migrate-');
    try {
      const source = await openDumpSource({ engine: 'sqlite', path: sqlitePath(op.config) });
      const target = await openDumpTarget({ engine: 'sqlite', path: path.join(tmp.dir, 'copy.sqlite') });
      const phases = new Set<string>();
      const counts = await copyStore(source, target, { batch: 2, onProgress: (phase) => phases.add(phase) });
      const outcome = await verifyCopy(source, target, { batch: 3, onProgress: (phase) => phases.add(phase) });
      expect(outcome).toMatchObject({ ok: true, counts, auditRecords: sourceAuditRecords });
      expect([...phases].sort()).toEqual(['copy', 'verify']);
      await expect(copyStore(source, target)).rejects.toThrow(/not empty/);
      await Promise.all([source.close(), target.close()]);
    } finally {
      tmp.dispose();
    }
  });
});
