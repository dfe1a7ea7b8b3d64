/**
 * Every refusal of the security agent, each with a fixture that triggers it and the exact failure code
 * (and the party it is about): the codes the pipeline will map to its Refusal table.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CrlProvider, type InboundOptions, processInbound, protectOutbound, type SmimeFailure, type TrustOptions } from '../../src/crypto/smime/index.js';
import { opensslOk } from './helpers/openssl.js';
import { DAY_MS, generatePair, type Issued, type KeyKind, TestPki, USAGE, writeIssued } from './helpers/pki.js';

const ALICE = 'alice@hopital.test';
const BOB = 'bob@clinique.test';

let dir: string;
let pki: TestPki;
let other: TestPki;
const certs: Record<string, Issued> = {};
const files: Record<string, { cert: string; key: string }> = {};
let trust: TrustOptions;
let crlTrust: TrustOptions;

function message(from = ALICE, extra = ''): Buffer {
  return Buffer.from(
    `From: Alice <${from}>\r\nTo: Bob <${BOB}>\r\nCc: secretariat@clinique.test\r\nSubject: Compte rendu\r\nDate: Tue, 24 Nov 2026 10:00:00 +0100\r\n` +
      `Message-ID: <r1@hopital.test>\r\n${extra}Content-Type: text/plain; charset=utf-8\r\n\r\nCompte rendu de consultation.\r\n`,
  );
}

/** A Direct message signed by openssl with `signer` (wrapped entity, outer headers copied from it). */
async function opensslSigned(signer: string, msg: Buffer, args: string[] = []): Promise<Buffer> {
  writeFileSync(path.join(dir, 'in.eml'), Buffer.concat([Buffer.from('Content-Type: message/rfc822\r\n\r\n'), msg]));
  const f = files[signer]!;
  const out = await opensslOk(['cms', '-sign', '-binary', '-in', 'in.eml', '-signer', f.cert, '-inkey', f.key, '-certfile', files.inter!.cert, ...args], dir);
  const head = msg.subarray(0, msg.indexOf('Content-Type:')).toString('latin1');
  return Buffer.concat([Buffer.from(head), out]);
}

/** A message we sign (only), bypassing outbound checks by signing with protectOutbound's CMS path via a valid cert. */
async function ourSigned(signer: Issued, msg = message()): Promise<Buffer> {
  const r = await protectOutbound({ message: msg, signer: { key: signer.key, certificate: signer.cert, chain: [pki.intermediate.cert] }, recipients: [], options: { encrypt: false } });
  if (!r.ok) throw new Error(JSON.stringify(r));
  return r.message;
}

async function ourSignedEncrypted(msg = message()): Promise<Buffer> {
  const r = await protectOutbound({
    message: msg,
    signer: { key: certs.alice!.key, certificate: certs.alice!.cert, chain: [pki.intermediate.cert] },
    recipients: [certs.bob!.cert],
  });
  if (!r.ok) throw new Error(JSON.stringify(r));
  return r.message;
}

async function inbound(msg: Buffer, options: InboundOptions = { requireEncryption: false }, t: TrustOptions = trust): Promise<SmimeFailure | { ok: true }> {
  const r = await processInbound({ message: msg, decryptionKeys: [{ key: certs.bob!.key, certificate: certs.bob!.cert }], trust: t, options });
  return r.ok ? { ok: true } : r;
}

function expectFailure(r: SmimeFailure | { ok: true }, code: string, party?: string): void {
  expect(r.ok, JSON.stringify(r)).toBe(false);
  if (r.ok) return;
  expect(r.code, r.detail).toBe(code);
  if (party) expect(r.party).toBe(party);
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'mss-smime-refusals-'));
  const kinds: KeyKind[] = ['rsa2048', 'rsa2048', 'rsa2048', 'rsa2048', 'rsa2048', 'rsa2048', 'rsa1024'];
  const [rootP, interP, aliceP, bobP, otherRootP, otherInterP, weakP] = await Promise.all(kinds.map(generatePair));
  pki = await TestPki.create('REFUS', { root: rootP!, intermediate: interP! });
  other = await TestPki.create('AUTRE', { root: otherRootP!, intermediate: otherInterP! });
  const leaf = (o: Partial<Parameters<TestPki['leaf']>[0]> = {}) => pki.leaf({ pair: aliceP!, issuer: pki.intermediate, email: ALICE, ...o });
  certs.alice = await leaf();
  certs.bob = await pki.leaf({ pair: bobP!, issuer: pki.intermediate, email: BOB });
  certs.expired = await leaf({ notBefore: new Date(Date.now() - 30 * DAY_MS), notAfter: new Date(Date.now() - DAY_MS) });
  certs.future = await leaf({ notBefore: new Date(Date.now() + DAY_MS), notAfter: new Date(Date.now() + 30 * DAY_MS) });
  certs.revoked = await leaf();
  certs.wrongCa = await other.leaf({ pair: aliceP!, issuer: other.intermediate, email: ALICE });
  certs.weak = await leaf({ pair: weakP! });
  certs.encryptOnly = await leaf({ keyUsage: USAGE.encrypt & ~USAGE.authOnly });
  certs.serverEku = await leaf({ eku: ['1.3.6.1.5.5.7.3.1'] });
  certs.otherAddress = await leaf({ email: 'carol@hopital.test' });
  certs.domainBound = await leaf({ email: null, dns: 'hopital.test' });
  certs.sha1Signed = await leaf({ hash: 'SHA-1' });
  for (const [name, issued] of Object.entries(certs)) files[name] = writeIssued(dir, name, issued);
  files.inter = writeIssued(dir, 'inter', pki.intermediate);
  files.otherInter = writeIssued(dir, 'other-inter', other.intermediate);
  trust = { anchors: [pki.root.cert] };
  writeFileSync(path.join(dir, 'inter.crl'), await TestPki.crl(pki.intermediate, [certs.revoked]));
  writeFileSync(path.join(dir, 'root.crl'), await TestPki.crl(pki.root, []));
  crlTrust = { anchors: [pki.root.cert], revocation: new CrlProvider({ files: [path.join(dir, 'inter.crl'), path.join(dir, 'root.crl')] }) };
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('inbound refusals', () => {
  it('a good message passes (the baseline every refusal departs from)', async () => {
    expect(await inbound(await opensslSigned('alice', message()), { requireEncryption: false }, crlTrust)).toEqual({ ok: true });
    expect(await inbound(await ourSignedEncrypted(), {}, crlTrust)).toEqual({ ok: true });
  });

  it('expired signer certificate → cert-expired (signer)', async () => {
    expectFailure(await inbound(await opensslSigned('expired', message())), 'cert-expired', 'signer');
  });

  it('signer certificate not yet valid → cert-not-yet-valid; the injectable clock decides', async () => {
    const msg = await opensslSigned('future', message());
    expectFailure(await inbound(msg), 'cert-not-yet-valid', 'signer');
    expect(await inbound(msg, { requireEncryption: false }, { ...trust, now: () => new Date(Date.now() + 2 * DAY_MS) })).toEqual({ ok: true });
    expectFailure(await inbound(await opensslSigned('alice', message()), { requireEncryption: false }, { ...trust, now: () => new Date(Date.now() + 400 * DAY_MS) }), 'cert-expired', 'signer');
  });

  it('revoked signer certificate (CRL file) → cert-revoked', async () => {
    expectFailure(await inbound(await opensslSigned('revoked', message()), { requireEncryption: false }, crlTrust), 'cert-revoked', 'signer');
  });

  it('no usable CRL while revocation is required → revocation-unknown; best-effort accepts', async () => {
    const msg = await opensslSigned('alice', message());
    const none = { ...trust, revocation: new CrlProvider({ files: [] }) };
    expectFailure(await inbound(msg, { requireEncryption: false }, none), 'revocation-unknown', 'signer');
    expect(await inbound(msg, { requireEncryption: false }, { ...none, revocationMode: 'best-effort' })).toEqual({ ok: true });
  });

  it('a CRL past its nextUpdate, or not signed by the issuer, is not used → revocation-unknown', async () => {
    const msg = await opensslSigned('alice', message());
    writeFileSync(path.join(dir, 'stale.crl'), await TestPki.crl(pki.intermediate, [], { thisUpdate: new Date(Date.now() - 9 * DAY_MS), nextUpdate: new Date(Date.now() - 2 * DAY_MS) }));
    writeFileSync(path.join(dir, 'forged.crl'), await TestPki.crl(pki.intermediate, [], { signer: other.intermediate.pair }));
    for (const bad of ['stale.crl', 'forged.crl']) {
      const t = { ...trust, revocation: new CrlProvider({ files: [path.join(dir, bad), path.join(dir, 'root.crl')] }) };
      const r = await inbound(msg, { requireEncryption: false }, t);
      expectFailure(r, 'revocation-unknown', 'signer');
      if (!r.ok) expect(r.detail).toMatch(bad === 'stale.crl' ? /nextUpdate/ : /signature does not verify/);
    }
  });

  it('certificate from another CA → chain-untrusted', async () => {
    writeFileSync(path.join(dir, 'in.eml'), Buffer.concat([Buffer.from('Content-Type: message/rfc822\r\n\r\n'), message()]));
    const out = await opensslOk(['cms', '-sign', '-binary', '-in', 'in.eml', '-signer', files.wrongCa!.cert, '-inkey', files.wrongCa!.key, '-certfile', files.otherInter!.cert], dir);
    const head = Buffer.from(message().toString('latin1').split('Content-Type:')[0]!);
    expectFailure(await inbound(Buffer.concat([head, out])), 'chain-untrusted', 'signer');
  });

  it('1024-bit RSA signer key → weak-key', async () => {
    expectFailure(await inbound(await opensslSigned('weak', message())), 'weak-key', 'signer');
  });

  it('MD5 digest → weak-digest; SHA-1 → weak-digest unless allowed', async () => {
    expectFailure(await inbound(await opensslSigned('alice', message(), ['-md', 'md5'])), 'weak-digest', 'signer');
    const sha1 = await opensslSigned('alice', message(), ['-md', 'sha1']);
    expectFailure(await inbound(sha1), 'weak-digest', 'signer');
    expect(await inbound(sha1, { requireEncryption: false }, { ...trust, policy: { allowSha1: true } })).toEqual({ ok: true });
  });

  it('a certificate signed with SHA-1 in the path → weak-digest', async () => {
    expectFailure(await inbound(await opensslSigned('sha1Signed', message())), 'weak-digest', 'signer');
  });

  it('3DES content encryption (OpenSSL 3.0 default, and -des3) → weak-cipher, nothing decrypted', async () => {
    const signed = await opensslSigned('alice', message());
    writeFileSync(path.join(dir, 'signed.eml'), signed.subarray(signed.indexOf('MIME-Version')));
    for (const args of [[], ['-des3']]) {
      const enc = await opensslOk(['cms', '-encrypt', '-in', 'signed.eml', ...args, files.bob!.cert], dir);
      expectFailure(await inbound(enc, {}), 'weak-cipher');
    }
  });

  it('From not named by the signer certificate → identity-mismatch; a domain-bound certificate matches the domain', async () => {
    expectFailure(await inbound(await opensslSigned('alice', message('mallory@hopital.test'))), 'identity-mismatch', 'signer');
    expectFailure(await inbound(await opensslSigned('otherAddress', message())), 'identity-mismatch', 'signer');
    expect(await inbound(await opensslSigned('domainBound', message()))).toEqual({ ok: true });
    expectFailure(await inbound(await opensslSigned('domainBound', message('alice@ailleurs.test'))), 'identity-mismatch', 'signer');
  });

  it('signing certificate without digitalSignature/nonRepudiation, or not for e-mail → key-usage', async () => {
    expectFailure(await inbound(await opensslSigned('encryptOnly', message())), 'key-usage', 'signer');
    expectFailure(await inbound(await opensslSigned('serverEku', message())), 'key-usage', 'signer');
  });

  it('a flipped byte in the signed content, or in the signature → bad-signature', async () => {
    const signed = await ourSigned(certs.alice!);
    const at = signed.indexOf('Compte rendu de consultation');
    const tampered = Buffer.from(signed);
    tampered[at] = tampered[at]! ^ 0x01;
    expectFailure(await inbound(tampered), 'bad-signature', 'signer');
    // The signature value is the last bytes of the DER, i.e. the last base64 line before the closing boundary.
    const text = signed.toString('latin1');
    const lastLine = text.lastIndexOf('\r\n', text.lastIndexOf('\r\n------=_smime_') - 1) + 2;
    const sig = Buffer.from(signed);
    sig[lastLine + 10] = sig[lastLine + 10] === 0x41 ? 0x42 : 0x41;
    expectFailure(await inbound(sig), 'bad-signature', 'signer');
  });

  it('a swapped outer From:, To: or Date: → header-mismatch', async () => {
    const signed = (await ourSignedEncrypted()).toString('latin1');
    const cases = [
      signed.replace('From: Alice <alice@hopital.test>', 'From: Alice <mallory@pirate.test>'),
      signed.replace('To: Bob <bob@clinique.test>', 'To: Bob <eve@pirate.test>'),
      signed.replace('Date: Tue, 24 Nov 2026 10:00:00 +0100', 'Date: Wed, 25 Nov 2026 10:00:00 +0100'),
      signed.replace('Cc: secretariat@clinique.test\r\n', 'Cc: secretariat@clinique.test\r\nFrom: mallory@pirate.test\r\n'),
    ];
    for (const c of cases) {
      expect(c).not.toBe(signed);
      expectFailure(await inbound(Buffer.from(c, 'latin1'), {}), 'header-mismatch', 'message');
    }
    // Display names and letter case are not routing: they may differ.
    const cosmetic = signed.replace('From: Alice <alice@hopital.test>', 'From: "Dr Alice" <Alice@Hopital.test>');
    expect(await inbound(Buffer.from(cosmetic, 'latin1'), {})).toEqual({ ok: true });
  });

  it('not encrypted while required → not-encrypted; not signed while required → not-signed', async () => {
    expectFailure(await inbound(await ourSigned(certs.alice!), {}), 'not-encrypted');
    const r = await protectOutbound({ message: message(), signer: { key: certs.alice!.key, certificate: certs.alice!.cert }, recipients: [certs.bob!.cert], options: { sign: false } });
    if (!r.ok) throw new Error(r.detail);
    expectFailure(await inbound(r.message, {}), 'not-signed');
    expect(await inbound(r.message, { requireSignature: false })).toEqual({ ok: true });
    expectFailure(await inbound(message(), {}), 'not-encrypted');
  });

  it('encrypted for someone else, or altered ciphertext → cannot-decrypt (recipient)', async () => {
    const r = await protectOutbound({
      message: message(),
      signer: { key: certs.alice!.key, certificate: certs.alice!.cert },
      recipients: [certs.alice!.cert],
      senderCertificate: null,
    });
    if (!r.ok) throw new Error(r.detail);
    expectFailure(await inbound(r.message, {}), 'cannot-decrypt', 'recipient');
  });

  it('a signature without the signer certificate → no-signer-certificate', async () => {
    expectFailure(await inbound(await opensslSigned('alice', message(), ['-nocerts'])), 'no-signer-certificate', 'signer');
  });

  it('garbage where CMS is expected → malformed, never a crash', async () => {
    const head = 'From: a@hopital.test\r\nTo: b@clinique.test\r\nMIME-Version: 1.0\r\n';
    const bodies = [
      'Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n',
      'Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\nContent-Transfer-Encoding: base64\r\n\r\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\r\n',
      'Content-Type: application/pkcs7-mime\r\nContent-Transfer-Encoding: base64\r\n\r\nMIAGCSqGSIb3DQEHA6CAMIACAQA=\r\n',
      'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary=x\r\n\r\n--x\r\nhello\r\n--x--\r\n',
      'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary=x\r\n\r\n--x\r\nhello\r\n--x\r\nContent-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\nMAA=\r\n--x--\r\n',
    ];
    for (const b of bodies) {
      const r = await inbound(Buffer.from(head + b), { requireEncryption: false });
      expect(r.ok).toBe(false);
      if (!r.ok) expect(['malformed', 'unsupported-algorithm']).toContain(r.code);
    }
  });
});

describe('outbound refusals name the right party', () => {
  it('expired signer certificate → cert-expired (signer), not a recipient problem', async () => {
    const r = await protectOutbound({ message: message(), signer: { key: certs.expired!.key, certificate: certs.expired!.cert }, recipients: [certs.bob!.cert] });
    expectFailure(r.ok ? { ok: true } : r, 'cert-expired', 'signer');
  });

  it('1024-bit recipient key → weak-key (recipient); untrusted recipient → chain-untrusted (recipient)', async () => {
    const weakRecipient = certs.weak!;
    const r = await protectOutbound({ message: message(), signer: { key: certs.alice!.key, certificate: certs.alice!.cert }, recipients: [weakRecipient.cert] });
    expectFailure(r.ok ? { ok: true } : r, 'weak-key', 'recipient');
    const t = await protectOutbound({
      message: message(),
      signer: { key: certs.alice!.key, certificate: certs.alice!.cert, chain: [pki.intermediate.cert] },
      recipients: [certs.wrongCa!.cert],
      trust: { ...trust, intermediates: [pki.intermediate.cert] },
    });
    expectFailure(t.ok ? { ok: true } : t, 'chain-untrusted', 'recipient');
  });

  it('a signer certificate that does not name the From address → identity-mismatch (signer)', async () => {
    const r = await protectOutbound({ message: message('carol@hopital.test'), signer: { key: certs.alice!.key, certificate: certs.alice!.cert }, recipients: [certs.bob!.cert] });
    expectFailure(r.ok ? { ok: true } : r, 'identity-mismatch', 'signer');
  });

  it('encryption without any recipient certificate → no-recipient-certificate', async () => {
    const r = await protectOutbound({ message: message(), signer: { key: certs.alice!.key, certificate: certs.alice!.cert }, recipients: [] });
    expectFailure(r.ok ? { ok: true } : r, 'no-recipient-certificate', 'recipient');
  });
});
