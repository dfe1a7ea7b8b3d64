import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Keystore } from '../../src/crypto/keystore.js';
import { type Certificate, protectOutbound, type SigningCredential } from '../../src/crypto/smime/index.js';
import { seedDemoDirectory } from '../../src/directory/demo.js';
import { openKeyring, pkiOptions } from '../../src/init.js';
import { exportTrustList } from '../../src/policy/trust-list.js';
import { importTrustList } from '../../src/policy/trust-store.js';
import { openTrustStore } from '../../src/store/trust.js';
import type { AuditRow, Store } from '../../src/store/types.js';
import { rppsOf } from '../helpers/directory-files.js';
import { tempDir } from '../helpers/engines.js';
import { devPkiFiles, smimeTrust, withOperatorStore } from '../helpers/federation.js';
import { DEMO, passwordOf, startOperator, type TestOperator } from '../helpers/operator.js';
import { RelayClient, relay, type ClientCertificate } from './client.js';
import { makePeerOperator, type PeerOperator } from './peer.js';
import { issueLeaf, makeAuthority, makeCrl } from './pki.js';

/**
 * The inbound relay end to end: a peer operator (its own dev PKI, listed in the trust space we imported) relays
 * signed and encrypted mail over STARTTLS with its server certificate; every way a peer can be wrong gets its own
 * refusal, an audit record, and nothing delivered.
 */

const PEER_DOMAIN = 'clinique-paire.test';
const OTHER_DOMAIN = 'autre-operateur.test';
const PAUL = `paul.durand@${PEER_DOMAIN}`;
const NOT_LISTED = `inconnu.lefevre@${PEER_DOMAIN}`;

describe('inbound relay between operators', () => {
  const dirs: { dispose(): void }[] = [];
  let op: TestOperator;
  let peer: PeerOperator;
  let impostor: PeerOperator;
  let paul: SigningCredential;
  let unlisted: SigningCredential;
  let claireCert: Certificate;
  let port: number;
  let oursDir: string;
  const paulRpps = rppsOf(4242);
  /** TLS client certificates from a CA of the trust bundle that are wrong in one way each. */
  const bad: Record<'expired' | 'notYetValid' | 'revoked' | 'serverOnly', ClientCertificate> = {} as never;

  const withStore = <T>(work: (store: Store) => Promise<T>): Promise<T> => withOperatorStore(op, work);

  beforeAll(async () => {
    const peerDir = tempDir('mss-peer-');
    const impostorDir = tempDir('mss-impostor-');
    const ours = tempDir('mss-relay-op-');
    dirs.push(peerDir, impostorDir, ours);
    oursDir = ours.dir;
    peer = await makePeerOperator(peerDir.dir, PEER_DOMAIN);
    // Another PKI that issued a certificate with exactly the DN the trust space lists for the peer.
    impostor = await makePeerOperator(impostorDir.dir, PEER_DOMAIN);
    paul = await peer.practitioner({ address: PAUL, rpps: paulRpps, givenName: 'Paul', surname: 'Durand' });
    unlisted = await peer.practitioner({ address: NOT_LISTED, rpps: rppsOf(4243), givenName: 'Inès', surname: 'Lefèvre' });

    const testCa = await makeAuthority('Relay test CA');
    const subject = 'C=FR, O=MSS DEV, OU=DEV IGC-SANTE, CN=mx.clinique-paire.test';
    const day = 86_400_000;
    const leaf = async (o: Parameters<typeof issueLeaf>[1]) => {
      const l = await issueLeaf(testCa, o);
      return { leaf: l, certificate: { cert: l.certPem, key: l.keyPem } };
    };
    bad.expired = (await leaf({ subject, notBefore: new Date(Date.now() - 30 * day), notAfter: new Date(Date.now() - day) })).certificate;
    bad.notYetValid = (await leaf({ subject, notBefore: new Date(Date.now() + day), notAfter: new Date(Date.now() + 30 * day) })).certificate;
    const revoked = await leaf({ subject });
    bad.revoked = revoked.certificate;
    bad.serverOnly = (await leaf({ subject, ekus: ['1.3.6.1.5.5.7.3.1'] })).certificate;
    const testCrl = path.join(ours.dir, 'test-ca.crl.pem');
    writeFileSync(testCrl, await makeCrl(testCa, [revoked.leaf.serialNumber]));

    const certsDir = path.join(ours.dir, 'certs');
    op = await startOperator({
      certsDir,
      // Our S/MIME trust also covers the peer's practitioners (its dev root, intermediates and CRLs).
      security: smimeTrust(devPkiFiles(certsDir), [peer.files]),
      relay: { maxRecipients: 3, maxConnectionsPerIp: 4, maxMessageSize: 256 * 1024, crlFiles: [...peer.files.crls, testCrl] },
    });
    port = op.ports.relay;

    await withStore(async (store) => {
      const list = exportTrustList({
        generatedAt: Date.now(),
        domains: [
          { name: PEER_DOMAIN, description: 'Clinique paire', operatorDn: peer.dn, responsableContact: '', supportContact: '', updatedAt: Date.now() },
          { name: OTHER_DOMAIN, description: 'Autre', operatorDn: 'CN=mx.autre-operateur.test,O=Autre Operateur,C=FR', responsableContact: '', supportContact: '', updatedAt: Date.now() },
        ],
      });
      await importTrustList(openTrustStore(store), list, { source: 'test', caBundle: peer.caBundle + testCa.pem });
      // The national directory knows Paul (and the demo practitioners), not the other peer practitioner.
      await seedDemoDirectory(store, path.join(ours.dir, 'directory'), {
        practitioners: [
          { rpps: '10001234565', surname: 'DUPONT', givenName: 'Jean', address: DEMO.jean, profession: ['10', 'Médecin'], specialty: ['SM04', 'Cardiologie'] },
          { rpps: '10007654329', surname: 'MARTIN', givenName: 'Claire', address: DEMO.claire, profession: ['10', 'Médecin'], specialty: ['SM26', 'Médecine générale'] },
          { rpps: paulRpps, surname: 'DURAND', givenName: 'Paul', address: PAUL, profession: ['10', 'Médecin'], specialty: ['SM26', 'Médecine générale'] },
        ],
        organisations: [{ finess: '750000002', name: 'HOPITAL DEMO', address: DEMO.dpi, type: 'APP', service: 'DPI' }],
        structureFiness: '750000002',
        structureName: 'HOPITAL DEMO',
      });
      const keyring = openKeyring(op.config);
      claireCert = (await new Keystore({ store, keyring, pki: pkiOptions(op.config, keyring) }).encryptionCertificate(DEMO.claire))!;
    });
  });

  afterAll(async () => {
    await op?.dispose();
    for (const d of dirs) d.dispose();
  });

  function plainMessage(from: string, to: string, subject: string, body: string): string {
    return [
      `From: ${from}`,
      `To: ${to}`,
      `Subject: ${subject}`,
      `Message-ID: <${randomBytes(8).toString('hex')}@${PEER_DOMAIN}>`,
      'Date: Wed, 25 Nov 2026 10:00:00 +0100',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      body,
      '',
    ].join('\r\n');
  }

  /** Signed by `signer`, encrypted to Claire: what the peer operator's outbound stage sends; `outer` header lines go outside. */
  async function secured(signer: SigningCredential, from: string, body: string, outer: string[] = []): Promise<Buffer> {
    const r = await protectOutbound({ message: Buffer.from(plainMessage(from, DEMO.claire, 'Compte rendu', body)), signer, recipients: [claireCert], senderCertificate: null });
    if (!r.ok) throw new Error(`${r.code}: ${r.detail}`);
    return Buffer.concat([Buffer.from(outer.map((l) => `${l}\r\n`).join('')), r.message]);
  }

  async function inbox(user: string): Promise<{ count: number; last: string }> {
    const client = new ImapFlow({ host: '127.0.0.1', port: op.ports.imaps, secure: true, auth: { user, pass: passwordOf(op, user) }, tls: { ca: op.ca, servername: 'localhost' }, logger: false });
    await client.connect();
    try {
      const box = await client.mailboxOpen('INBOX');
      if (box.exists === 0) return { count: 0, last: '' };
      const msg = await client.fetchOne(String(box.exists), { source: true });
      return { count: box.exists, last: msg ? msg.source!.toString('utf8') : '' };
    } finally {
      await client.logout();
    }
  }

  const auditRows = (): Promise<AuditRow[]> => withStore((s) => s.readAudit(0, 100_000));

  /** Relays with `certificate` and checks the refusal: reply, audit record, nothing delivered. */
  async function expectRefused(
    step: 'mail' | 'rcpt' | 'data',
    code: string,
    reply: RegExp,
    o: { certificate?: ClientCertificate; plain?: boolean; mailFrom?: string; rcptTo?: string[]; message?: string | Buffer },
  ): Promise<void> {
    const before = (await inbox(DEMO.claire)).count;
    const auditBefore = (await auditRows()).length;
    const x = await relay(port, {
      ca: op.ca,
      mailFrom: o.mailFrom ?? PAUL,
      rcptTo: o.rcptTo ?? [DEMO.claire],
      message: o.message ?? (await secured(paul, PAUL, 'Ne doit pas arriver.')),
      ...(o.plain ? { plain: true } : {}),
      ...(o.certificate ? { certificate: o.certificate } : {}),
    });
    const answer = step === 'mail' ? x.mail : step === 'rcpt' ? x.rcpt.find((r) => !r.startsWith('250')) : x.data;
    expect(answer, JSON.stringify(x)).toMatch(reply);
    expect(answer).toContain(`[${code}]`);
    if (step !== 'data') expect(x.data).toBeUndefined();
    const records = (await auditRows()).slice(auditBefore);
    expect(records.some((r) => r.action === 'refuse' && r.outcome === code), JSON.stringify(records)).toBe(true);
    expect((await inbox(DEMO.claire)).count).toBe(before);
  }

  it('relays a signed and encrypted message from a trusted peer: delivered decrypted and verified, with our trace', async () => {
    const before = (await inbox(DEMO.claire)).count;
    const x = await relay(port, {
      ca: op.ca,
      certificate: peer.tls,
      mailFrom: PAUL,
      rcptTo: [DEMO.claire],
      message: await secured(paul, PAUL, 'Échographie normale.', ['X-MSS-Idempotency-Key: first-message-1', 'X-MSS-Verification: method=forged; signature=valid']),
    });
    expect(x.starttls).toMatch(/^220 /);
    expect(x.ehlo).not.toMatch(/AUTH/);
    expect(x.ehlo).not.toMatch(/STARTTLS/);
    expect(x.mail).toMatch(/^250 /);
    expect(x.rcpt).toEqual([expect.stringMatching(/^250 /)]);
    expect(x.data).toMatch(/^250 2\.6\.0 Message accepted, queued as \S+/);
    const { count, last } = await inbox(DEMO.claire);
    expect(count).toBe(before + 1);
    expect(last).toContain('Échographie normale.');
    expect(last.match(/^X-MSS-Verification: .*$/gm)).toEqual([
      expect.stringMatching(new RegExp(`method=smime; signature=valid; signer=${PAUL.replace(/\./g, '\\.')}; practitioner=8${paulRpps}; .*encryption=aes-256-cbc; headers=protected`)),
    ]);
    expect(last).toMatch(new RegExp(`^Return-Path: <${PAUL.replace(/\./g, '\\.')}>`));
    expect(last).toMatch(/^Received: from mx\.peer\.test \(\[127\.0\.0\.1\]\)\r\n\t\(peer certificate "CN=mx\.clinique-paire\.test,OU=DEV IGC-SANTE,O=MSS DEV,C=FR" verified\)\r\n\tby localhost \(mss\) \(using TLSv1\.[23] with cipher [^)]+\)\r\n\twith ESMTPS id /m);
    expect(last).not.toMatch(/X-MSS-Idempotency-Key/i);
    const accepted = (await auditRows()).filter((r) => r.action === 'relay-accept');
    expect(accepted.at(-1)).toMatchObject({ actor: PAUL, outcome: 'accepted' });
    expect(JSON.parse(accepted.at(-1)!.detail)).toMatchObject({ peerDomain: PEER_DOMAIN, peerDn: peer.dn, idempotencyKey: 'first-message-1' });
  });

  it('offers STARTTLS and no AUTH in clear, and refuses MAIL before STARTTLS (530 5.7.0)', async () => {
    const { client, greeting } = await RelayClient.connect(port);
    try {
      expect(greeting).toMatch(/^220 /);
      const ehlo = await client.command('EHLO mx.peer.test');
      expect(ehlo).toMatch(/STARTTLS/);
      expect(ehlo).not.toMatch(/AUTH/);
    } finally {
      client.close();
    }
    await expectRefused('mail', 'relay-tls-required', /^530 5\.7\.0 /, { plain: true });
  });

  it('refuses a peer without a client certificate (530 5.7.0)', async () => {
    await expectRefused('mail', 'relay-certificate-required', /^530 5\.7\.0 /, {});
  });

  it('refuses a certificate with the listed DN from a CA outside the trust space (550 5.7.5)', async () => {
    expect(impostor.dn).toBe(peer.dn);
    await expectRefused('mail', 'relay-untrusted-certificate', /^550 5\.7\.5 /, { certificate: impostor.tls });
  });

  it('refuses an expired and a not yet valid certificate (550 5.7.5)', async () => {
    await expectRefused('mail', 'relay-certificate-expired', /^550 5\.7\.5 /, { certificate: bad.expired });
    await expectRefused('mail', 'relay-certificate-not-yet-valid', /^550 5\.7\.5 /, { certificate: bad.notYetValid });
  });

  it('refuses a certificate its CA revoked (CRL) (550 5.7.5)', async () => {
    await expectRefused('mail', 'relay-certificate-revoked', /^550 5\.7\.5 /, { certificate: bad.revoked });
  });

  it('refuses a certificate that is not for TLS client authentication (550 5.7.5)', async () => {
    await expectRefused('mail', 'relay-untrusted-certificate', /^550 5\.7\.5 /, { certificate: bad.serverOnly });
  });

  it('refuses a MAIL FROM domain whose trust entry names another certificate (550 5.7.1)', async () => {
    await expectRefused('mail', 'relay-dn-mismatch', /^550 5\.7\.1 /, { certificate: peer.tls, mailFrom: `someone@${OTHER_DOMAIN}` });
  });

  it('refuses a MAIL FROM domain outside the trust space (550 5.7.1)', async () => {
    await expectRefused('mail', 'relay-unknown-domain', /^550 5\.7\.1 /, { certificate: peer.tls, mailFrom: 'someone@inconnu.test' });
  });

  it('refuses recipients that are not ours (550 5.7.1) or unknown here (550 5.1.1)', async () => {
    await expectRefused('rcpt', 'relay-recipient-not-local', /^550 5\.7\.1 /, { certificate: peer.tls, rcptTo: [`someone@${OTHER_DOMAIN}`] });
    await expectRefused('rcpt', 'unknown-recipient', /^550 5\.1\.1 /, { certificate: peer.tls, rcptTo: ['nobody@hopital-demo.mssante.test'] });
  });

  it('answers AUTH, in clear or over TLS, with its own refusal (502 5.5.1) and an audit record', async () => {
    const auditBefore = (await auditRows()).length;
    const { client } = await RelayClient.connect(port);
    try {
      await client.command('EHLO mx.peer.test');
      expect(await client.command('AUTH PLAIN AGpvaG4Ac2VjcmV0')).toMatch(/^502 5\.5\.1 .*\[relay-auth-not-offered\]/);
      await client.startTls(op.ca, peer.tls);
      const ehlo = await client.command('EHLO mx.peer.test');
      expect(ehlo).not.toMatch(/AUTH/);
      expect(await client.command('AUTH LOGIN')).toMatch(/^502 5\.5\.1 .*\[relay-auth-not-offered\]/);
      // The session goes on: the refusal changed nothing.
      expect(await client.command(`MAIL FROM:<${PAUL}>`)).toMatch(/^250 /);
    } finally {
      client.close();
    }
    const records = (await auditRows()).slice(auditBefore).filter((r) => r.outcome === 'relay-auth-not-offered');
    expect(records).toHaveLength(2);
    expect(records[0]).toMatchObject({ action: 'refuse', object: 'AUTH' });
  });

  it('refuses a message whose From domain is another operator\'s, though MAIL FROM was the peer\'s (550 5.7.1)', async () => {
    const forged = Buffer.from(plainMessage(`someone@${OTHER_DOMAIN}`, DEMO.claire, 'Usurpation', 'Non.'));
    await expectRefused('data', 'relay-dn-mismatch', /^550 5\.7\.1 /, { certificate: peer.tls, message: forged });
  });

  it('refuses relayed mail that is not signed and encrypted (550 5.7.5)', async () => {
    await expectRefused('data', 'security-not-encrypted', /^550 5\.7\.5 /, {
      certificate: peer.tls,
      message: plainMessage(PAUL, DEMO.claire, 'En clair', 'Non chiffré.'),
    });
  });

  it('checks the sender against the directory: a signed message from an address it does not list is refused (550 5.7.1)', async () => {
    await expectRefused('data', 'sender-not-in-directory', /^550 5\.7\.1 /, {
      certificate: peer.tls,
      mailFrom: NOT_LISTED,
      message: await secured(unlisted, NOT_LISTED, 'Inconnue.'),
    });
  });

  it('delivers one idempotency key once: the repeat gets 250 and no second copy', async () => {
    const before = (await inbox(DEMO.claire)).count;
    const message = await secured(paul, PAUL, 'Une seule fois.', ['X-MSS-Idempotency-Key: q-item.42:retry-safe']);
    const first = await relay(port, { ca: op.ca, certificate: peer.tls, mailFrom: PAUL, rcptTo: [DEMO.claire], message });
    const second = await relay(port, { ca: op.ca, certificate: peer.tls, mailFrom: PAUL, rcptTo: [DEMO.claire], message });
    expect(first.data).toMatch(/^250 2\.6\.0 Message accepted/);
    expect(second.data).toMatch(/^250 2\.6\.0 Message already accepted \(same X-MSS-Idempotency-Key\), not delivered again/);
    expect((await inbox(DEMO.claire)).count).toBe(before + 1);
    const records = (await auditRows()).filter((r) => r.action === 'relay-accept' && JSON.parse(r.detail).idempotencyKey === 'q-item.42:retry-safe');
    expect(records.map((r) => r.outcome)).toEqual(['accepted', 'duplicate']);

    // Two attempts at once (a retry while the first is still in flight): one delivery, two 250s.
    const again = await secured(paul, PAUL, 'En parallèle.', ['X-MSS-Idempotency-Key: q-item.43']);
    const both = await Promise.all([0, 1].map(() => relay(port, { ca: op.ca, certificate: peer.tls, mailFrom: PAUL, rcptTo: [DEMO.claire], message: again })));
    expect(both.map((x) => x.data)).toEqual([expect.stringMatching(/^250 2\.6\.0 /), expect.stringMatching(/^250 2\.6\.0 /)]);
    expect((await inbox(DEMO.claire)).count).toBe(before + 2);
  });

  it('refuses a malformed or repeated idempotency key (550 5.6.0)', async () => {
    for (const outer of [['X-MSS-Idempotency-Key: has spaces inside'], ['X-MSS-Idempotency-Key: a', 'X-MSS-Idempotency-Key: b'], [`X-MSS-Idempotency-Key: ${'k'.repeat(129)}`]]) {
      await expectRefused('data', 'relay-bad-idempotency-key', /^550 5\.6\.0 /, { certificate: peer.tls, message: await secured(paul, PAUL, 'Clé invalide.', outer) });
    }
  });

  it('accepts a notification with a null sender when its From domain is the peer\'s', async () => {
    const before = (await inbox(DEMO.claire)).count;
    const x = await relay(port, { ca: op.ca, certificate: peer.tls, mailFrom: '', rcptTo: [DEMO.claire], message: await secured(paul, PAUL, 'Accusé de réception.') });
    expect(x.mail).toMatch(/^250 /);
    expect(x.data).toMatch(/^250 2\.6\.0 /);
    const { count, last } = await inbox(DEMO.claire);
    expect(count).toBe(before + 1);
    expect(last).toMatch(/^Return-Path: <>/);
  });

  it('enforces the limits: recipients per transaction (452 4.5.3), message size (552 5.3.4), connections per address (421 4.7.0)', async () => {
    const x = await relay(port, { ca: op.ca, certificate: peer.tls, mailFrom: PAUL, rcptTo: [DEMO.claire, DEMO.jean, DEMO.dpi, DEMO.claire.replace('claire', 'x')] });
    expect(x.rcpt.slice(0, 3)).toEqual([expect.stringMatching(/^250 /), expect.stringMatching(/^250 /), expect.stringMatching(/^250 /)]);
    expect(x.rcpt[3]).toMatch(/^452 4\.5\.3 .*\[too-many-recipients\]/);

    const big = plainMessage(PAUL, DEMO.claire, 'Trop gros', 'x'.repeat(76).concat('\r\n').repeat(4000));
    const auditBefore = (await auditRows()).length;
    const y = await relay(port, { ca: op.ca, certificate: peer.tls, mailFrom: PAUL, rcptTo: [DEMO.claire], message: big });
    expect(y.data).toMatch(/^552 5\.3\.4 /);
    expect((await auditRows()).slice(auditBefore).some((r) => r.outcome === 'message-too-large')).toBe(true);

    // Five at once from one address, against a limit of four (connections of earlier tests may still be closing).
    const open: RelayClient[] = [];
    const greetings: string[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        const { client, greeting } = await RelayClient.connect(port);
        open.push(client);
        greetings.push(greeting);
      }
      expect(greetings.filter((g) => g.startsWith('220')).length).toBeLessThanOrEqual(4);
      expect(greetings.at(-1)).toMatch(/^421 4\.7\.0 /);
    } finally {
      for (const c of open) c.close();
    }
  });

  it('relays a message from an independent client: openssl s_client -starttls smtp with the peer\'s certificate', async () => {
    const before = (await inbox(DEMO.claire)).count;
    const certFile = path.join(oursDir, 'peer-client.pem');
    const keyFile = path.join(oursDir, 'peer-client.key');
    const caFile = path.join(op.config.certsDir, 'ca', 'root.pem');
    writeFileSync(certFile, peer.tls.cert);
    writeFileSync(keyFile, peer.tls.key, { mode: 0o600 });
    const message = (await secured(paul, PAUL, 'Envoyé par openssl.')).toString('latin1').replace(/^\./gm, '..');
    const transcript = await sClient(
      ['s_client', '-starttls', 'smtp', '-connect', `127.0.0.1:${port}`, '-cert', certFile, '-key', keyFile, '-CAfile', caFile, '-servername', 'localhost', '-quiet', '-nocommands', '-verify_return_error'],
      'EHLO mx.peer.test\r\n',
      [
        [/^250 /m, `MAIL FROM:<${PAUL}>\r\n`],
        [/^250 /m, `RCPT TO:<${DEMO.claire}>\r\n`],
        [/^250 /m, 'DATA\r\n'],
        [/^354 /m, `${message}.\r\n`],
        [/^250 2\.6\.0 /m, 'QUIT\r\n'],
      ],
    );
    expect(transcript).toMatch(/^250 2\.6\.0 Message accepted/m);
    const { count, last } = await inbox(DEMO.claire);
    expect(count).toBe(before + 1);
    expect(last).toContain('Envoyé par openssl.');
  });
});

/**
 * Drives `openssl` interactively (asynchronously: the server lives in this process): `first` is written at once
 * (s_client reads it once its STARTTLS handshake is done), then each step waits until the output since the
 * previous step matches and writes its input. Resolves with the whole output.
 */
function sClient(args: string[], first: string, steps: [RegExp, string][]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.write(first);
    let out = '';
    let since = 0;
    let step = 0;
    const advance = () => {
      while (step < steps.length && steps[step]![0].test(out.slice(since))) {
        since = out.length;
        child.stdin.write(steps[step]![1]);
        step++;
      }
      if (step === steps.length) child.stdin.end();
    };
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      advance();
    });
    child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', () => (step === steps.length ? resolve(out) : reject(new Error(`openssl stopped at step ${step}: ${out}`))));
  });
}
