/**
 * Interoperability with `openssl cms`, both ways: what OpenSSL signs and encrypts we verify and decrypt, and
 * what we sign and encrypt OpenSSL verifies and decrypts to the exact bytes.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnvelopedData, decryptEnvelopedData, parseEnvelopedData } from '../../src/crypto/cms/enveloped-data.js';
import { processInbound, protectOutbound, type OutboundOptions, type TrustOptions } from '../../src/crypto/smime/index.js';
import { opensslOk } from './helpers/openssl.js';
import { generatePair, type Issued, TestPki, writeIssued } from './helpers/pki.js';

const ALICE = 'alice@hopital.test';
const BOB = 'bob@clinique.test';

let dir: string;
let pki: TestPki;
let alice: Issued;
let aliceEc: Issued;
let bob: Issued;
let trust: TrustOptions;
const files: Record<string, { cert: string; key: string }> = {};

function message(from = ALICE, body = 'Compte rendu de consultation.\r\nLigne accentuée : é à ç\r\n'): Buffer {
  return Buffer.from(
    `From: Alice <${from}>\r\nTo: ${BOB}\r\nSubject: =?utf-8?q?R=C3=A9sultats?=\r\nDate: Tue, 24 Nov 2026 10:00:00 +0100\r\n` +
      `Message-ID: <m1@hopital.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${body}`,
    'utf8',
  );
}

/** The entity OpenSSL signs for a Direct (wrapped) message. */
function wrapped(msg: Buffer): Buffer {
  return Buffer.concat([Buffer.from('Content-Type: message/rfc822\r\n\r\n'), msg]);
}

/** Outer headers prepended to an openssl S/MIME output, which carries only MIME headers. */
function withOuterHeaders(smime: Buffer, from = ALICE): Buffer {
  return Buffer.concat([
    Buffer.from(`From: Alice <${from}>\r\nTo: ${BOB}\r\nDate: Tue, 24 Nov 2026 10:00:00 +0100\r\nMessage-ID: <m1@hopital.test>\r\n`),
    smime,
  ]);
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'mss-smime-interop-'));
  const [rootPair, interPair, alicePair, bobPair, ecPair] = await Promise.all([
    generatePair('rsa2048'),
    generatePair('rsa2048'),
    generatePair('rsa2048'),
    generatePair('rsa2048'),
    generatePair('ec256'),
  ]);
  pki = await TestPki.create('INTEROP', { root: rootPair, intermediate: interPair });
  alice = await pki.leaf({ pair: alicePair, issuer: pki.intermediate, email: ALICE });
  aliceEc = await pki.leaf({ pair: ecPair, issuer: pki.intermediate, email: ALICE, keyUsage: 0x3 });
  bob = await pki.leaf({ pair: bobPair, issuer: pki.intermediate, email: BOB, rpps: '10009876543' });
  files.root = writeIssued(dir, 'root', pki.root);
  files.inter = writeIssued(dir, 'inter', pki.intermediate);
  files.alice = writeIssued(dir, 'alice', alice);
  files.aliceEc = writeIssued(dir, 'alice-ec', aliceEc);
  files.bob = writeIssued(dir, 'bob', bob);
  trust = { anchors: [pki.root.cert] };
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('openssl signs, we verify', () => {
  const cases: { name: string; args: string[]; signer: 'alice' | 'aliceEc'; digest: string; scheme: string }[] = [
    { name: 'RSA PKCS#1 v1.5, SHA-256 (default)', args: [], signer: 'alice', digest: 'sha256', scheme: 'rsa-pkcs1' },
    { name: 'RSA PKCS#1 v1.5, SHA-384', args: ['-md', 'sha384'], signer: 'alice', digest: 'sha384', scheme: 'rsa-pkcs1' },
    { name: 'RSA PKCS#1 v1.5, SHA-512', args: ['-md', 'sha512'], signer: 'alice', digest: 'sha512', scheme: 'rsa-pkcs1' },
    { name: 'RSA-PSS', args: ['-keyopt', 'rsa_padding_mode:pss'], signer: 'alice', digest: 'sha256', scheme: 'rsa-pss' },
    { name: 'ECDSA P-256', args: [], signer: 'aliceEc', digest: 'sha256', scheme: 'ecdsa' },
  ];
  it.each(cases)('$name', async ({ args, signer, digest, scheme }) => {
    const msg = message();
    writeFileSync(path.join(dir, 'in.eml'), wrapped(msg));
    const f = files[signer]!;
    const out = await opensslOk(['cms', '-sign', '-binary', '-in', 'in.eml', '-signer', f.cert, '-inkey', f.key, '-certfile', files.inter!.cert, ...args], dir);
    const r = await processInbound({ message: withOuterHeaders(out), decryptionKeys: [], trust, options: { requireEncryption: false } });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    expect(r.message.equals(msg)).toBe(true);
    expect(r.verification).toMatchObject({ signed: true, encrypted: false, wrapped: true, signerAddress: ALICE, digest, signatureAlgorithm: scheme, practitionerId: '810001234567' });
    expect(r.verification.chain.map((c) => c.subject)).toEqual([(signer === 'alice' ? alice : aliceEc).cert.subject, pki.intermediate.cert.subject, pki.root.cert.subject]);
  });

  it('opaque signed-data (-nodetach) and LF line endings', async () => {
    const msg = message();
    writeFileSync(path.join(dir, 'in.eml'), wrapped(msg));
    const out = await opensslOk(['cms', '-sign', '-nodetach', '-binary', '-in', 'in.eml', '-signer', files.alice!.cert, '-inkey', files.alice!.key, '-certfile', files.inter!.cert], dir);
    expect(out.toString('latin1')).toContain('smime-type=signed-data');
    const r = await processInbound({ message: withOuterHeaders(out), decryptionKeys: [], trust, options: { requireEncryption: false } });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (r.ok) expect(r.message.equals(msg)).toBe(true);
  });

  it('text-mode signature of a non-wrapped entity (openssl translates to CRLF, writes LF)', async () => {
    writeFileSync(path.join(dir, 'in.txt'), 'Content-Type: text/plain\n\nbonjour\nligne 2\n');
    const out = await opensslOk(['cms', '-sign', '-in', 'in.txt', '-signer', files.alice!.cert, '-inkey', files.alice!.key, '-certfile', files.inter!.cert], dir);
    const r = await processInbound({ message: withOuterHeaders(out), decryptionKeys: [], trust, options: { requireEncryption: false } });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (r.ok) {
      expect(r.verification.wrapped).toBe(false);
      expect(r.message.toString()).toContain('From: Alice <alice@hopital.test>');
      expect(r.message.toString()).toMatch(/bonjour\r\nligne 2/);
    }
  });
});

describe('we sign, openssl verifies', () => {
  const cases: { name: string; options: OutboundOptions; ec?: boolean }[] = [
    { name: 'SHA-256, RSA PKCS#1 v1.5', options: {} },
    { name: 'SHA-384', options: { digest: 'sha384' } },
    { name: 'SHA-512', options: { digest: 'sha512' } },
    { name: 'RSA-PSS', options: { rsaPadding: 'pss' } },
    { name: 'ECDSA P-256', options: {}, ec: true },
  ];
  it.each(cases)('$name', async ({ options, ec }) => {
    const msg = message();
    const signer = ec ? aliceEc : alice;
    const r = await protectOutbound({
      message: msg,
      signer: { key: signer.key, certificate: signer.cert, chain: [pki.intermediate.cert] },
      recipients: [],
      options: { ...options, encrypt: false },
    });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    writeFileSync(path.join(dir, 'signed.eml'), r.message);
    const text = r.message.toString('latin1');
    expect(text).toMatch(/^From: Alice <alice@hopital\.test>\r\n/);
    expect(text).toContain(`micalg=${options.digest === 'sha384' ? 'sha-384' : options.digest === 'sha512' ? 'sha-512' : 'sha-256'}`);
    // Not -binary: in binary mode OpenSSL strips only the LF before the boundary of a CRLF message (it writes
    // LF-delimited structure itself); text mode takes the part exactly, and our content is already canonical.
    const verified = await opensslOk(['cms', '-verify', '-in', 'signed.eml', '-CAfile', files.root!.cert, '-purpose', 'smimesign'], dir);
    expect(verified.equals(wrapped(msg))).toBe(true);
  });
});

describe('openssl encrypts, we decrypt', () => {
  // (OpenSSL 3.0's default content cipher is 3DES: that case is in refusals.test.ts.)
  const OAEP_SHA256 = ['-keyopt', 'rsa_padding_mode:oaep', '-keyopt', 'rsa_oaep_md:sha256'];
  const cases: { name: string; cipher: string; keyopt: string[]; expected: string; transport: string }[] = [
    { name: 'AES-128-CBC, PKCS#1 v1.5', cipher: '-aes-128-cbc', keyopt: [], expected: 'aes-128-cbc', transport: 'rsa-pkcs1' },
    { name: 'AES-256-CBC, PKCS#1 v1.5', cipher: '-aes-256-cbc', keyopt: [], expected: 'aes-256-cbc', transport: 'rsa-pkcs1' },
    { name: 'AES-256-GCM (authEnveloped-data), PKCS#1 v1.5', cipher: '-aes-256-gcm', keyopt: [], expected: 'aes-256-gcm', transport: 'rsa-pkcs1' },
    { name: 'AES-128-GCM, PKCS#1 v1.5', cipher: '-aes-128-gcm', keyopt: [], expected: 'aes-128-gcm', transport: 'rsa-pkcs1' },
    { name: 'AES-128-CBC, RSA-OAEP SHA-256', cipher: '-aes-128-cbc', keyopt: OAEP_SHA256, expected: 'aes-128-cbc', transport: 'rsa-oaep-sha256' },
    { name: 'AES-256-CBC, RSA-OAEP SHA-256', cipher: '-aes-256-cbc', keyopt: OAEP_SHA256, expected: 'aes-256-cbc', transport: 'rsa-oaep-sha256' },
    { name: 'AES-256-GCM, RSA-OAEP SHA-256', cipher: '-aes-256-gcm', keyopt: OAEP_SHA256, expected: 'aes-256-gcm', transport: 'rsa-oaep-sha256' },
    { name: 'AES-256-CBC, RSA-OAEP default (SHA-1)', cipher: '-aes-256-cbc', keyopt: ['-keyopt', 'rsa_padding_mode:oaep'], expected: 'aes-256-cbc', transport: 'rsa-oaep-sha1' },
  ];
  it.each(cases)('$name: exact bytes back', async ({ cipher: cipherArg, keyopt, expected: cipher, transport }) => {
    const content = randomBytes(10_000 + Math.floor(Math.random() * 100));
    writeFileSync(path.join(dir, 'plain.bin'), content);
    // -keyopt applies to the -recip before it.
    const recips = [files.alice!.cert, files.bob!.cert].flatMap((c) => ['-recip', c, ...keyopt]);
    const der = await opensslOk(['cms', '-encrypt', '-binary', '-in', 'plain.bin', '-outform', 'DER', cipherArg, ...recips], dir);
    for (const who of [alice, bob]) {
      const d = decryptEnvelopedData(parseEnvelopedData(der), [{ key: who.key, certificate: who.cert }]);
      expect(d.content.equals(content)).toBe(true);
      expect(d.cipher).toBe(cipher);
      expect(d.keyTransport).toBe(transport);
    }
  });

  it('streamed BER (-stream): indefinite lengths and a chunked OCTET STRING', async () => {
    const content = randomBytes(200_000);
    writeFileSync(path.join(dir, 'plain.bin'), content);
    const der = await opensslOk(['cms', '-encrypt', '-binary', '-stream', '-in', 'plain.bin', '-outform', 'DER', '-aes-256-cbc', files.alice!.cert], dir);
    expect(der.subarray(0, 2).equals(Buffer.of(0x30, 0x80))).toBe(true);
    const env = parseEnvelopedData(der);
    expect(decryptEnvelopedData(env, [{ key: alice.key, certificate: alice.cert }]).content.equals(content)).toBe(true);
  });

  it('a signed then encrypted Direct message from openssl passes processInbound', async () => {
    const msg = message();
    writeFileSync(path.join(dir, 'in.eml'), wrapped(msg));
    const signed = await opensslOk(['cms', '-sign', '-binary', '-in', 'in.eml', '-signer', files.alice!.cert, '-inkey', files.alice!.key, '-certfile', files.inter!.cert], dir);
    writeFileSync(path.join(dir, 'signed.eml'), signed);
    const enc = await opensslOk(['cms', '-encrypt', '-binary', '-in', 'signed.eml', '-aes-256-gcm', files.bob!.cert], dir);
    const r = await processInbound({ message: withOuterHeaders(enc), decryptionKeys: [{ key: bob.key, certificate: bob.cert }], trust });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    expect(r.message.equals(msg)).toBe(true);
    expect(r.verification).toMatchObject({ signed: true, encrypted: true, wrapped: true, contentEncryption: 'aes-256-gcm', keyTransport: 'rsa-pkcs1' });
    expect(r.verification.decryptedWith?.equals(bob.cert)).toBe(true);
  });
});

describe('we encrypt, openssl decrypts', () => {
  const modes = [
    { cipher: 'aes-256-cbc', keyTransport: 'rsa-pkcs1' },
    { cipher: 'aes-128-cbc', keyTransport: 'rsa-pkcs1' },
    { cipher: 'aes-256-gcm', keyTransport: 'rsa-pkcs1' },
    { cipher: 'aes-128-gcm', keyTransport: 'rsa-pkcs1' },
    { cipher: 'aes-256-cbc', keyTransport: 'rsa-oaep-sha256' },
    { cipher: 'aes-256-gcm', keyTransport: 'rsa-oaep-sha256' },
  ] as const;
  it.each(modes)('$cipher with $keyTransport: exact bytes, for every recipient', async ({ cipher, keyTransport }) => {
    const content = randomBytes(20_000);
    const der = createEnvelopedData(content, [alice.cert, bob.cert], { contentEncryption: cipher, keyTransport });
    writeFileSync(path.join(dir, 'ours.p7m'), der);
    for (const who of ['alice', 'bob']) {
      const out = await opensslOk(['cms', '-decrypt', '-binary', '-inform', 'DER', '-in', 'ours.p7m', '-recip', files[who]!.cert, '-inkey', files[who]!.key], dir);
      expect(out.equals(content)).toBe(true);
    }
  });

  it.each(['aes-256-cbc', 'aes-256-gcm'] as const)('a whole Direct message (%s): openssl decrypts, then verifies the signature', async (cipher) => {
    const msg = message();
    const r = await protectOutbound({
      message: msg,
      signer: { key: alice.key, certificate: alice.cert, chain: [pki.intermediate.cert] },
      recipients: [bob.cert],
      // Recipient certificates come from a directory without their chain: the intermediate is configured.
      trust: { ...trust, intermediates: [pki.intermediate.cert] },
      options: { contentEncryption: cipher },
    });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    expect(r.encryptedFor.map((c) => c.subject)).toEqual([bob.cert.subject, alice.cert.subject]);
    writeFileSync(path.join(dir, 'direct.eml'), r.message);
    const text = r.message.toString('latin1');
    expect(text).toContain(`smime-type=${cipher.endsWith('gcm') ? 'authEnveloped-data' : 'enveloped-data'}; name=smime.p7m`);
    for (const who of ['bob', 'alice']) {
      const decrypted = await opensslOk(['cms', '-decrypt', '-in', 'direct.eml', '-recip', files[who]!.cert, '-inkey', files[who]!.key], dir);
      writeFileSync(path.join(dir, 'decrypted.eml'), decrypted);
      const verified = await opensslOk(['cms', '-verify', '-in', 'decrypted.eml', '-CAfile', files.root!.cert, '-purpose', 'smimesign'], dir);
      expect(verified.equals(wrapped(msg))).toBe(true);
    }
    expect(readFileSync(path.join(dir, 'decrypted.eml'), 'latin1')).toMatch(/^Content-Type: multipart\/signed; protocol="application\/pkcs7-signature"; micalg=sha-256;/);
  });
});
