import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Certificate } from '../../src/crypto/cms/certificate.js';
import { parseDsn } from '../../src/mime/dsn.js';
import { certificateSubjectText } from '../../src/policy/dn.js';
import { exportTrustList } from '../../src/policy/trust-list.js';
import { importTrustList } from '../../src/policy/trust-store.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { IDEMPOTENCY_HEADER } from '../../src/smtp/outbound.js';
import { openStore } from '../../src/store/open.js';
import { openTrustStore } from '../../src/store/trust.js';
import type { Store } from '../../src/store/types.js';
import { tempDir } from '../helpers/engines.js';
import { command, makeLeaf, openssl, type TestLeaf } from '../helpers/openssl-certs.js';
import { folderMessages, mss } from '../helpers/federation.js';
import { DEMO, passwordOf, startOperator, type TestOperator } from '../helpers/operator.js';
import { makeCa, makeServerLeaf, SERVER_LEAF_SERIAL, writeCrl, type MadeCert } from '../policy/certs.js';

/**
 * Mail to another operator, end to end: a practitioner submits to a recipient at a trust-space domain; the
 * message is signed and encrypted, queued before the 250, retried while the peer is down, then handed over
 * once to a peer SMTP server (smtp-server, STARTTLS and a client certificate required, its own CA named in the
 * trust list) which decrypts and verifies it with openssl. A peer presenting another DN gets nothing; unknown
 * domains and recipients without a certificate are refused at RCPT; an item too old becomes a failure DSN.
 */

const PEER_DOMAIN = 'peer.test';
const WRONG_DOMAIN = 'wrongdn.test';
const PEER_DN = '/C=FR/O=OPERATEUR PAIR/OU=123456789/CN=mx.peer.test';

interface Arrival {
  from: string;
  to: string[];
  raw: Buffer;
  /** Subject of the client certificate the sender presented. */
  client: string | null;
}

interface Peer {
  arrivals: Arrival[];
  connections: number;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The other operator's SMTP server: STARTTLS and a client certificate chaining to `clientCa` required, no AUTH. */
async function startPeer(port: number, leaf: MadeCert, clientCa: string): Promise<Peer> {
  const subjects = new Map<string, string>();
  const peer: Peer = { arrivals: [], connections: 0, close: async () => undefined };
  const server = new SMTPServer({
    name: 'mx.peer.test',
    secure: false,
    key: leaf.keyPem,
    cert: leaf.pem,
    ca: clientCa,
    requestCert: true,
    rejectUnauthorized: true,
    authOptional: true,
    disabledCommands: ['AUTH'],
    logger: false,
    onConnect(_session, callback) {
      peer.connections++;
      callback();
    },
    onSecure(socket, session, callback) {
      const cert = (socket as TLSSocket).getPeerCertificate();
      if (cert?.raw) subjects.set(session.id, certificateSubjectText({ raw: cert.raw }));
      callback();
    },
    onMailFrom(_address, session, callback) {
      if (!session.secure) return callback(Object.assign(new Error('Must issue a STARTTLS command first'), { responseCode: 530 }));
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        peer.arrivals.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks),
          client: subjects.get(session.id) ?? null,
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  peer.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return peer;
}

function message(to: string, subject: string, body: string): string {
  return [
    `From: ${DEMO.jean}`,
    `To: ${to}`,
    `Subject: ${subject}`,
    `Message-ID: <${Math.random().toString(36).slice(2)}@hopital-demo.mssante.test>`,
    'Date: Wed, 25 Nov 2026 10:00:00 +0100',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    body,
    '',
  ].join('\r\n');
}

function submit(op: TestOperator, to: string, raw: string) {
  return nodemailer
    .createTransport({
      host: '127.0.0.1',
      port: op.ports.submission,
      requireTLS: true,
      auth: { user: DEMO.jean, pass: passwordOf(op, DEMO.jean) },
      tls: { ca: op.ca, servername: 'localhost' },
    })
    .sendMail({ envelope: { from: DEMO.jean, to: [to] }, raw });
}

/** The trust space both operators' tests use: the peer's domain with its real DN, another domain with a DN nobody presents. */
async function importTrust(store: Store, peerCa: MadeCert, peerServer: MadeCert): Promise<void> {
  const entry = (name: string, operatorDn: string) => ({ name, description: `d ${name}`, operatorDn, responsableContact: 'r', supportContact: 's', updatedAt: Date.now() });
  const xml = exportTrustList({
    generatedAt: Date.now(),
    domains: [entry(PEER_DOMAIN, certificateSubjectText(peerServer.pem)), entry(WRONG_DOMAIN, 'CN=mx.wrongdn.test,OU=987654321,O=AUTRE OPERATEUR,C=FR')],
  });
  await importTrustList(openTrustStore(store), xml, { source: 'test', caBundle: peerCa.pem });
}

let dir: { dir: string; dispose(): void };
let peerCa: MadeCert;
let peerServer: MadeCert;
/** The peer CA's CRL, which our operator reads (relay.crlFiles) to check the peer's server certificate. */
let peerCrl: string;
let alice: TestLeaf;
let bob: TestLeaf;

beforeAll(async () => {
  dir = tempDir('mss-federation-');
  peerCa = await makeCa(dir.dir, 'peer-ca', '/C=FR/O=OPERATEUR PAIR/CN=PAIR ROOT CA');
  peerServer = await makeServerLeaf(dir.dir, peerCa, 'peer-server', PEER_DN);
  peerCrl = path.join(dir.dir, 'peer-ca.crl.pem');
  await writeCrl(peerCa, peerCrl, []);
  const asTestCa = { certFile: peerCa.certFile, keyFile: peerCa.keyFile, certPem: peerCa.pem };
  alice = await makeLeaf(dir.dir, asTestCa, 'alice', { email: `alice@${PEER_DOMAIN}` });
  bob = await makeLeaf(dir.dir, asTestCa, 'bob', { email: `bob@${WRONG_DOMAIN}` });
});
afterAll(() => dir?.dispose());

/** Config of an operator sending to the peers (certificates from the per-domain resolver; fast retries). */
function federationConfig(routes: Record<string, string>, extra: Record<string, unknown> = {}): ConfigInput {
  return {
    // The S/MIME certificates of the peer's users come without a CRL here; production configures the IGC-Santé CRLs.
    security: { revocation: 'best-effort' },
    // The peer's server certificate is checked against its CA's CRL (revocation: require, the default).
    relay: { crlFiles: [peerCrl] },
    federation: {
      routes,
      certificates: { [PEER_DOMAIN]: alice.certFile, [WRONG_DOMAIN]: path.dirname(bob.certFile) },
      retry: { firstSeconds: 0.2, factor: 2, maxSeconds: 1 },
      idleSeconds: 0.2,
      ...extra,
    },
  };
}

describe('outbound mail to other operators', () => {
  let op: TestOperator;
  let store: Store;
  let peerPort: number;
  let wrongPort: number;
  const peers: Peer[] = [];

  beforeAll(async () => {
    peerPort = await freePort();
    wrongPort = await freePort();
    op = await startOperator(federationConfig({ [PEER_DOMAIN]: `127.0.0.1:${peerPort}`, [WRONG_DOMAIN]: `127.0.0.1:${wrongPort}` }));
    store = await openStore(op.config);
    await importTrust(store, peerCa, peerServer);
  });
  afterAll(async () => {
    await store?.close();
    await op?.dispose();
    await Promise.all(peers.map((p) => p.close()));
  });

  const queueCli = (...args: string[]) => mss(op, 'queue', ...args);
  /** Each `mss queue show` opens the operator's store beside the running server, in this process: polled gently
   *  (every 50 ms, one full run on a loaded machine saw no attempt's error within 30 s). */
  const CLI_POLL = { timeout: 30_000, interval: 250 };

  async function itemFor(destination: string): Promise<string> {
    const items = (await store.listQueue(100)).filter((i) => i.destination === destination);
    expect(items).toHaveLength(1);
    return items[0]!.id;
  }

  // First, so that no pooled connection verified before the revocation is around (a handshake checks it).
  it("sends nothing to a peer whose server certificate its CA revoked: the item waits with the reason", async () => {
    await writeCrl(peerCa, peerCrl, [SERVER_LEAF_SERIAL]);
    const peer = await startPeer(peerPort, peerServer, readFileSync(path.join(op.config.certsDir, 'ca', 'root.pem'), 'utf8'));
    try {
      const info = await submit(op, `alice@${PEER_DOMAIN}`, message(`alice@${PEER_DOMAIN}`, 'Bilan FED-REVOKED', 'Texte.'));
      expect(info.response).toMatch(/^250 /);
      const id = await itemFor(PEER_DOMAIN);
      await expect
        .poll(async () => (await queueCli('show', id)).out.find((l) => l.startsWith('last error:')) ?? '', CLI_POLL)
        .toMatch(/the peer certificate ".*" is revoked \(since .*\): nothing sent/);
      expect(peer.connections).toBeGreaterThan(0);
      expect(peer.arrivals).toHaveLength(0);
      expect((await queueCli('delete', id)).exitCode).toBe(0);
    } finally {
      await peer.close();
      await writeCrl(peerCa, peerCrl, []);
    }
  });

  it('queues before the 250, retries while the peer is down, then hands it over once, signed and encrypted, with our certificate and the idempotency key', async () => {
    const info = await submit(op, `alice@${PEER_DOMAIN}`, message(`alice@${PEER_DOMAIN}`, 'Bilan FED-MARK', 'Bilan biologique normal FED-BODY.'));
    expect(info.response).toMatch(/^250 /);
    // Durable in the queue when the 250 came (the peer is not even listening yet), and sealed there.
    const id = await itemFor(PEER_DOMAIN);
    const queued = (await store.getQueueItem(id))!;
    expect(queued.sealedMessage.includes(Buffer.from('FED-'))).toBe(false);
    expect(queued.sealedEnvelope.includes(Buffer.from('alice@'))).toBe(false);
    const listed = await queueCli('list');
    expect(listed.out.find((l) => l.startsWith(id))).toMatch(new RegExp(`^${id}  ${PEER_DOMAIN}  (due|waiting|in delivery)  attempts \\d+  queued \\S+  next \\S+  ${DEMO.jean} -> 1 recipient$`));

    // The peer is down: attempts pile up with backoff, each failure kept as the last error.
    await expect.poll(async () => (await store.getQueueItem(id))?.attempts ?? 0, { timeout: 30_000, interval: 50 }).toBeGreaterThanOrEqual(2);
    const shown = await queueCli('show', id);
    expect(shown.out.join('\n')).toMatch(new RegExp(`last error: +\\S+ 127\\.0\\.0\\.1:${peerPort}: .*ECONNREFUSED`));
    expect(shown.out.join('\n')).toContain(`recipients:    <alice@${PEER_DOMAIN}>`);
    expect(shown.out.join('\n')).toContain('protection:    signed+encrypted');
    expect(shown.out.join('\n')).not.toContain('FED-');

    const peer = await startPeer(peerPort, peerServer, readFileSync(path.join(op.config.certsDir, 'ca', 'root.pem'), 'utf8'));
    peers.push(peer);
    await expect.poll(() => store.getQueueItem(id), { timeout: 30_000, interval: 50 }).toBeNull();
    expect(peer.arrivals).toHaveLength(1);
    const [arrival] = peer.arrivals;
    expect(arrival!.from).toBe(DEMO.jean);
    expect(arrival!.to).toEqual([`alice@${PEER_DOMAIN}`]);
    // Our server certificate was the client certificate.
    const ours = Certificate.parseAll(readFileSync(path.join(op.config.certsDir, 'server', 'server.pem')))[0]!;
    expect(arrival!.client).toBe(certificateSubjectText(ours));
    const raw = arrival!.raw.toString('latin1');
    expect(raw.split('\r\n')[0]).toBe(`${IDEMPOTENCY_HEADER}: ${id}`);
    expect(raw).toMatch(/^Content-Type: application\/(x-)?pkcs7-mime; .*enveloped-data/im);
    expect(raw).not.toContain('FED-BODY');

    // The peer opens it with alice's key and verifies our practitioner's signature.
    const enc = path.join(dir.dir, 'arrival.eml');
    writeFileSync(enc, arrival!.raw);
    await openssl(['cms', '-decrypt', '-in', enc, '-recip', alice.certFile, '-inkey', alice.keyFile, '-out', path.join(dir.dir, 'signed.eml')], dir.dir);
    const verified = await command(
      'openssl',
      ['cms', '-verify', '-in', path.join(dir.dir, 'signed.eml'), '-CAfile', path.join(op.config.certsDir, 'ca', 'chain.pem'), '-out', path.join(dir.dir, 'verified.eml')],
      dir.dir,
    );
    expect(verified.out).toContain('Verification successful');
    const inner = readFileSync(path.join(dir.dir, 'verified.eml'), 'utf8');
    expect(inner).toContain('Bilan biologique normal FED-BODY.');
    expect(inner).toContain('Subject: Bilan FED-MARK');

    const trail = (await store.readAudit(0, 10_000)).filter((r) => r.object === id).map((r) => `${r.action}:${r.outcome}`);
    expect(trail).toEqual(['enqueue:queued', 'relay:delivered']);
  });

  it('sends nothing to a peer whose certificate is not the DN of its domain: the item waits with the reason; mss queue retry and delete', async () => {
    const peer = await startPeer(wrongPort, peerServer, readFileSync(path.join(op.config.certsDir, 'ca', 'root.pem'), 'utf8'));
    peers.push(peer);
    const info = await submit(op, `bob@${WRONG_DOMAIN}`, message(`bob@${WRONG_DOMAIN}`, 'Pour bob', 'Texte.'));
    expect(info.response).toMatch(/^250 /);
    const id = await itemFor(WRONG_DOMAIN);
    await expect
      .poll(async () => (await queueCli('show', id)).out.find((l) => l.startsWith('last error:')) ?? '', CLI_POLL)
      .toContain(`is not the DNCertificatOperateur of ${WRONG_DOMAIN} in the trust space`);
    const shown = (await queueCli('show', id)).out.join('\n');
    expect(shown).toContain(`subject "${certificateSubjectText(peerServer.pem)}"`);
    expect(peer.connections).toBeGreaterThan(0);
    expect(peer.arrivals).toHaveLength(0);

    const retried = await queueCli('retry', id);
    expect(retried.exitCode).toBe(0);
    expect(retried.out[0]).toMatch(new RegExp(`^${id} (is due now|is being delivered right now)`));
    const deleted = await queueCli('delete', id);
    expect(deleted.out).toEqual([`deleted ${id} (${WRONG_DOMAIN}); the sender was not notified`]);
    expect(await store.getQueueItem(id)).toBeNull();
    const gone = await queueCli('show', id);
    expect(gone.exitCode).toBe(2);
    expect(gone.err[0]).toMatch(/^mss: no queue item/);
    const actions = (await store.readAudit(0, 10_000)).filter((r) => r.object === id).map((r) => r.action);
    expect(actions).toEqual(expect.arrayContaining(['enqueue', 'queue-retry', 'queue-delete']));
    expect(peer.arrivals).toHaveLength(0);
  });

  it('refuses at RCPT a domain outside the trust space, and a recipient without a certificate while encryption is required', async () => {
    const before = await store.queueLength();
    await expect(submit(op, 'someone@unknown.test', message('someone@unknown.test', 'x', 'y'))).rejects.toMatchObject({
      response: expect.stringMatching(/^550 5\.7\.1 .*trust space.*\[domain-not-in-trust-space\]/),
    });
    await expect(submit(op, `nocert@${PEER_DOMAIN}`, message(`nocert@${PEER_DOMAIN}`, 'x', 'y'))).rejects.toMatchObject({
      response: expect.stringMatching(/^550 5\.7\.5 Encryption is required.*\[remote-recipient-no-certificate\]/),
    });
    const refusals = (await store.readAudit(0, 10_000)).filter((r) => r.action === 'refuse').map((r) => r.outcome);
    expect(refusals).toEqual(expect.arrayContaining(['domain-not-in-trust-space', 'remote-recipient-no-certificate']));
    expect(await store.queueLength()).toBe(before);
  });
});

describe('outbound mail that cannot be handed over in time', () => {
  let op: TestOperator;
  let store: Store;

  beforeAll(async () => {
    const closed = await freePort();
    // A maximum age of a few seconds and a delay notice at the first failed attempt.
    op = await startOperator(federationConfig({ [PEER_DOMAIN]: `127.0.0.1:${closed}` }, { maxAgeDays: 4 / 86_400, delayNoticeAfterMinutes: 0 }));
    store = await openStore(op.config);
    await importTrust(store, peerCa, peerServer);
  });
  afterAll(async () => {
    await store?.close();
    await op?.dispose();
  });

  it('sends a delay DSN, then a failure DSN to the sender once the peer has been down beyond the maximum age', async () => {
    const info = await submit(op, `alice@${PEER_DOMAIN}`, message(`alice@${PEER_DOMAIN}`, 'Avis FED-LATE', 'Texte.'));
    expect(info.response).toMatch(/^250 /);
    const [item] = await store.listQueue(10);
    await expect.poll(() => store.queueLength(), { timeout: 60_000, interval: 100 }).toBe(0);
    const dsns = (await folderMessages(op, DEMO.jean)).map((raw) => parseDsn(raw));
    const failure = dsns.find((d) => d.recipients[0]!.action === 'failed')!;
    expect(failure.recipients[0]).toMatchObject({ finalRecipient: `alice@${PEER_DOMAIN}`, action: 'failed', status: '4.4.7' });
    expect(failure.recipients[0]!.diagnostic).toMatch(/gave up after \d+ attempts: 127\.0\.0\.1:\d+: .*ECONNREFUSED/);
    expect(failure.originalSubject).toBe('Avis FED-LATE');
    expect(failure.message.from).toContain('MAILER-DAEMON@hopital-demo.mssante.test');
    expect(dsns.filter((d) => d.recipients[0]!.action === 'delayed')).toHaveLength(1);
    const trail = (await store.readAudit(0, 10_000)).filter((r) => r.object === item!.id).map((r) => `${r.action}:${r.outcome}`);
    expect(trail).toEqual(['enqueue:queued', 'bounce:delayed', 'bounce:failed']);
  });
});
