/**
 * A private, throwaway Postfix instance used as the comparison peer of the SMTP submission bench.
 *
 * Everything lives in one temp directory: main.cf/master.cf (selected with `postfix -c`), the queue, the data
 * directory, a self-signed TLS certificate, the Maildir delivery target, the log, and (when Dovecot is installed or
 * installable) a Dovecot instance that only serves SASL authentication to Postfix. Nothing in /etc/postfix is
 * written (nor needed: with Debian's "No configuration" there is not even a main.cf): `postfix -c` is honoured for
 * root without `alternate_config_directories`, which Postfix only checks for non-root callers and set-gid commands
 * such as postdrop (not used here: mail arrives over SMTP only).
 *
 * Durability: Postfix's cleanup(8) fsyncs the queue file before smtpd answers 250 to the end of DATA, the same
 * promise as our server's fsync'd SQLite commit. Delivery into the Maildir (virtual(8)) then happens asynchronously.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface PostfixPeer {
  /** e.g. `postfix-3.7.11` */
  name: string;
  port: number;
  /** PEM of the self-signed server certificate, to be trusted by the client. */
  ca: string;
  /** Present only when AUTH PLAIN is offered (Dovecot SASL); otherwise 127.0.0.0/8 may submit without AUTH. */
  user?: string;
  password?: string;
  /** Postfix's own log (maillog_file), for diagnostics; removed by stop(). */
  logFile: string;
  /** Number of messages that reached the Maildir so far. */
  delivered(): number;
  /** Waits (bounded) until `count` messages have been delivered; returns the number delivered. */
  waitDelivered(count: number, timeoutMs: number): Promise<number>;
  stop(): Promise<void>;
}

export interface PostfixPeerOptions {
  /** The recipient domain, delivered locally (virtual mailbox domain). */
  domain: string;
  /** Recipient addresses that get a Maildir. */
  recipients: string[];
  /** Login used for SASL when Dovecot is available. */
  user: string;
}

const APT_TIMEOUT_MS = 10 * 60_000;
/** postfix, postconf and dovecot live in /usr/sbin, which a non-login PATH may lack. */
export const ENV = { ...process.env, PATH: `${process.env.PATH ?? '/usr/bin:/bin'}:/usr/sbin:/sbin` };
const APT_ENV = { ...ENV, DEBIAN_FRONTEND: 'noninteractive' };

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore', env: ENV }).status === 0;

let aptUpdated = false;

/**
 * Installs Debian packages non-interactively; runs `apt-get update` at most once per process, and only when a plain
 * install failed. Returns null on success, else the reason.
 */
function aptInstall(packages: string[]): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  if (!have('apt-get')) return 'no apt-get';
  // Without this preseed postfix's postinst asks which mailer type to configure. "No configuration" also leaves
  // /etc/postfix/main.cf absent, so no system-wide Postfix gets configured or started.
  spawnSync('debconf-set-selections', { input: 'postfix postfix/main_mailer_type select No configuration\n', stdio: ['pipe', 'ignore', 'ignore'], env: ENV });
  const apt = (args: string[]) => {
    // Wait for a dpkg lock held by someone else rather than failing at once.
    const r = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=180', ...args], { env: APT_ENV, encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], timeout: APT_TIMEOUT_MS });
    return r.status === 0 ? null : `apt-get ${args.join(' ')}: ${(r.stderr || String(r.error ?? r.signal)).trim().split('\n').slice(-3).join(' / ')}`;
  };
  const install = () => apt(['install', '-y', '-q', '--no-install-recommends', ...packages]);
  const first = install();
  if (!first || aptUpdated) return first;
  aptUpdated = true;
  return apt(['update', '-q']) ?? install();
}

let postfixVersion: string | undefined;

/** Makes sure Postfix is installed; returns its version (`postconf -d mail_version`) or throws why it is not. */
export function ensurePostfix(): string {
  if (postfixVersion) return postfixVersion;
  if (!have('postconf')) {
    const why = aptInstall(['postfix']);
    if (why) throw new Error(`postfix is not installed and could not be installed: ${why}`);
  }
  const out = execFileSync('postconf', ['-d', '-h', 'mail_version'], { encoding: 'utf8', env: ENV }).trim();
  if (!out) throw new Error('postconf -d mail_version gave nothing');
  return (postfixVersion = out);
}

let dovecotAvailable: boolean | undefined;

/** Dovecot is optional: it only provides SASL AUTH to Postfix. Tried (and installed) once per process. */
function ensureDovecot(): boolean {
  dovecotAvailable ??= have('dovecot') || (aptInstall(['dovecot-core']) === null && have('dovecot'));
  return dovecotAvailable;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export function uidOf(user: string): number {
  return Number(execFileSync('id', ['-u', user], { encoding: 'utf8', env: ENV }).trim());
}

export function gidOf(user: string): number {
  return Number(execFileSync('id', ['-g', user], { encoding: 'utf8', env: ENV }).trim());
}

/** Counts files in every `<mailbox>/new` and `<mailbox>/cur` under the virtual mailbox base. */
export function countMaildir(base: string): number {
  let n = 0;
  for (const mbox of existsSync(base) ? readdirSync(base, { recursive: true }) : []) {
    const rel = String(mbox);
    if (/(^|\/)(new|cur)$/.test(rel)) n += readdirSync(path.join(base, rel)).length;
  }
  return n;
}

function mainCf(dir: string, o: PostfixPeerOptions, vuid: number, vgid: number, sasl: boolean): string {
  const lines = [
    // Current defaults, without backwards-compatibility warnings.
    'compatibility_level = 3.6',
    `queue_directory = ${dir}/queue`,
    `data_directory = ${dir}/data`,
    'mail_owner = postfix',
    'setgid_group = postdrop',
    // Own log file (postlogd) instead of syslog, so a failing peer can be diagnosed and nothing leaks system-wide.
    `maillog_file = ${dir}/postfix.log`,
    `maillog_file_prefixes = ${dir}`,
    'inet_interfaces = 127.0.0.1',
    'inet_protocols = ipv4',
    'myhostname = postfix-peer.bench.test',
    'mydomain = bench.test',
    // No local(8) domains at all, hence no /etc/aliases lookups (the file does not exist with "No configuration").
    'mydestination =',
    'alias_maps =',
    'alias_database =',
    'local_recipient_maps =',
    'mynetworks = 127.0.0.0/8',
    'relayhost =',
    // Nothing must ever leave the machine: anything not for the virtual domain bounces at once.
    'default_transport = error:bench peer delivers locally only',
    'relay_transport = error:bench peer delivers locally only',
    'biff = no',
    'smtpd_banner = $myhostname ESMTP',
    // Real local delivery: one Maildir per recipient (trailing slash = Maildir), owned by an unprivileged uid.
    `virtual_mailbox_domains = ${o.domain}`,
    `virtual_mailbox_base = ${dir}/mail`,
    `virtual_mailbox_maps = texthash:${dir}/etc/vmailbox`,
    `virtual_uid_maps = static:${vuid}`,
    `virtual_gid_maps = static:${vgid}`,
    'virtual_minimum_uid = 1',
    // TLS: same RSA-2048 self-signed kind of certificate as our dev PKI; the listener enforces TLS (see master.cf).
    `smtpd_tls_cert_file = ${dir}/tls/cert.pem`,
    `smtpd_tls_key_file = ${dir}/tls/key.pem`,
    'smtpd_tls_security_level = encrypt',
    'smtpd_tls_loglevel = 0',
    // Our server skips reverse DNS too (disableReverseLookup).
    'smtpd_peername_lookup = no',
  ];
  if (sasl) {
    lines.push(
      'smtpd_sasl_auth_enable = yes',
      'smtpd_sasl_type = dovecot',
      `smtpd_sasl_path = ${dir}/dovecot/auth-postfix`,
      // Like our submission server: only authenticated clients may submit.
      'smtpd_relay_restrictions = permit_sasl_authenticated, reject',
      'smtpd_recipient_restrictions = permit_sasl_authenticated, reject',
    );
  } else {
    lines.push('smtpd_relay_restrictions = permit_mynetworks, reject', 'smtpd_recipient_restrictions = permit_mynetworks, reject');
  }
  return lines.join('\n') + '\n';
}

/**
 * Postfix's stock master.cf services, chroot off (the temp dir is no chroot jail), tlsproxy included (for TLS
 * connection reuse), after the given listener lines.
 */
export function masterCf(listener: string): string {
  return `# service type  private unpriv  chroot  wakeup  maxproc command + args
${listener}
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
tlsproxy  unix  -       -       n       -       0       tlsproxy
postlog   unix-dgram n  -       n       -       1       postlogd
`;
}

/** An auth-only Dovecot (no protocols, no listeners) exposing the SASL socket Postfix's smtpd talks to. */
function dovecotConf(d: string): string {
  return `base_dir = ${d}/run
state_dir = ${d}/state
log_path = ${d}/dovecot.log
protocols =
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${d}/passwd
}
userdb {
  driver = static
  args = uid=65534 gid=65534 home=${d}/home/%u
}
service auth {
  unix_listener ${d}/auth-postfix {
    user = postfix
    mode = 0600
  }
}
service stats {
  unix_listener stats-reader {
    mode = 0666
  }
  unix_listener stats-writer {
    mode = 0666
  }
}
`;
}

/**
 * Runs a command to completion. Output goes to a file, not a pipe: daemons (dovecot, postfix's master) inherit
 * the descriptors, and spawnSync would wait for a pipe to close until its timeout.
 */
export function run(cmd: string, args: string[], outFile: string): void {
  const fd = openSync(outFile, 'a');
  try {
    const r = spawnSync(cmd, args, { stdio: ['ignore', fd, fd], timeout: 60_000, env: ENV });
    if (r.status !== 0) {
      const out = readFileSyncSafe(outFile).trim().split('\n').slice(-10).join('\n');
      throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal ?? String(r.error)}): ${out}`);
    }
  } finally {
    closeSync(fd);
  }
}

/** Cleanups of every instance started and not yet stopped, including ones still starting. */
const running = new Set<() => void>();

/**
 * Stops every peer this process started, synchronously: for `process.on('exit')`, so that no Postfix or Dovecot
 * outlives the bench even when it is interrupted half-way through a start-up.
 */
export function stopAllPostfixPeersSync(): void {
  for (const cleanup of [...running]) cleanup();
}

/**
 * Starts the peer. Throws if Postfix cannot be installed or started (callers then report `peer=unavailable`).
 * Falls back to no AUTH (relay permitted from 127.0.0.0/8) if Dovecot is unavailable.
 */
export async function startPostfixPeer(o: PostfixPeerOptions): Promise<PostfixPeer> {
  if (process.getuid?.() !== 0) throw new Error('the Postfix peer needs root (postfix start)');
  const version = ensurePostfix();
  const sasl = ensureDovecot();
  const dir = mkdtempSync(path.join(tmpdir(), 'mss-postfix-peer-'));
  // Postfix daemons (user postfix), virtual(8) (the mailbox uid) and smtpd -> the Dovecot socket all use absolute
  // paths below this directory, so it must be traversable.
  chmodSync(dir, 0o755);
  let postfixStarted = false;
  let dovecotStarted = false;
  // Synchronous and idempotent, so it can run from a process 'exit' handler and after a half-done start-up.
  const cleanup = () => {
    if (postfixStarted) spawnSync('postfix', ['-c', path.join(dir, 'etc'), 'stop'], { stdio: 'ignore', timeout: 60_000, env: ENV }); // waits for master
    if (dovecotStarted) stopPidSync(Number(readFileSyncSafe(path.join(dir, 'dovecot/run/master.pid'))));
    postfixStarted = dovecotStarted = false;
    rmSync(dir, { recursive: true, force: true });
    running.delete(cleanup);
  };
  running.add(cleanup);
  try {
    const vuid = uidOf('nobody');
    const vgid = gidOf('nobody');
    // queue/ must exist (root-owned); `postfix check`, run by `postfix start`, creates its subdirectories.
    // etc/ is the `-c` directory; it holds only what `postfix check` may inspect (it warns about, e.g., the
    // world-writable Dovecot sockets if they live below it).
    for (const sub of ['etc', 'tls', 'data', 'mail', 'queue']) mkdirSync(path.join(dir, sub), { mode: 0o755 });
    chownSync(path.join(dir, 'data'), uidOf('postfix'), gidOf('postfix'));
    chownSync(path.join(dir, 'mail'), vuid, vgid);

    run('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout', path.join(dir, 'tls/key.pem'), '-out', path.join(dir, 'tls/cert.pem'),
    ], path.join(dir, 'tls/openssl.out'));
    chmodSync(path.join(dir, 'tls/key.pem'), 0o600);

    writeFileSync(path.join(dir, 'etc/vmailbox'), o.recipients.map((r) => `${r} ${o.domain}/${r.split('@')[0]}/\n`).join(''));

    let password: string | undefined;
    if (sasl) {
      const d = path.join(dir, 'dovecot');
      mkdirSync(d, { mode: 0o755 });
      password = randomBytes(12).toString('base64url');
      writeFileSync(path.join(d, 'passwd'), `${o.user}:{PLAIN}${password}::::::\n`);
      writeFileSync(path.join(d, 'dovecot.conf'), dovecotConf(d));
      dovecotStarted = true; // set first: a half-started instance must be stopped too
      run('dovecot', ['-c', path.join(d, 'dovecot.conf')], path.join(d, 'dovecot.out'));
      await waitFor(() => existsSync(path.join(d, 'auth-postfix')), 10_000, 'dovecot auth socket');
    }

    const port = await freePort();
    writeFileSync(path.join(dir, 'etc/main.cf'), mainCf(dir, o, vuid, vgid, sasl));
    writeFileSync(path.join(dir, 'etc/master.cf'), masterCf(`127.0.0.1:${port} inet n - n - - smtpd\n  -o smtpd_tls_wrappermode=yes`));
    postfixStarted = true;
    // Returns once master(8) is up with its listeners bound (postfix-script starts it with `master -w`).
    run('postfix', ['-c', path.join(dir, 'etc'), 'start'], path.join(dir, 'postfix.out'));

    const mail = path.join(dir, 'mail');
    return {
      name: `postfix-${version}`,
      port,
      ca: readFileSync(path.join(dir, 'tls/cert.pem'), 'utf8'),
      logFile: path.join(dir, 'postfix.log'),
      ...(sasl ? { user: o.user, password } : {}),
      delivered: () => countMaildir(mail),
      async waitDelivered(count, timeoutMs) {
        const until = Date.now() + timeoutMs;
        let n = countMaildir(mail);
        while (n < count && Date.now() < until) {
          await sleep(200);
          n = countMaildir(mail);
        }
        return n;
      },
      stop: async () => cleanup(),
    };
  } catch (err) {
    const log = readFileSyncSafe(path.join(dir, 'postfix.log')).split('\n').slice(-15).join('\n');
    cleanup();
    throw new Error(`${(err as Error).message}${log ? `\n--- postfix.log (tail) ---\n${log}` : ''}`);
  }
}

export function readFileSyncSafe(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** SIGTERM, then SIGKILL after 5 s; returns once the process is gone. */
function stopPidSync(pid: number): void {
  if (!(pid > 0)) return;
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  process.kill(pid, 'SIGTERM');
  const tick = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 50 && alive(); i++) Atomics.wait(tick, 0, 0, 100); // a synchronous 100 ms sleep
  if (alive()) process.kill(pid, 'SIGKILL');
}
