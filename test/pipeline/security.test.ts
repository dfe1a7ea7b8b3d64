import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Keystore } from '../../src/crypto/keystore.js';
import { openKeyring, pkiOptions } from '../../src/init.js';
import { openStore } from '../../src/store/open.js';
import { DEMO, passwordOf, startOperator, type TestOperator } from '../helpers/operator.js';

const run = promisify(execFile);

/**
 * The security stages end to end: local mail protected on request (S/MIME Direct profile, or PGP/MIME),
 * then opened for each recipient with its keys; messages protected by the client (openssl cms) opened too;
 * each failure refused with its own code, nothing delivered.
 */

function message(from: string, to: string, subject: string, body: string, extra: string[] = []): string {
  return [`From: ${from}`, `To: ${to}`, `Subject: ${subject}`, `Message-ID: <${Math.random().toString(36).slice(2)}@test>`, 'Date: Wed, 25 Nov 2026 10:00:00 +0100', ...extra, 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', '', body, ''].join('\r\n');
}

describe('security stages (S/MIME and OpenPGP between local mailboxes)', () => {
  let op: TestOperator;
  beforeAll(async () => {
    op = await startOperator();
  });
  afterAll(() => op?.dispose());

  const send = (from: string, to: string, raw: string | Buffer) =>
    nodemailer
      .createTransport({ host: '127.0.0.1', port: op.ports.submission, requireTLS: true, auth: { user: from, pass: passwordOf(op, from) }, tls: { ca: op.ca, servername: 'localhost' } })
      .sendMail({ envelope: { from, to: [to] }, raw });

  async function lastMessage(user: string): Promise<string> {
    const client = new ImapFlow({ host: '127.0.0.1', port: op.ports.imaps, secure: true, auth: { user, pass: passwordOf(op, user) }, tls: { ca: op.ca, servername: 'localhost' }, logger: false });
    await client.connect();
    try {
      const box = await client.mailboxOpen('INBOX');
      const msg = await client.fetchOne(String(box.exists), { source: true });
      return msg ? msg.source!.toString('utf8') : '';
    } finally {
      await client.logout();
    }
  }

  async function inboxCount(user: string): Promise<number> {
    const client = new ImapFlow({ host: '127.0.0.1', port: op.ports.imaps, secure: true, auth: { user, pass: passwordOf(op, user) }, tls: { ca: op.ca, servername: 'localhost' }, logger: false });
    await client.connect();
    try {
      return (await client.mailboxOpen('INBOX')).exists;
    } finally {
      await client.logout();
    }
  }

  async function keystore<T>(work: (k: Keystore) => Promise<T>): Promise<T> {
    const store = await openStore(op.config);
    try {
      const keyring = openKeyring(op.config);
      return await work(new Keystore({ store, keyring, pki: pkiOptions(op.config, keyring) }));
    } finally {
      await store.close();
    }
  }

  it('signs and encrypts on request (S/MIME), and the recipient reads it opened, verified and labelled', async () => {
    const raw = message(DEMO.jean, DEMO.claire, 'Compte rendu protégé', 'Résultats normaux.', ['X-MSS-Protection: smime', 'X-MSS-Verification: method=forged; signature=valid']);
    const info = await send(DEMO.jean, DEMO.claire, raw);
    expect(info.response).toMatch(/^250 /);
    const got = await lastMessage(DEMO.claire);
    const verification = got.match(/^X-MSS-Verification: (.*)$/gm) ?? [];
    expect(verification).toHaveLength(1);
    expect(verification[0]).toMatch(/method=smime; signature=valid; signer=jean\.dupont@hopital-demo\.mssante\.test; practitioner=8\d{11}; issuer=.*; encryption=aes-256-cbc; headers=protected/);
    expect(got).not.toMatch(/X-MSS-Protection/i);
    expect(got).toContain('Résultats normaux.');
    expect(got).toMatch(/^Received: /m);
  });

  it('signs and encrypts on request with OpenPGP (PGP/MIME)', async () => {
    const raw = message(DEMO.claire, DEMO.jean, 'Avis PGP', 'Avis favorable.', ['X-MSS-Protection: pgp']);
    await send(DEMO.claire, DEMO.jean, raw);
    const got = await lastMessage(DEMO.jean);
    expect(got).toMatch(/^X-MSS-Verification: method=pgp; signature=valid; signer=claire\.martin@hopital-demo\.mssante\.test; fingerprint=[0-9a-f]+; encryption=yes/m);
    expect(got).toContain('Avis favorable.');
  });

  it('opens a message the sending client protected itself (openssl cms sign, then encrypt to the recipient)', async () => {
    const dir = op.dir;
    const { signerKey, signerCert, recipientCert } = await keystore(async (k) => {
      const sign = await k.credentialsFor(DEMO.jean, 'sign');
      const cert = await k.encryptionCertificate(DEMO.claire);
      return { signerKey: sign.key.export({ type: 'pkcs8', format: 'pem' }).toString(), signerCert: sign.certificate.pem, recipientCert: cert!.pem };
    });
    writeFileSync(path.join(dir, 'k.pem'), signerKey, { mode: 0o600 });
    writeFileSync(path.join(dir, 'c.pem'), signerCert);
    writeFileSync(path.join(dir, 'r.pem'), recipientCert);
    writeFileSync(path.join(dir, 'in.eml'), message(DEMO.jean, DEMO.claire, 'Par openssl', 'Signé puis chiffré par le client.'));
    await run('openssl', ['cms', '-sign', '-in', path.join(dir, 'in.eml'), '-signer', path.join(dir, 'c.pem'), '-inkey', path.join(dir, 'k.pem'), '-out', path.join(dir, 'signed.eml')]);
    await run('openssl', ['cms', '-encrypt', '-aes-256-cbc', '-in', path.join(dir, 'signed.eml'), '-out', path.join(dir, 'enc.eml'), '-from', DEMO.jean, '-to', DEMO.claire, '-subject', 'Par openssl', path.join(dir, 'r.pem')]);
    const { stdout: encrypted } = await run('cat', [path.join(dir, 'enc.eml')], { encoding: 'buffer' });
    await send(DEMO.jean, DEMO.claire, encrypted);
    const got = await lastMessage(DEMO.claire);
    expect(got).toMatch(/^X-MSS-Verification: method=smime; signature=valid; signer=jean\.dupont@/m);
    expect(got).toContain('Signé puis chiffré par le client.');
  });

  it('refuses a signed message altered in transit (550 5.7.7) and delivers nothing', async () => {
    const before = await inboxCount(DEMO.claire);
    const { key, cert } = await keystore(async (k) => {
      const sign = await k.credentialsFor(DEMO.jean, 'sign');
      return { key: sign.key.export({ type: 'pkcs8', format: 'pem' }).toString(), cert: sign.certificate.pem };
    });
    writeFileSync(path.join(op.dir, 'k2.pem'), key, { mode: 0o600 });
    writeFileSync(path.join(op.dir, 'c2.pem'), cert);
    writeFileSync(path.join(op.dir, 'in2.eml'), message(DEMO.jean, DEMO.claire, 'Signé', 'Dose : 5 mg.'));
    const { stdout } = await run('openssl', [
      'cms', '-sign', '-in', path.join(op.dir, 'in2.eml'), '-signer', path.join(op.dir, 'c2.pem'), '-inkey', path.join(op.dir, 'k2.pem'),
      '-from', DEMO.jean, '-to', DEMO.claire, '-subject', 'Signe',
    ]);
    const altered = stdout.replace('Dose : 5 mg.', 'Dose : 50 mg');
    await expect(send(DEMO.jean, DEMO.claire, altered)).rejects.toMatchObject({ responseCode: 550, response: expect.stringMatching(/5\.7\.7 .*\[security-bad-signature\]/) });
    expect(await inboxCount(DEMO.claire)).toBe(before);
  });

  it('refuses protection when the sender has no valid signing certificate any more (revoked)', async () => {
    await keystore(async (k) => {
      for (const c of await k.list(DEMO.claire)) if (c.format === 'x509' && c.status === 'valid') await k.revoke(DEMO.claire, c.fingerprint, 'keyCompromise');
    });
    const raw = message(DEMO.claire, DEMO.jean, 'Après révocation', 'x', ['X-MSS-Protection: smime']);
    await expect(send(DEMO.claire, DEMO.jean, raw)).rejects.toMatchObject({ responseCode: 550, response: expect.stringMatching(/\[security-no-signing-credential\]/) });
  });
});
