/**
 * protectOutbound / processInbound end to end with the dev PKI's own practitioner certificates (a signature
 * certificate without keyEncipherment, an authentication certificate that receives encrypted mail), CRLs
 * from the dev PKI, and the algorithm and layout options.
 */
import { createPrivateKey, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devPkiPaths, type DevPkiOptions, ensureDevPki, issuePractitionerCertificates, loadMailboxCredential, revokeCertificate } from '../../src/crypto/devpki.js';
import { Keyring } from '../../src/crypto/seal.js';
import {
  Certificate,
  CrlProvider,
  type DecryptionKey,
  processInbound,
  protectOutbound,
  type SigningCredential,
  type TrustOptions,
} from '../../src/crypto/smime/index.js';

const JEAN = { address: 'jean.dupont@hopital-demo.mssante.test', rpps: '10001234567', givenName: 'Jean', surname: 'Dupont', organisation: 'Hôpital Démo' };
const CLAIRE = { address: 'claire.martin@hopital-demo.mssante.test', rpps: '10007654321', givenName: 'Claire', surname: 'Martin', organisation: 'Hôpital Démo' };

let root: string;
let opts: DevPkiOptions;
let jeanSign: SigningCredential;
let jeanAuth: DecryptionKey;
let claireAuth: DecryptionKey;
let trust: TrustOptions;

function load(address: string, use: 'sign' | 'encrypt') {
  const c = loadMailboxCredential(opts.certsDir, opts.keyring, address, use);
  return { key: createPrivateKey(c.key), certificate: Certificate.from(c.cert), chain: Certificate.parseAll(c.chain) };
}

function message(body = 'Bonjour Claire,\r\nvoici le compte rendu.\r\n', extra = ''): Buffer {
  return Buffer.from(
    `From: Jean Dupont <${JEAN.address}>\r\nTo: Claire Martin <${CLAIRE.address}>\r\nSubject: XDM/1.0/DDM+CR DUPONT Pierre 19500101\r\n` +
      `Date: Tue, 24 Nov 2026 10:00:00 +0100\r\nMessage-ID: <a1@hopital-demo.mssante.test>\r\nX-MSS-NIL: DEV000001\r\n${extra}` +
      `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${body}`,
    'utf8',
  );
}

async function send(msg: Buffer, options = {}) {
  const r = await protectOutbound({ message: msg, signer: jeanSign, recipients: [claireAuth.certificate], senderCertificate: jeanAuth.certificate, trust, options });
  if (!r.ok) throw new Error(`${r.code}: ${r.detail}`);
  return r;
}

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'mss-smime-agent-'));
  opts = {
    certsDir: path.join(root, 'certs'),
    keyring: new Keyring(randomBytes(32)),
    keyAlgorithm: 'RSA-2048',
    hash: 'SHA-256',
    caValidityDays: 3650,
    leafValidityDays: 825,
    serverNames: [],
  };
  await ensureDevPki(opts);
  await issuePractitionerCertificates(opts, JEAN);
  await issuePractitionerCertificates(opts, CLAIRE);
  jeanSign = load(JEAN.address, 'sign');
  const ja = load(JEAN.address, 'encrypt');
  jeanAuth = { key: ja.key, certificate: ja.certificate };
  const ca = load(CLAIRE.address, 'encrypt');
  claireAuth = { key: ca.key, certificate: ca.certificate };
  const p = devPkiPaths(opts.certsDir);
  trust = {
    anchors: Certificate.parseAll(readFileSync(p.caCert('root'))),
    intermediates: Certificate.parseAll(readFileSync(p.caCert('persons'))),
    revocation: new CrlProvider({ files: [p.caCrl('persons'), p.caCrl('root')], distributionPoints: false }),
  };
}, 120_000);

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('Direct profile with the dev PKI', () => {
  it('the dev PKI certificates are read as expected', () => {
    expect(jeanSign.certificate.keyUsage).toBe(0x3); // digitalSignature | nonRepudiation
    expect(claireAuth.certificate.keyUsage! & 0x4).toBe(0x4); // keyEncipherment
    expect(jeanSign.certificate.emails).toEqual([JEAN.address]);
    expect(jeanSign.certificate.subject).toContain('serialNumber=810001234567');
  });

  it('Jean signs and encrypts; Claire decrypts, verifies and sees the protected message and who signed it', async () => {
    const msg = message();
    const out = await send(msg);
    const text = out.message.toString('latin1');
    expect(text).toContain('X-MSS-NIL: DEV000001\r\n');
    expect(text).not.toContain('voici le compte rendu');
    expect(text).toMatch(/Content-Type: application\/pkcs7-mime; smime-type=enveloped-data; name=smime\.p7m/);
    const r = await processInbound({ message: out.message, decryptionKeys: [claireAuth], trust });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    expect(r.message.equals(msg)).toBe(true);
    const v = r.verification;
    expect(v).toMatchObject({
      signed: true,
      encrypted: true,
      wrapped: true,
      signerAddress: JEAN.address,
      binding: 'address',
      practitionerId: '810001234567',
      digest: 'sha256',
      signatureAlgorithm: 'rsa-pkcs1',
      contentEncryption: 'aes-256-cbc',
      keyTransport: 'rsa-pkcs1',
    });
    expect(v.certificate?.equals(jeanSign.certificate)).toBe(true);
    expect(v.decryptedWith?.equals(claireAuth.certificate)).toBe(true);
    expect(v.chain).toHaveLength(3);
    expect(Math.abs(v.signingTime!.getTime() - Date.now())).toBeLessThan(60_000);
  });

  it("the sender's own copy decrypts with the sender's key", async () => {
    const out = await send(message());
    const r = await processInbound({ message: out.message, decryptionKeys: [jeanAuth], trust });
    expect(r.ok, JSON.stringify(r)).toBe(true);
  });

  it.each([
    { contentEncryption: 'aes-256-gcm', keyTransport: 'rsa-oaep-sha256', rsaPadding: 'pss', digest: 'sha512' },
    { contentEncryption: 'aes-128-cbc', keyTransport: 'rsa-oaep-sha256', digest: 'sha384' },
    { contentEncryption: 'aes-128-gcm', keyTransport: 'rsa-pkcs1' },
  ] as const)('round trip with %o', async (options) => {
    const msg = message();
    const out = await send(msg, options);
    const r = await processInbound({ message: out.message, decryptionKeys: [claireAuth], trust });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    expect(r.message.equals(msg)).toBe(true);
    expect(r.verification.contentEncryption).toBe(options.contentEncryption);
    expect(r.verification.keyTransport).toBe(options.keyTransport);
    expect(r.verification.signatureAlgorithm).toBe('rsaPadding' in options ? 'rsa-pss' : 'rsa-pkcs1');
  });

  it('LF line endings are canonicalised; 8-bit and binary-looking bodies of 1 MB survive exactly', async () => {
    const lf = Buffer.from(message().toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
    const r1 = await processInbound({ message: (await send(lf)).message, decryptionKeys: [claireAuth], trust });
    expect(r1.ok && r1.message.equals(message())).toBe(true);
    const body = Buffer.from(randomBytes(768 * 1024).toString('base64').replace(/(.{76})/g, '$1\r\nàé'), 'utf8');
    const big = message(body.toString('utf8'));
    const r2 = await processInbound({ message: (await send(big)).message, decryptionKeys: [claireAuth], trust });
    expect(r2.ok, r2.ok ? '' : r2.detail).toBe(true);
    if (r2.ok) expect(r2.message.equals(big)).toBe(true);
  });

  it('header privacy: a neutral outer Subject, the real one inside', async () => {
    const out = await send(message(), { outerSubject: 'Message sécurisé' });
    expect(out.message.toString('utf8')).toContain('Subject: Message sécurisé\r\n');
    expect(out.message.toString('utf8')).not.toContain('XDM/1.0/DDM');
    const r = await processInbound({ message: out.message, decryptionKeys: [claireAuth], trust });
    expect(r.ok && r.message.toString('utf8')).toContain('Subject: XDM/1.0/DDM+CR DUPONT Pierre 19500101');
    // Comparing Subject too (opt-in) catches the difference.
    const strict = await processInbound({ message: out.message, decryptionKeys: [claireAuth], trust, options: { protectedHeaders: ['from', 'subject'] } });
    expect(strict).toMatchObject({ ok: false, code: 'header-mismatch' });
  });

  it('without wrapping: the MIME body is signed and encrypted, the header stays outside', async () => {
    const msg = message();
    const out = await send(msg, { wrap: false });
    const r = await processInbound({ message: out.message, decryptionKeys: [claireAuth], trust });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    expect(r.verification.wrapped).toBe(false);
    const text = r.message.toString('utf8');
    expect(text).toContain(`From: Jean Dupont <${JEAN.address}>`);
    expect(text).toContain('Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nBonjour Claire,');
  });

  it('a message encrypted to several recipients decrypts for each', async () => {
    const r = await protectOutbound({ message: message(), signer: jeanSign, recipients: [claireAuth.certificate, jeanAuth.certificate], senderCertificate: null, trust });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.encryptedFor).toHaveLength(2);
    for (const k of [claireAuth, jeanAuth]) expect((await processInbound({ message: r.message, decryptionKeys: [k], trust })).ok).toBe(true);
  });

  it("the signature certificate alone cannot be the sender's encryption certificate (no keyEncipherment)", async () => {
    const r = await protectOutbound({ message: message(), signer: jeanSign, recipients: [claireAuth.certificate], senderCertificate: jeanSign.certificate, trust });
    expect(r).toMatchObject({ ok: false, code: 'key-usage', party: 'sender' });
    // By default the sign certificate is simply not used for encryption.
    const d = await protectOutbound({ message: message(), signer: jeanSign, recipients: [claireAuth.certificate], trust });
    expect(d.ok && d.encryptedFor.map((c) => c.fingerprint256)).toEqual([claireAuth.certificate.fingerprint256]);
  });

  it('after revocation in the dev PKI, the same signer is refused (the CRL file is reloaded)', async () => {
    const out = await send(message());
    await revokeCertificate(opts, jeanSign.certificate.pem);
    await new Promise((r) => setTimeout(r, 20));
    const r = await processInbound({ message: out.message, decryptionKeys: [claireAuth], trust });
    expect(r).toMatchObject({ ok: false, code: 'cert-revoked', party: 'signer' });
    const o = await protectOutbound({ message: message(), signer: jeanSign, recipients: [claireAuth.certificate], trust });
    expect(o).toMatchObject({ ok: false, code: 'cert-revoked', party: 'signer' });
  });
});
