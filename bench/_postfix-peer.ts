/**
 * A private, throwaway Postfix instance used as the comparison peer of the SMTP submission bench.
 *
 * Everything lives in one temp directory: main.cf/master.cf (selected with `postfix -c`), the queue, the data
 * directory, a self-signed TLS certificate, the Maildir delivery target, the log, and (when Dovecot is installed or
 * installable) a Dovecot instance that only serves SASL authentication to Postfix. /etc/postfix is never read for
 * configuration nor written: `-c` is honoured for root without `alternate_config_directories` (that list is only
 * checked for set-gid commands like postdrop and non-root callers, neither of which this uses).
 *
 * Durability: Postfix's cleanup(8) fsyncs the queue file before smtpd answers 250 to the end of DATA, the same
 * promise as our server's fsync'd SQLite commit. Delivery into the Maildir (virtual(8)) then happens asynchronously.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
const POSTFIX_UID_ENV = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

let aptUpdated = false;

/** Installs Debian packages non-interactively; `apt-get update` at most once per process, and only if needed. */
function aptInstall(packages: string[]): boolean {
  if (process.getuid?.() !== 0 || !have('apt-get')) return false;
  // Without this preseed postfix's postinst asks which mailer type to configure. "No configuration" also leaves
  // /etc/postfix/main.cf absent, so no system-wide Postfix gets configured or started.
  spawnSync('debconf-set-selections', { input: 'postfix postfix/main_mailer_type select No configuration\n', stdio: ['pipe', 'ignore', 'inherit'] });
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...packages], {
      env: POSTFIX_UID_ENV,
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: APT_TIMEOUT_MS,
    }).status === 0;
  if (install()) return true;
  if (aptUpdated) return false;
  aptUpdated = true;
  spawnSync('apt-get', ['update', '-q'], { env: POSTFIX_UID_ENV, stdio: 'ignore', timeout: APT_TIMEOUT_MS });
  return install();
}

/** Makes sure Postfix is installed; returns its version (`postconf -d mail_version`) or throws why it is not. */
export function ensurePostfix(): string {
  if (!have('postconf') && !aptInstall(['postfix'])) throw new Error('postfix is not installed and apt-get install postfix failed');
  const out = execFileSync('postconf', ['-d', '-h', 'mail_version'], { encoding: 'utf8' }).trim();
  if (!out) throw new Error('postconf -d mail_version gave nothing');
  return out;
}

/** Dovecot is optional: it only provides SASL AUTH to Postfix. */
function ensureDovecot(): boolean {
  return have('dovecot') || (aptInstall(['dovecot-core']) && have('dovecot'));
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

function uidOf(user: string): number {
  return Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
}

function gidOf(user: string): number {
  return Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
}

/** Counts files in every `<mailbox>/new` and `<mailbox>/cur` under the virtual mailbox base. */
function countMaildir(base: string): number {
  let n = 0;
  for (const mbox of existsSync(base) ? readdirSync(base, { recursive: true }) : []) {
    const rel = String(mbox);
    if (/(^|\/)(new|cur)$/.test(rel)) n += readdirSync(path.join(base, rel)).length;
  }
  return n;
}

function mainCf(dir: string, o: PostfixPeerOptions, vuid: number, vgid: number, sasl: boolean): string {
  const lines = [
    // Newest defaults (e.g. smtputf8, chroot off) without compatibility warnings.
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
    'mydestination =',
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
    `virtual_mailbox_maps = texthash:${dir}/vmailbox`,
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

/** Postfix's stock master.cf services, chroot off (the temp dir is no chroot jail), plus our one TLS listener. */
function masterCf(port: number): string {
  return `# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:${port} inet n - n - - smtpd
  -o smtpd_tls_wrappermode=yes
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
    mode = 0666
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

function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000, env: env ?? process.env });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout || String(r.error ?? '')).trim()}`);
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
  const cleanup = () => {
    if (postfixStarted) spawnSync('postfix', ['-c', dir, 'stop'], { stdio: 'ignore', timeout: 60_000 });
    if (dovecotStarted) {
      const pid = Number(readFileSyncSafe(path.join(dir, 'dovecot/run/master.pid')));
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
      }
    }
    postfixStarted = dovecotStarted = false;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const vuid = uidOf('nobody');
    const vgid = gidOf('nobody');
    for (const sub of ['tls', 'data', 'mail']) mkdirSync(path.join(dir, sub));
    chownSync(path.join(dir, 'mail'), vuid, vgid);

    run('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout', path.join(dir, 'tls/key.pem'), '-out', path.join(dir, 'tls/cert.pem'),
    ]);
    chmodSync(path.join(dir, 'tls/key.pem'), 0o600);

    writeFileSync(path.join(dir, 'vmailbox'), o.recipients.map((r) => `${r} ${o.domain}/${r.split('@')[0]}/\n`).join(''));

    let password: string | undefined;
    if (sasl) {
      const d = path.join(dir, 'dovecot');
      mkdirSync(d, { mode: 0o755 });
      password = `bench-${Math.random().toString(36).slice(2)}`;
      writeFileSync(path.join(d, 'passwd'), `${o.user}:{PLAIN}${password}::::::\n`);
      writeFileSync(path.join(d, 'dovecot.conf'), dovecotConf(d));
      run('dovecot', ['-c', path.join(d, 'dovecot.conf')]);
      dovecotStarted = true;
      await waitFor(() => existsSync(path.join(d, 'auth-postfix')), 10_000, 'dovecot auth socket');
    }

    const port = await freePort();
    writeFileSync(path.join(dir, 'main.cf'), mainCf(dir, o, vuid, vgid, sasl));
    writeFileSync(path.join(dir, 'master.cf'), masterCf(port));
    // `postfix check` (run by start) creates the queue directories with the right owners.
    run('postfix', ['-c', dir, 'start']);
    postfixStarted = true;
    await waitFor(() => canConnect(port), 15_000, `postfix smtpd on 127.0.0.1:${port}`);

    const mail = path.join(dir, 'mail');
    return {
      name: `postfix-${version}`,
      port,
      ca: readFileSync(path.join(dir, 'tls/cert.pem'), 'utf8'),
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

function readFileSyncSafe(file: string): string {
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

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
