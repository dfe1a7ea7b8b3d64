import Database from 'better-sqlite3';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, tempDir } from './helpers/engines.js';

const repo = path.resolve(__dirname, '..');
const cli = path.join(repo, 'dist/src/cli.js');

function mss(cwd: string, args: string[], input?: string): { code: number; out: string; err: string } {
  try {
    const out = execFileSync(process.execPath, [cli, ...args], { cwd, input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
    return { code: 0, out, err: '' };
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    return { code: err.status, out: err.stdout, err: err.stderr };
  }
}

describe('the mss command (built CLI, in a temp dir)', () => {
  const tmp = tempDir('mss-cli-');
  let accounts: Map<string, string>;

  beforeAll(() => {
    const any = { host: '127.0.0.1', port: 0 };
    writeFileSync(path.join(tmp.dir, 'config.json'), JSON.stringify({ smtp: { submission: any, submissionTls: any }, relay: { listener: any }, imap: { plain: any, tls: any }, http: { listener: any } }));
  });
  afterAll(() => tmp.dispose());

  it('init creates the operator and prints every account; a second run changes nothing', () => {
    const first = mss(tmp.dir, ['init']);
    expect(first.code).toBe(0);
    const lines = first.out.split('\n').filter((l) => l.includes('  password: '));
    accounts = new Map(lines.map((l) => l.split('  password: ') as [string, string]));
    expect([...accounts.keys()].sort()).toEqual([
      'claire.martin@hopital-demo.mssante.test',
      'dpi@hopital-demo.mssante.test',
      'jean.dupont@hopital-demo.mssante.test',
    ]);
    // The demo patient is created pending, with an activation code for the webmail instead of a password.
    expect(first.out).toMatch(/^created demo patient 279035121518989@patient\.mssante\.test, pending activation: activation code [A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4} /m);
    expect(statSync(path.join(tmp.dir, 'data', 'master.key')).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(tmp.dir, 'certs', 'ca', 'root.pem')).isFile()).toBe(true);

    const second = mss(tmp.dir, ['init']);
    expect(second).toMatchObject({ code: 0, out: 'already initialised: nothing changed\n' });
  });

  it('adds, lists and re-keys mailboxes', () => {
    // 1 + FINESS 750000001 fails its check key: refused before anything is created.
    const invalid = mss(tmp.dir, ['mailbox', 'add', 'Secretariat@hopital-demo.mssante.test', '--type', 'ORG', '--owner', '1750000001', '--password-stdin'], 'un mot de passe sûr\n');
    expect(invalid).toMatchObject({ code: 2, err: expect.stringMatching(/Invalid national identifier of the owner/) });
    const add = mss(tmp.dir, ['mailbox', 'add', 'Secretariat@hopital-demo.mssante.test', '--type', 'ORG', '--owner', '1750000002', '--password-stdin'], 'un mot de passe sûr\n');
    expect(add).toMatchObject({ code: 0, out: 'created secretariat@hopital-demo.mssante.test (ORG)\n' });
    const dup = mss(tmp.dir, ['mailbox', 'add', 'secretariat@hopital-demo.mssante.test', '--type', 'ORG']);
    expect(dup.code).toBe(2);
    expect(dup.err).toMatch(/already exists/);
    const bad = mss(tmp.dir, ['mailbox', 'add', 'x@y.test', '--type', 'BOSS']);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/PER, ORG, APP, CAB, PATIENT/);
    const list = mss(tmp.dir, ['mailbox', 'list']);
    expect(list.out).toMatch(/^secretariat@hopital-demo\.mssante\.test\tORG\tactive\t1750000002$/m);
    expect(list.out).toMatch(/^5 mailboxes$/m);
    expect(mss(tmp.dir, ['mailbox', 'passwd', 'secretariat@hopital-demo.mssante.test', '--password-stdin'], 'short\n')).toMatchObject({ code: 2 });
    expect(mss(tmp.dir, ['mailbox', 'passwd', 'secretariat@hopital-demo.mssante.test', '--password-stdin'], 'encore plus sûr\n').code).toBe(0);
    accounts.set('secretariat@hopital-demo.mssante.test', 'encore plus sûr');
  });

  it('start serves, carries one message, and stops cleanly on SIGTERM', async () => {
    const child: ChildProcess = spawn(process.execPath, [cli, 'start'], { cwd: tmp.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready: ${out}`)), 30_000);
      child.stdout!.on('data', () => out.includes('ready\n') && (clearTimeout(timer), resolve()));
      child.on('exit', () => reject(new Error(`exited early: ${out}`)));
    });
    const port = (name: string) => Number(new RegExp(`${name.replace(/[()]/g, '\\$&')}\\s+127\\.0\\.0\\.1:(\\d+)`).exec(out)![1]);
    expect(out).toMatch(/imap \(TLS\)/);
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: port('smtp-submission (STARTTLS)'),
      requireTLS: true,
      auth: { user: 'secretariat@hopital-demo.mssante.test', pass: accounts.get('secretariat@hopital-demo.mssante.test')! },
      tls: { ca: execFileSync('cat', [path.join(tmp.dir, 'certs/ca/root.pem')], { encoding: 'utf8' }), servername: 'localhost' },
    });
    const info = await transport.sendMail({
      from: 'secretariat@hopital-demo.mssante.test',
      to: 'jean.dupont@hopital-demo.mssante.test',
      subject: 'RDV',
      text: 'Rendez-vous confirmé.',
    });
    expect(info.accepted).toEqual(['jean.dupont@hopital-demo.mssante.test']);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out).toMatch(/stopped\n$/);
  });

  it('start on a fresh directory initialises, and a SIGTERM right after "ready" still stops cleanly', async () => {
    const fresh = tempDir('mss-cli-cold-');
    try {
      const any = { host: '127.0.0.1', port: 0 };
      writeFileSync(path.join(fresh.dir, 'config.json'), JSON.stringify({ smtp: { submission: any, submissionTls: any }, relay: { listener: any }, imap: { plain: any, tls: any }, http: { listener: any } }));
      const child = spawn(process.execPath, [cli, 'start'], { cwd: fresh.dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (out.includes('ready\n')) child.kill('SIGTERM');
      });
      expect(await exited).toEqual({ code: 0, signal: null });
      expect(out).toMatch(/^jean\.dupont@hopital-demo\.mssante\.test {2}password: \S+$/m);
      expect(out).toMatch(/SIGTERM: stopping[^]*stopped\n$/);
    } finally {
      fresh.dispose();
    }
  });

  it('audit verify passes, then finds one altered record', () => {
    const ok = mss(tmp.dir, ['audit', 'verify']);
    expect(ok.code).toBe(0);
    const n = Number(/^ok (\d+) records$/m.exec(ok.out)![1]);
    expect(n).toBeGreaterThan(5);

    const db = new Database(path.join(tmp.dir, 'data', 'mss.sqlite'));
    db.exec('DROP TRIGGER audit_no_update');
    db.prepare("UPDATE audit SET actor = 'intrus@ailleurs.test' WHERE seq = 4").run();
    db.close();
    const broken = mss(tmp.dir, ['audit', 'verify']);
    expect(broken.code).toBe(1);
    expect(broken.out).toMatch(/^broken at record 4: record content does not match its hash/m);
  });

  it('says what to do when the operator is not initialised or the config is wrong', () => {
    const empty = tempDir('mss-cli-empty-');
    try {
      expect(mss(empty.dir, ['mailbox', 'list'])).toMatchObject({ code: 2, err: expect.stringMatching(/run "mss init" first/) });
      writeFileSync(path.join(empty.dir, 'bad.json'), '{"smtp": {"maxMessageSize": "big"}}');
      expect(mss(empty.dir, ['init', '--config', 'bad.json'])).toMatchObject({ code: 2, err: expect.stringMatching(/smtp\.maxMessageSize/) });
      expect(mss(empty.dir, ['init', '--config', 'missing.json'])).toMatchObject({ code: 2, err: expect.stringMatching(/not found/) });
    } finally {
      empty.dispose();
    }
  });
});

describe('the mss command on PostgreSQL (built CLI)', () => {
  const tmp = tempDir('mss-cli-pg-');
  let db: Awaited<ReturnType<typeof createTestDatabase>>;

  beforeAll(async () => {
    db = await createTestDatabase();
    writeFileSync(path.join(tmp.dir, 'config.json'), JSON.stringify({ store: { engine: 'postgres', url: db.url } }));
  });
  afterAll(async () => {
    await db?.drop();
    tmp.dispose();
  });

  it('is not initialised before init; init creates the schema and the demo; a second init changes nothing; audit verify works', () => {
    expect(mss(tmp.dir, ['mailbox', 'list'])).toMatchObject({ code: 2, err: expect.stringMatching(/run "mss init" first/) });
    const first = mss(tmp.dir, ['init']);
    expect(first.code).toBe(0);
    expect(first.out).toMatch(/^created database postgres:\/\/postgres@127\.0\.0\.1:5432\/mss_test_/m);
    expect(mss(tmp.dir, ['init'])).toMatchObject({ code: 0, out: 'already initialised: nothing changed\n' });
    expect(mss(tmp.dir, ['mailbox', 'list']).out).toMatch(/^4 mailboxes$/m);
    expect(mss(tmp.dir, ['audit', 'verify']).out).toMatch(/^ok \d+ records$/m);
  });

  it('refuses engine "postgres" without a url, saying which key is missing', () => {
    writeFileSync(path.join(tmp.dir, 'nourl.json'), JSON.stringify({ store: { engine: 'postgres' } }));
    expect(mss(tmp.dir, ['init', '--config', 'nourl.json'])).toMatchObject({ code: 2, err: expect.stringMatching(/store\.url: store\.url is required/) });
  });

  it('says which database it cannot use, without the password', () => {
    const url = new URL(db.url);
    url.password = 's3cret';
    url.pathname = '/mss_test_does_not_exist';
    writeFileSync(path.join(tmp.dir, 'missing-db.json'), JSON.stringify({ store: { engine: 'postgres', url: url.toString() } }));
    const result = mss(tmp.dir, ['init', '--config', 'missing-db.json']);
    expect(result).toMatchObject({ code: 2, err: expect.stringMatching(/^mss: cannot use the PostgreSQL database postgres:\/\/postgres:\*\*\*@.*mss_test_does_not_exist: .*does not exist/) });
    expect(result.err).not.toMatch(/s3cret/);
  });
});
