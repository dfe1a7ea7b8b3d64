import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import path from 'node:path';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listenerPort, printedPasswords, submitReport, until } from './helpers/cli-output.js';
import { tempDir } from './helpers/engines.js';

/**
 * `mss start` with `processes: 2` on SQLite (the built CLI): a primary process and two server processes sharing
 * the listeners and one database. IMAP connections are dealt by the primary to the process holding the fewest
 * (ADR 0017), with the per-address limit counted across both; what one process commits reaches the sessions
 * the other serves (events relayed by the primary); everything stops on SIGTERM.
 */

const execFileAsync = promisify(execFile);
const repo = path.resolve(__dirname, '..');
const cli = path.join(repo, 'dist/src/cli.js');
const CLAIRE = 'claire.martin@hopital-demo.mssante.test';
const JEAN = 'jean.dupont@hopital-demo.mssante.test';

/** How many established server sides of connections to `port` each process holds (ss -tnp), by pid. */
async function connectionsByPid(port: number): Promise<Map<number, number>> {
  const { stdout } = await execFileAsync('ss', ['-tnpH', 'state', 'established', `( sport = :${port} )`]);
  const byPid = new Map<number, number>();
  for (const m of stdout.matchAll(/pid=(\d+)/g)) byPid.set(Number(m[1]), (byPid.get(Number(m[1])) ?? 0) + 1);
  return byPid;
}

/** Waits until `count` connections to `port` are established, then a little more for the primary to hear of it. */
async function settle(port: number, count: number): Promise<void> {
  let held = -1;
  await until(() => held === count, `${count} connections`, 5000, async () => {
    held = [...(await connectionsByPid(port)).values()].reduce((a, b) => a + b, 0);
  });
  await new Promise((r) => setTimeout(r, 300)); // the worker's word that a connection closed reaches the primary
}

/** What an IMAP server says to a new connection (implicit TLS with a `ca`) before it closes it or within a second. */
async function rawLines(port: number, ca?: string): Promise<string[]> {
  const socket = ca ? tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }) : net.connect({ host: '127.0.0.1', port });
  let text = '';
  socket.setEncoding('utf8').on('data', (d: string) => (text += d));
  socket.on('error', () => {});
  await Promise.race([new Promise((resolve) => socket.once('close', resolve)), new Promise((resolve) => setTimeout(resolve, 1000))]);
  socket.destroy();
  return text.split('\r\n').filter((l) => l !== '');
}

describe('mss start with two server processes on SQLite (built CLI)', () => {
  const tmp = tempDir('mss-processes-');
  let child: ChildProcess;
  let out = '';
  let exited: Promise<number | null>;
  let passwords = new Map<string, string>();
  const ports = { submission: 0, imap: 0, imaps: 0 };
  let ca: string;
  const clients: ImapFlow[] = [];

  const imap = async (): Promise<ImapFlow> => {
    const c = new ImapFlow({
      host: '127.0.0.1',
      port: ports.imaps,
      secure: true,
      tls: { ca, servername: 'localhost' },
      auth: { user: CLAIRE, pass: passwords.get(CLAIRE)! },
      logger: false,
      disableAutoIdle: true,
    });
    clients.push(c);
    await c.connect();
    await c.mailboxOpen('INBOX');
    return c;
  };

  beforeAll(async () => {
    const any = { host: '127.0.0.1', port: 0 };
    const config = {
      dataDir: 'data',
      certsDir: 'certs',
      processes: 2,
      smtp: { submission: any, submissionTls: any },
      relay: { listener: any },
      imap: { plain: any, tls: any, maxConnectionsPerIp: 5 },
      http: { listener: any },
      log: { level: 'warn' },
    };
    writeFileSync(path.join(tmp.dir, 'mss.json'), JSON.stringify(config));
    child = spawn(process.execPath, [cli, 'start', '--config', 'mss.json'], { cwd: tmp.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    await until(() => out.includes('ready\n') || child.exitCode !== null, 'ready', 60_000);
    if (!out.includes('ready\n')) throw new Error(`mss start failed: ${out}${err}`);
    passwords = printedPasswords(out);
    ports.submission = listenerPort(out, 'smtp-submission (STARTTLS)');
    ports.imaps = listenerPort(out, 'imap (TLS)');
    ports.imap = listenerPort(out, 'imap (STARTTLS)');
    ca = readFileSync(path.join(tmp.dir, 'certs/ca/root.pem'), 'utf8');
  }, 120_000);

  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.logout().catch(() => c.close())));
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    tmp.dispose();
  });

  it('keeps the sessions of a quiet server in one process: a client that reconnects finds its folder state there', async () => {
    expect(out).toContain('starting   2 server processes');
    const owners: number[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await imap();
      owners.push(...(await connectionsByPid(ports.imaps)).keys());
      await c.logout(); // and at once a new connection: the worker told the primary at LOGOUT, before its reply
      clients.splice(clients.indexOf(c), 1);
    }
    await settle(ports.imaps, 0);
    expect(owners).toHaveLength(3);
    expect(new Set(owners).size).toBe(1);
    expect(owners[0]).not.toBe(child.pid);
  });

  it('deals connections to the process holding the fewest: four sessions, two in each', async () => {
    const sessions = await Promise.all([imap(), imap(), imap(), imap()]);
    const perPid = await connectionsByPid(ports.imaps);
    expect([...perPid.values()]).toEqual([2, 2]);
    expect(perPid.has(child.pid!)).toBe(false);
    expect(sessions.every((s) => s.mailbox && s.mailbox.exists === 0)).toBe(true);
  });

  it('counts the connections of one address across both processes (imap.maxConnectionsPerIp 5)', async () => {
    await imap(); // the fifth: three in one process, two in the other, under each one's own count of 5
    const lines = await rawLines(ports.imaps, ca);
    expect(lines[0]).toBe('* BYE Too many connections from your address, try again later');
    expect(await rawLines(ports.imap)).toEqual(['* BYE Too many connections from your address, try again later']); // both listeners
    clients.pop()!.close();
    await settle(ports.imaps, 4);
    expect((await rawLines(ports.imaps, ca))[0]).toMatch(/^\* OK /);
    await settle(ports.imaps, 4);
    expect((await rawLines(ports.imap))[0]).toMatch(/^\* OK \[CAPABILITY [^\]]*STARTTLS/);
  });

  it('a delivery and a flag change made in one process reach the sessions of the other, pushed during IDLE', async () => {
    const [first, second, third, fourth] = clients as [ImapFlow, ImapFlow, ImapFlow, ImapFlow];
    const watching = [first, second, third];
    const exists: number[][] = watching.map(() => []);
    const flags: string[][][] = watching.map(() => []);
    watching.forEach((c, i) => {
      c.on('exists', (e: { count: number }) => exists[i]!.push(e.count));
      c.on('flags', (e: { flags: Set<string> }) => flags[i]!.push([...e.flags].sort()));
    });
    const idles = watching.map((c) => c.idle());
    await new Promise((r) => setTimeout(r, 100)); // IDLE is on before the delivery

    expect(await submitReport(ports.submission, ca, JEAN, passwords.get(JEAN)!, CLAIRE)).toEqual([CLAIRE]);
    await until(() => exists.every((e) => e.length > 0), 'EXISTS pushed to every session', 5000);
    expect(exists).toEqual([[1], [1], [1]]);

    await fourth.noop(); // the new message gets its sequence number in this session too
    expect(await fourth.messageFlagsAdd('1', ['\\Flagged'])).toBe(true);
    await until(() => flags.every((f) => f.length > 0), 'FETCH FLAGS pushed to every session', 5000);
    expect(flags).toEqual([[['\\Flagged']], [['\\Flagged']], [['\\Flagged']]]);
    for (const c of watching) await c.noop(); // ends IDLE
    await Promise.all(idles);
    const msg = await third.fetchOne('1', { envelope: true, flags: true });
    expect(msg && msg.envelope?.subject).toBe('Compte rendu');
  });

  it('stops every process on SIGTERM', async () => {
    await Promise.allSettled(clients.splice(0).map((c) => c.logout().catch(() => c.close())));
    const { stdout } = await execFileAsync('pgrep', ['-P', String(child.pid)]);
    const workers = stdout.trim().split('\n').map(Number);
    expect(workers).toHaveLength(2);
    // Each worker gives large freed blocks (a login's scrypt) back to the system (src/cluster.ts).
    for (const pid of workers) expect(readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0')).toContain('MALLOC_MMAP_THRESHOLD_=131072');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out).toMatch(/SIGTERM: stopping[^\n]*\nstopped\n$/);
    for (const pid of workers) expect(() => process.kill(pid, 0)).toThrow();
  });
});
