import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { initOperator } from '../src/init.js';
import { openStore } from '../src/store/open.js';
import { listenerPort, printedPasswords, submitReport, until } from './helpers/cli-output.js';
import { createTestDatabase, tempDir } from './helpers/engines.js';

/**
 * Two real `mss start` processes (the built CLI) on one PostgreSQL database, as an operator scales out behind a
 * TCP load balancer: what one process commits reaches the IMAP sessions of the other (LISTEN/NOTIFY), and the
 * login-failure counters are shared.
 */

const execFileAsync = promisify(execFile);
const repo = path.resolve(__dirname, '..');
const cli = path.join(repo, 'dist/src/cli.js');
const CLAIRE = 'claire.martin@hopital-demo.mssante.test';
const JEAN = 'jean.dupont@hopital-demo.mssante.test';
const DPI = 'dpi@hopital-demo.mssante.test';
const MAX_FAILURES = 3;

interface Mss {
  name: string;
  child: ChildProcess;
  out: string;
  err: string;
  exited: Promise<number | null>;
  ports: { submission: number; imaps: number };
}

describe('two mss processes on one PostgreSQL database (built CLI)', () => {
  const tmp = tempDir('mss-multi-');
  let db: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  const processes: Mss[] = [];
  const clients: ImapFlow[] = [];
  let a: Mss;
  let b: Mss;
  let ca: string;
  const passwords = new Map<string, string>();

  function start(name: string, configFile: string): Promise<Mss> {
    const child = spawn(process.execPath, [cli, 'start', '--config', configFile], { cwd: tmp.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const proc: Mss = {
      name,
      child,
      out: '',
      err: '',
      exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
      ports: { submission: 0, imaps: 0 },
    };
    processes.push(proc); // killed by afterAll whatever happens next
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (proc.out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (proc.err += d));
    return new Promise<Mss>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} not ready: ${proc.out}${proc.err}`)), 30_000);
      child.stdout!.on('data', () => {
        if (!proc.out.includes('ready\n')) return;
        clearTimeout(timer);
        proc.ports = { submission: listenerPort(proc.out, 'smtp-submission (STARTTLS)'), imaps: listenerPort(proc.out, 'imap (TLS)') };
        resolve(proc);
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited early (${code}): ${proc.out}${proc.err}`));
      });
    });
  }

  function imap(proc: Mss, user = CLAIRE, pass = passwords.get(user)!): ImapFlow {
    const c = new ImapFlow({
      host: '127.0.0.1',
      port: proc.ports.imaps,
      secure: true,
      tls: { ca, servername: 'localhost' },
      auth: { user, pass },
      logger: false,
      disableAutoIdle: true,
    });
    clients.push(c);
    return c;
  }

  async function inbox(proc: Mss): Promise<ImapFlow> {
    const c = imap(proc);
    await c.connect();
    await c.mailboxOpen('INBOX');
    return c;
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    const any = { host: '127.0.0.1', port: 0 };
    const config = (level: string) => ({
      dataDir: 'data', // one master key for both processes
      certsDir: 'certs',
      store: { engine: 'postgres', url: db!.url, poolSize: 4 },
      smtp: { submission: any, submissionTls: any },
      relay: { listener: any },
      imap: { plain: any, tls: any },
      http: { listener: any },
      auth: { maxFailures: MAX_FAILURES, lockoutMs: 60_000 },
      log: { level },
    });
    writeFileSync(path.join(tmp.dir, 'a.json'), JSON.stringify(config('warn')));
    writeFileSync(path.join(tmp.dir, 'b.json'), JSON.stringify(config('error')));
    // One init before scaling out (docs/decisions/0004-postgresql-engine.md).
    const init = await execFileAsync(process.execPath, [cli, 'init', '--config', 'a.json'], { cwd: tmp.dir });
    for (const [address, password] of printedPasswords(init.stdout)) passwords.set(address, password);
    expect([...passwords.keys()]).toContain(CLAIRE);
    ca = readFileSync(path.join(tmp.dir, 'certs/ca/root.pem'), 'utf8');
    [a, b] = await Promise.all([start('A', 'a.json'), start('B', 'b.json')]);
  }, 120_000);

  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.logout().catch(() => c.close())));
    for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await Promise.all(processes.map((p) => p.exited));
    await db?.drop();
    tmp.dispose();
  });

  it('delivers through A; sessions on B see the message within a second, on NOOP and pushed during IDLE', async () => {
    const polling = await inbox(b);
    const idling = await inbox(b);
    expect(polling.mailbox && polling.mailbox.exists).toBe(0);
    const pushed: number[] = [];
    idling.on('exists', (e: { count: number }) => pushed.push(e.count));
    const polled: number[] = [];
    polling.on('exists', (e: { count: number }) => polled.push(e.count));
    const idle = idling.idle();
    await new Promise((r) => setTimeout(r, 100)); // IDLE is on before the delivery

    expect(await submitReport(a.ports.submission, ca, JEAN, passwords.get(JEAN)!, CLAIRE)).toEqual([CLAIRE]);

    await Promise.all([
      until(() => pushed.length > 0, 'EXISTS pushed during IDLE on B', 1000),
      until(() => polled.length > 0, 'EXISTS on NOOP on B', 1000, () => polling.noop()),
    ]);
    expect(pushed).toEqual([1]);
    expect(polled).toEqual([1]);
    await idling.noop(); // ends IDLE
    await idle;
    const msg = await polling.fetchOne('1', { envelope: true });
    expect(msg && msg.envelope?.subject).toBe('Compte rendu');
  });

  it('flags set by a session on B reach sessions on A, on NOOP and pushed during IDLE', async () => {
    const polling = await inbox(a);
    const idling = await inbox(a);
    const setter = await inbox(b);
    type FlagsEvent = { uid?: number; flags: Set<string> };
    const pushed: FlagsEvent[] = [];
    const polled: FlagsEvent[] = [];
    idling.on('flags', (e: FlagsEvent) => pushed.push(e));
    polling.on('flags', (e: FlagsEvent) => polled.push(e));
    const idle = idling.idle();
    await new Promise((r) => setTimeout(r, 100));

    expect(await setter.messageFlagsAdd('1', ['\\Flagged', '$Urgent'])).toBe(true);
    await Promise.all([
      until(() => pushed.length > 0, 'FETCH FLAGS pushed during IDLE on A', 1000),
      until(() => polled.length > 0, 'FETCH FLAGS on NOOP on A', 1000, () => polling.noop()),
    ]);
    expect([...pushed[0]!.flags].sort()).toEqual(['$Urgent', '\\Flagged']);
    expect([...polled[0]!.flags].sort()).toEqual(['$Urgent', '\\Flagged']);
    await idling.noop();
    await idle;
  });

  it('an EXPUNGE on A is seen by a selected session on B', async () => {
    const selected = await inbox(b);
    const expunged: number[] = [];
    selected.on('expunge', (e: { seq: number }) => expunged.push(e.seq));
    const deleter = await inbox(a);
    expect(await deleter.messageDelete('1')).toBe(true);
    await until(() => expunged.length > 0, 'EXPUNGE on B', 1000, () => selected.noop());
    expect(expunged).toEqual([1]);
    expect(selected.mailbox && selected.mailbox.exists).toBe(0);
  });

  it('login failures counted by A lock the address out on B', async () => {
    const ok = imap(b, DPI);
    await ok.connect(); // the right password works before the failures
    await ok.logout();
    for (let i = 0; i < MAX_FAILURES; i++) {
      await expect(imap(a, DPI, 'pas le bon mot de passe').connect()).rejects.toMatchObject({ serverResponseCode: 'AUTHENTICATIONFAILED' });
    }
    // The right password, on the other process: refused while locked out.
    await expect(imap(b, DPI).connect()).rejects.toMatchObject({ serverResponseCode: 'UNAVAILABLE' });
    // Another address is not concerned.
    const other = imap(b, JEAN);
    await other.connect();
    await other.logout();
  });

  it('both processes stop cleanly on SIGTERM', async () => {
    await Promise.allSettled(clients.splice(0).map((c) => c.logout().catch(() => c.close())));
    a.child.kill('SIGTERM');
    b.child.kill('SIGTERM');
    expect(await Promise.all([a.exited, b.exited])).toEqual([0, 0]);
    expect(a.out).toMatch(/stopped\n$/);
    expect(b.out).toMatch(/stopped\n$/);
    expect(a.err + b.err).not.toMatch(/"level":(50|60)/); // no error or fatal log line
  });
});

describe('two processes initialising one fresh PostgreSQL database at once', () => {
  it('one creates the master key, dev PKI, schema and demo; the other waits and finds them (init lock)', async () => {
    const tmp = tempDir('mss-init-race-');
    const db = await createTestDatabase();
    try {
      // `mss start` initialises when needed: two processes started together on a fresh database both try.
      const config = parseConfig({ dataDir: 'data', certsDir: 'certs', store: { engine: 'postgres', url: db.url, poolSize: 2 }, log: { level: 'silent' } }, tmp.dir);
      const reports = await Promise.all([initOperator(config), initOperator(config)]);
      expect(reports.map((r) => r.changed).sort()).toEqual([false, true]);
      // Three professional accounts with a password, and the patient pending activation with its code: once.
      expect(reports.flatMap((r) => r.accounts)).toHaveLength(3);
      expect(reports.flatMap((r) => r.activations)).toHaveLength(1);
      const store = await openStore(config);
      try {
        expect(await store.listMailboxes()).toHaveLength(4);
        expect((await store.readAudit(0, 1000)).filter((r) => r.action === 'init')).toHaveLength(1);
      } finally {
        await store.close();
      }
    } finally {
      await db.drop();
      tmp.dispose();
    }
  });
});
