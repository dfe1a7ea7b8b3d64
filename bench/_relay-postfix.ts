/**
 * The peer of the relay bench: two throwaway Postfix instances on loopback relaying to each other with TLS
 * client certificates, everything (configs, queues, a private CA and both certificates, the Maildir, the logs) in
 * one temp directory, started with `postfix -c` (as bench/_postfix-peer.ts does; Postfix is installed with apt if
 * missing).
 *
 * - A (the sending operator): an implicit-TLS smtpd for the bench's submissions (from 127.0.0.0/8, no AUTH), and
 *   mail for B's domain routed by transport map to `smtp:[127.0.0.1]:<B's port>`. Its smtp client presents A's
 *   certificate and requires TLS at level `secure` (B's certificate must chain to the private CA and name B's
 *   host; our transport likewise checks B's chain and trust DN), with TLS connection reuse on
 *   (`smtp_tls_connection_reuse`, through tlsproxy(8): our transport keeps its connections open too) and a TLS
 *   session cache. With `hold`, A's smtpd puts every message on hold (`check_recipient_access static:HOLD`);
 *   `release()` is `postsuper -H ALL` then `postqueue -f`.
 * - B (the receiving operator): STARTTLS required and a verified client certificate required
 *   (`smtpd_tls_req_ccert = yes`, `smtpd_tls_ask_ccert = yes`, the private CA as `smtpd_tls_CAfile`); the
 *   recipient's domain is a virtual mailbox domain delivered into a Maildir by virtual(8).
 *
 * Durability: on both instances cleanup(8) fsyncs the queue file before smtpd's 250; A removes its copy after B's
 * 250.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { countMaildir, ENV, ensurePostfix, freePort, gidOf, masterCf, readFileSyncSafe, run, uidOf } from './_postfix-peer.js';

export interface PostfixInstance {
  /** The `-c` directory (main.cf, master.cf, maps): its daemons carry it as MAIL_CONFIG. */
  configDir: string;
  /** A: the implicit-TLS submission port; B: the relay (STARTTLS) port. */
  port: number;
  /** PEM of the CA the instance's certificate chains to. */
  ca: string;
  logFile: string;
}

export interface PostfixRelayPair {
  /** e.g. `postfix-3.7.11` */
  name: string;
  a: PostfixInstance;
  b: PostfixInstance;
  /** smtp_destination_concurrency_limit of A. */
  concurrency: number;
  /** Waits (bounded) until `count` messages are on hold in A's queue. */
  waitHeld(count: number, timeoutMs: number): Promise<void>;
  /** Releases A's held messages and asks its queue manager to deliver them now. */
  release(): void;
  /** Messages in the recipient's Maildir at B. */
  delivered(): number;
  stop(): Promise<void>;
}

export interface PostfixRelayOptions {
  /** B's domain (virtual mailbox domain) and the recipient's address there. */
  domain: string;
  recipient: string;
  /** A's domain (only its host name is derived from it). */
  senderDomain: string;
  /** Put every message A accepts on hold until `release()`. */
  hold: boolean;
  /** smtp_destination_concurrency_limit of A; default Postfix's (default_destination_concurrency_limit, 20). */
  concurrency?: number;
}

/** Cleanups of every pair started and not yet stopped, including ones still starting. */
const running = new Set<() => void>();

/** Stops every pair this process started, synchronously (for `process.on('exit')`). */
export function stopAllPostfixRelaysSync(): void {
  for (const cleanup of [...running]) cleanup();
}

function common(dir: string, host: string): string[] {
  return [
    'compatibility_level = 3.6',
    `queue_directory = ${dir}/queue`,
    `data_directory = ${dir}/data`,
    'mail_owner = postfix',
    'setgid_group = postdrop',
    `maillog_file = ${dir}/postfix.log`,
    `maillog_file_prefixes = ${dir}`,
    'inet_interfaces = 127.0.0.1',
    'inet_protocols = ipv4',
    `myhostname = ${host}`,
    'mydomain = bench.test',
    'mydestination =',
    'alias_maps =',
    'alias_database =',
    'local_recipient_maps =',
    'relayhost =',
    'biff = no',
    'smtpd_banner = $myhostname ESMTP',
    'smtpd_peername_lookup = no',
    'smtpd_tls_loglevel = 0',
    'smtp_tls_loglevel = 0',
    // Nothing must ever leave the machine.
    'default_transport = error:bench peer delivers locally only',
    'relay_transport = error:bench peer delivers locally only',
  ];
}

function mainCfA(dir: string, pki: string, o: PostfixRelayOptions, host: string): string {
  return [
    ...common(dir, host),
    'mynetworks = 127.0.0.0/8',
    `transport_maps = texthash:${dir}/etc/transport`,
    'smtpd_relay_restrictions = permit_mynetworks, reject',
    `smtpd_recipient_restrictions = ${o.hold ? 'check_recipient_access static:HOLD, ' : ''}permit_mynetworks, reject`,
    `smtpd_tls_cert_file = ${pki}/a.pem`,
    `smtpd_tls_key_file = ${pki}/a.key`,
    'smtpd_tls_security_level = encrypt',
    // The client side of the relay: A's certificate, B's checked (chain + name), connections and sessions reused.
    `smtp_tls_cert_file = ${pki}/a.pem`,
    `smtp_tls_key_file = ${pki}/a.key`,
    `smtp_tls_CAfile = ${pki}/ca.pem`,
    'smtp_tls_security_level = encrypt',
    `smtp_tls_policy_maps = texthash:${dir}/etc/tls_policy`,
    'smtp_tls_connection_reuse = yes',
    `smtp_tls_session_cache_database = btree:${dir}/data/smtp_scache`,
    ...(o.concurrency ? [`smtp_destination_concurrency_limit = ${o.concurrency}`] : []),
    '',
  ].join('\n');
}

function mainCfB(dir: string, pki: string, o: PostfixRelayOptions, host: string, mail: string, vuid: number, vgid: number): string {
  return [
    ...common(dir, host),
    // Nobody relays through B: it takes mail for its own domain only, from a client with a verified certificate.
    'mynetworks = 127.0.0.1/32',
    'smtpd_relay_restrictions = reject_unauth_destination',
    'smtpd_recipient_restrictions = reject_unauth_destination',
    `virtual_mailbox_domains = ${o.domain}`,
    `virtual_mailbox_base = ${mail}`,
    `virtual_mailbox_maps = texthash:${dir}/etc/vmailbox`,
    `virtual_uid_maps = static:${vuid}`,
    `virtual_gid_maps = static:${vgid}`,
    'virtual_minimum_uid = 1',
    `smtpd_tls_cert_file = ${pki}/b.pem`,
    `smtpd_tls_key_file = ${pki}/b.key`,
    `smtpd_tls_CAfile = ${pki}/ca.pem`,
    'smtpd_tls_security_level = encrypt',
    'smtpd_tls_ask_ccert = yes',
    'smtpd_tls_req_ccert = yes',
    `smtpd_tls_session_cache_database = btree:${dir}/data/smtpd_scache`,
    '',
  ].join('\n');
}

/** A private CA and one leaf per instance (RSA-2048 like our dev PKI), valid for both TLS roles. */
function makePki(pki: string, hosts: { a: string; b: string }): void {
  const out = path.join(pki, 'openssl.out');
  run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/O=Relay bench/CN=Relay bench CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout', path.join(pki, 'ca.key'), '-out', path.join(pki, 'ca.pem'),
  ], out);
  for (const [name, host] of Object.entries(hosts)) {
    const ext = path.join(pki, `${name}.ext`);
    writeFileSync(
      ext,
      `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n` +
        `subjectAltName=DNS:${host},DNS:localhost,IP:127.0.0.1\n`,
    );
    run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/O=Relay bench/CN=${host}`, '-keyout', path.join(pki, `${name}.key`), '-out', path.join(pki, `${name}.csr`)], out);
    run('openssl', [
      'x509', '-req', '-in', path.join(pki, `${name}.csr`), '-CA', path.join(pki, 'ca.pem'), '-CAkey', path.join(pki, 'ca.key'),
      '-set_serial', name === 'a' ? '10' : '11', '-days', '2', '-sha256', '-extfile', ext, '-out', path.join(pki, `${name}.pem`),
    ], out);
    chmodSync(path.join(pki, `${name}.key`), 0o600);
  }
}

/** Files in a queue directory, subdirectories included (hashed queues). */
function queueFiles(dir: string): number {
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? queueFiles(path.join(dir, e.name)) : 1;
  return n;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startPostfixRelayPair(o: PostfixRelayOptions): Promise<PostfixRelayPair> {
  if (process.getuid?.() !== 0) throw new Error('the Postfix peer needs root (postfix start)');
  const version = ensurePostfix();
  const root = mkdtempSync(path.join(tmpdir(), 'mss-relay-postfix-'));
  chmodSync(root, 0o755);
  const started: string[] = [];
  const cleanup = () => {
    for (const etc of started.splice(0)) spawnSync('postfix', ['-c', etc, 'stop'], { stdio: 'ignore', timeout: 60_000, env: ENV });
    rmSync(root, { recursive: true, force: true });
    running.delete(cleanup);
  };
  running.add(cleanup);
  const dirA = path.join(root, 'a');
  const dirB = path.join(root, 'b');
  const pki = path.join(root, 'pki');
  const mail = path.join(root, 'mail');
  try {
    const hostA = `mx.${o.senderDomain}`;
    const hostB = `mx.${o.domain}`;
    for (const d of [dirA, dirB]) {
      for (const sub of ['', 'etc', 'data', 'queue']) mkdirSync(path.join(d, sub), { mode: 0o755 });
      chownSync(path.join(d, 'data'), uidOf('postfix'), gidOf('postfix'));
    }
    mkdirSync(pki, { mode: 0o755 });
    mkdirSync(mail, { mode: 0o755 });
    const vuid = uidOf('nobody');
    const vgid = gidOf('nobody');
    chownSync(mail, vuid, vgid);
    makePki(pki, { a: hostA, b: hostB });

    const portA = await freePort();
    const portB = await freePort();
    const local = o.recipient.split('@')[0]!;
    writeFileSync(path.join(dirA, 'etc/transport'), `${o.domain} smtp:[127.0.0.1]:${portB}\n`);
    writeFileSync(path.join(dirA, 'etc/tls_policy'), `[127.0.0.1]:${portB} secure match=${hostB}\n`);
    writeFileSync(path.join(dirA, 'etc/main.cf'), mainCfA(dirA, pki, o, hostA));
    writeFileSync(path.join(dirA, 'etc/master.cf'), masterCf(`127.0.0.1:${portA} inet n - n - - smtpd\n  -o smtpd_tls_wrappermode=yes`));
    writeFileSync(path.join(dirB, 'etc/vmailbox'), `${o.recipient} ${o.domain}/${local}/\n`);
    writeFileSync(path.join(dirB, 'etc/main.cf'), mainCfB(dirB, pki, o, hostB, mail, vuid, vgid));
    writeFileSync(path.join(dirB, 'etc/master.cf'), masterCf(`127.0.0.1:${portB} inet n - n - - smtpd`));

    for (const d of [dirB, dirA]) {
      const etc = path.join(d, 'etc');
      started.push(etc); // first: a half-started instance must be stopped too
      run('postfix', ['-c', etc, 'start'], path.join(d, 'postfix.out'));
    }
    const concurrency =
      o.concurrency ?? Number(spawnSync('postconf', ['-c', path.join(dirA, 'etc'), '-x', '-h', 'smtp_destination_concurrency_limit'], { encoding: 'utf8', env: ENV }).stdout.trim());
    const ca = readFileSync(path.join(pki, 'ca.pem'), 'utf8');
    const maildir = path.join(mail, o.domain, local);
    const hold = path.join(dirA, 'queue/hold');
    return {
      name: `postfix-${version}`,
      a: { configDir: path.join(dirA, 'etc'), port: portA, ca, logFile: path.join(dirA, 'postfix.log') },
      b: { configDir: path.join(dirB, 'etc'), port: portB, ca, logFile: path.join(dirB, 'postfix.log') },
      concurrency,
      async waitHeld(count, timeoutMs) {
        const until = Date.now() + timeoutMs;
        while (queueFiles(hold) < count) {
          if (Date.now() > until) throw new Error(`postfix A: ${queueFiles(hold)}/${count} messages on hold after ${timeoutMs} ms`);
          await sleep(100);
        }
      },
      release() {
        const etc = path.join(dirA, 'etc');
        run('postsuper', ['-c', etc, '-H', 'ALL'], path.join(dirA, 'postsuper.out'));
        run('postqueue', ['-c', etc, '-f'], path.join(dirA, 'postqueue.out'));
      },
      delivered: () => countMaildir(maildir),
      stop: async () => cleanup(),
    };
  } catch (err) {
    const logs = [dirA, dirB].map((d) => readFileSyncSafe(path.join(d, 'postfix.log')).split('\n').slice(-10).join('\n')).join('\n');
    cleanup();
    throw new Error(`${(err as Error).message}${logs.trim() ? `\n--- postfix logs (tail) ---\n${logs}` : ''}`);
  }
}
