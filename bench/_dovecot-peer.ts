/**
 * A private, throwaway Dovecot IMAP server, the comparison peer of the IMAP bench: Debian's dovecot-imapd
 * (installed if missing), its own base_dir, log, passwd-file users and Maildir homes in one temp directory,
 * implicit TLS on a loopback port with a fresh self-signed certificate. Nothing under /etc/dovecot is read or
 * written (`dovecot -c`).
 *
 * Stock settings except what a throwaway instance must say (paths, users, TLS files) and the connection limits,
 * raised so that `maxConnections` sessions from one user and one address fit: `default_process_limit`,
 * `default_client_limit`, `service imap/imap-login { process_limit }`, `service anvil/auth/stats { client_limit }`,
 * `mail_max_userip_connections`. So Dovecot runs by default in its stock "high-security" login mode: one
 * imap-login process per connection (it stays in the middle as the TLS proxy) and one imap process per session;
 * `loginMode: 'performance'` gives the "high-performance" one (a few imap-login processes for all connections).
 *
 * Mail is written straight into the users' Maildirs (one file per message, LF line ends as Dovecot's own
 * deliveries, `S=`/`W=` sizes in the name, flags in the `:2,` info, mtime = INTERNALDATE), then indexed with
 * `doveadm index` as a delivery through LMTP would leave it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import net from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';

export interface DovecotUser {
  user: string;
  password: string;
}

export interface ProcessStats {
  pid: number;
  name: string;
  /** kB, from /proc/<pid>/status (VmRSS, VmHWM) and /proc/<pid>/smaps_rollup (Pss). */
  rss: number;
  hwm: number;
  pss: number;
  /** kB of VmRSS: anonymous memory (heaps), and pages of mapped files (reclaimable: the kernel may drop them). */
  rssAnon: number;
  rssFile: number;
  /** CPU time used so far (user + system), ms, from /proc/<pid>/stat. */
  cpuMs: number;
}

export interface DovecotPeer {
  /** e.g. `dovecot-2.3.19.1` */
  name: string;
  port: number;
  /** Writes messages into the user's INBOX (before or after start; call `index` after start). */
  addMessages(user: string, messages: Iterable<{ raw: Buffer; flags: readonly string[]; internalDate: number }>): number;
  /** `doveadm index` of the user's INBOX: what a delivery through LMTP would have indexed. */
  index(user: string): void;
  /** The master and its children (imap, imap-login, auth, config, log, anvil, stats). */
  processes(): ProcessStats[];
  logFile: string;
  stop(): Promise<void>;
}

const APT_TIMEOUT_MS = 10 * 60_000;
/** dovecot and doveadm live in /usr/sbin and /usr/bin; a non-login PATH may lack /usr/sbin. */
const ENV = { ...process.env, PATH: `${process.env.PATH ?? '/usr/bin:/bin'}:/usr/sbin:/sbin` };
const UID = 65534; // nobody: the mail owner, as in the machine notes' recipe
const GID = 65534;

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore', env: ENV }).status === 0;

/** apt-get install, with one `apt-get update` retry; null on success, else why not. */
function aptInstall(packages: string[]): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  if (!have('apt-get')) return 'no apt-get';
  const apt = (args: string[]) => {
    const r = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=180', ...args], {
      env: { ...ENV, DEBIAN_FRONTEND: 'noninteractive' },
      encoding: 'utf8',
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: APT_TIMEOUT_MS,
    });
    return r.status === 0 ? null : `apt-get ${args.join(' ')}: ${(r.stderr || String(r.error ?? r.signal)).trim().split('\n').slice(-3).join(' / ')}`;
  };
  const install = () => apt(['install', '-y', '-q', '--no-install-recommends', ...packages]);
  return install() === null ? null : (apt(['update', '-q']) ?? install());
}

let version: string | undefined;

/** Makes sure dovecot-core and dovecot-imapd are installed; returns the version, or throws why not. */
export function ensureDovecotImap(): string {
  if (version) return version;
  const imapBinary = () => existsSync('/usr/lib/dovecot/imap') && have('dovecot') && have('doveadm');
  if (!imapBinary()) {
    const why = aptInstall(['dovecot-core', 'dovecot-imapd']);
    if (why || !imapBinary()) throw new Error(`dovecot-imapd is not installed and could not be installed: ${why ?? 'imap binary still missing'}`);
  }
  return (version = execFileSync('dovecot', ['--version'], { encoding: 'utf8', env: ENV }).trim().split(/\s+/)[0]!);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function conf(d: string, port: number, maxConnections: number, loginMode: 'security' | 'performance'): string {
  const c = maxConnections + 50;
  // High-performance login mode (Dovecot's tuning advice for many connections): a few long-lived imap-login
  // processes, one per core, each serving many connections.
  const login = loginMode === 'performance' ? `  service_count = 0\n  process_min_avail = ${Math.max(1, availableParallelism())}\n  client_limit = ${c}\n` : '';
  const dh = existsSync('/usr/share/dovecot/dh.pem') ? 'ssl_dh = </usr/share/dovecot/dh.pem\n' : '';
  return `base_dir = ${d}/run
state_dir = ${d}/state
log_path = ${d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <${d}/tls/cert.pem
ssl_key = <${d}/tls/key.pem
${dh}ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 100
default_process_limit = ${c}
default_client_limit = ${4 * c}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${d}/passwd
}
userdb {
  driver = static
  args = uid=${UID} gid=${GID} home=${d}/home/%u
}
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
}
protocol imap {
  mail_max_userip_connections = ${c}
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = ${port}
    ssl = yes
  }
  process_limit = ${c}
${login}}
service imap {
  process_limit = ${c}
}
service anvil {
  client_limit = ${4 * c}
}
service auth {
  client_limit = ${4 * c}
}
service stats {
  client_limit = ${4 * c}
  unix_listener stats-reader {
    mode = 0666
  }
  unix_listener stats-writer {
    mode = 0666
  }
}
`;
}

/** Runs a command to completion, output to a file (dovecot's master inherits descriptors: no pipe). */
function run(cmd: string, args: string[], outFile: string): void {
  const fd = openSync(outFile, 'a');
  try {
    const r = spawnSync(cmd, args, { stdio: ['ignore', fd, fd], timeout: 30 * 60_000, env: ENV });
    if (r.status !== 0) {
      throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal ?? String(r.error)}): ${readSafe(outFile).trim().split('\n').slice(-10).join('\n')}`);
    }
  } finally {
    closeSync(fd);
  }
}

function readSafe(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

const CLK_TCK = 100; // Linux USER_HZ: /proc/<pid>/stat counts in 1/100 s on every architecture Node runs on

/** Memory (kB: VmRSS, VmHWM, Pss) and CPU time of a process; null once it is gone. */
export function processStats(pid: number): ProcessStats | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
    let pss = 0;
    try {
      pss = Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
    } catch {
      // smaps_rollup needs Linux 4.14; Pss stays 0
    }
    // pid (comm) state ppid … utime stime: fields 14 and 15, counted after the last ')' (comm may hold spaces).
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuMs = ((Number(after[11]) + Number(after[12])) * 1000) / CLK_TCK;
    return { pid, name: /^Name:\s+(\S+)/m.exec(status)?.[1] ?? '?', rss: field('VmRSS'), hwm: field('VmHWM'), pss, rssAnon: field('RssAnon'), rssFile: field('RssFile') + field('RssShmem'), cpuMs };
  } catch {
    return null;
  }
}

/** Pids whose parent is `ppid`. */
/** The processes whose parent is `ppid`. */
export function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === ppid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** A synchronous sleep (for the exit-handler path). */
const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Every instance started and not yet stopped. */
const running = new Set<() => void>();

/** Stops every Dovecot this process started, synchronously (for `process.on('exit')`). */
export function stopAllDovecotPeersSync(): void {
  for (const cleanup of [...running]) cleanup();
}

const FLAG_LETTERS: Record<string, string> = { '\\Draft': 'D', '\\Flagged': 'F', '\\Answered': 'R', '\\Seen': 'S', '\\Deleted': 'T' };

/** Creates the instance directory with its users and starts Dovecot. Throws (cleaned up) if it cannot. */
export async function startDovecotPeer(
  users: readonly DovecotUser[],
  opts: { maxConnections: number; loginMode?: 'security' | 'performance' },
): Promise<DovecotPeer> {
  if (process.getuid?.() !== 0) throw new Error('the Dovecot peer needs root (dovecot starts as root and drops privileges)');
  const ver = ensureDovecotImap();
  const d = mkdtempSync(path.join(tmpdir(), 'mss-dovecot-peer-'));
  chmodSync(d, 0o755); // the mail processes (uid 65534) traverse it to reach the homes
  let masterPid = 0;
  const cleanup = () => {
    if (masterPid > 0 && alive(masterPid)) {
      const kids = childrenOf(masterPid);
      process.kill(masterPid, 'SIGTERM');
      for (let i = 0; i < 100 && alive(masterPid); i++) sleepSync(100);
      for (const pid of [masterPid, ...kids]) if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    masterPid = 0;
    rmSync(d, { recursive: true, force: true });
    running.delete(cleanup);
  };
  running.add(cleanup);
  try {
    for (const sub of ['run', 'state', 'tls', 'home']) mkdirSync(path.join(d, sub), { mode: 0o755 });
    chownSync(path.join(d, 'home'), UID, GID);
    run('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout', path.join(d, 'tls/key.pem'), '-out', path.join(d, 'tls/cert.pem'),
    ], path.join(d, 'tls/openssl.out'));
    chmodSync(path.join(d, 'tls/key.pem'), 0o600);
    writeFileSync(path.join(d, 'passwd'), users.map((u) => `${u.user}:{PLAIN}${u.password}::::::\n`).join(''));
    // Read by the auth process, which runs as the internal user.
    chmodSync(path.join(d, 'passwd'), 0o600);
    chownSync(path.join(d, 'passwd'), Number(execFileSync('id', ['-u', 'dovecot'], { encoding: 'utf8', env: ENV })), 0);
    const maildir = (user: string) => path.join(d, 'home', user, 'Maildir');
    for (const u of users) {
      for (const sub of ['', 'cur', 'new', 'tmp']) mkdirSync(path.join(maildir(u.user), sub), { recursive: true, mode: 0o700 });
      spawnSync('chown', ['-R', `${UID}:${GID}`, path.join(d, 'home', u.user)]);
    }
    const port = await freePort();
    const confFile = path.join(d, 'dovecot.conf');
    writeFileSync(confFile, conf(d, port, opts.maxConnections, opts.loginMode ?? 'security'));
    run('doveconf', ['-c', confFile, '-n'], path.join(d, 'doveconf.out'));
    run('dovecot', ['-c', confFile], path.join(d, 'dovecot.out'));
    const pidFile = path.join(d, 'run/master.pid');
    for (let i = 0; i < 100 && !(masterPid > 0); i++) {
      masterPid = Number(readSafe(pidFile).trim());
      if (!(masterPid > 0)) await new Promise((r) => setTimeout(r, 100));
    }
    if (!(masterPid > 0)) throw new Error('dovecot did not write its master.pid');
    // Ready when the imaps listener accepts.
    for (let i = 0; ; i++) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
        s.once('error', () => resolve(false));
      });
      if (ok) break;
      if (i > 100) throw new Error(`dovecot is not listening on 127.0.0.1:${port}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    let seq = 0;
    return {
      name: `dovecot-${ver}`,
      port,
      logFile: path.join(d, 'dovecot.log'),
      addMessages(user, messages) {
        const cur = path.join(maildir(user), 'cur');
        let n = 0;
        for (const m of messages) {
          const lf = Buffer.from(m.raw.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
          const secs = Math.floor(m.internalDate / 1000);
          const info = m.flags.map((f) => FLAG_LETTERS[f] ?? '').sort().join('');
          // Time first, then a zero-padded counter: Dovecot gives new files their UIDs in this order.
          const name = `${secs}.M${String(++seq).padStart(9, '0')}P${process.pid}.bench,S=${lf.length},W=${m.raw.length}:2,${info}`;
          const file = path.join(cur, name);
          const fd = openSync(file, 'w', 0o600);
          writeSync(fd, lf);
          closeSync(fd);
          utimesSync(file, secs, secs);
          n++;
        }
        spawnSync('chown', ['-R', `${UID}:${GID}`, maildir(user)]);
        return n;
      },
      index(user) {
        run('doveadm', ['-c', confFile, 'index', '-u', user, 'INBOX'], path.join(d, 'doveadm.out'));
      },
      processes() {
        if (!(masterPid > 0)) return [];
        return [masterPid, ...childrenOf(masterPid)].map(processStats).filter((p): p is ProcessStats => p !== null);
      },
      stop: async () => cleanup(),
    };
  } catch (err) {
    const log = readSafe(path.join(d, 'dovecot.log')).split('\n').slice(-15).join('\n');
    cleanup();
    throw new Error(`${(err as Error).message}${log ? `\n--- dovecot.log (tail) ---\n${log}` : ''}`);
  }
}
