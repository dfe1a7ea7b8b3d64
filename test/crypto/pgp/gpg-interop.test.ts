import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readKey, type PrivateKey, type PublicKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  armorPrivateKey,
  armorPublicKey,
  fingerprintOf,
  generateMailboxKey,
  keyInfo,
  processIncoming,
  readPrivateKey,
  readPublicKey,
  signAndEncryptMessage,
  signMessage,
  staticResolver,
  type MailboxKeyPair,
  type PgpResult,
  type PublicKeyResolver,
} from '../../../src/crypto/pgp/index.js';
import { buildEncrypted, buildSigned, containerEntity } from '../../../src/crypto/pgp/pgp-mime-build.js';
import { parsePgpMime } from '../../../src/crypto/pgp/pgp-mime-parse.js';
import { Gpg } from './gpg.js';
import { replaceOnce, sampleMessage, topParts } from './fixtures.js';

/**
 * Interoperability with GnuPG 2.2 in both directions: keys, PGP/MIME signed, encrypted, signed+encrypted
 * (nested, RFC 3156 §6.1, and combined, §6.2).
 */

const ALICE = 'alice@hopital.test'; // our side
const CAROL = 'carol@clinique.test'; // gpg, RSA 3072
const DAVE = 'dave@cabinet.test'; // gpg, ed25519/cv25519
const WEAK = 'weak@vieux.test'; // gpg, RSA 1024

let gpg: Gpg;
let alice: MailboxKeyPair;
let bob: MailboxKeyPair;
let carolFpr: string;
let daveFpr: string;
let weakFpr: string;
let carol: PublicKey;
let dave: PublicKey;
let carolSecret: PrivateKey;
let resolver: PublicKeyResolver;

function ok<T>(result: PgpResult<T>): T {
  if (!result.ok) throw new Error(`expected success, got ${result.code}: ${result.detail}`);
  return result.value;
}

function outerHeader(from: string, to: string): string {
  return `From: <${from}>\r\nTo: <${to}>\r\nSubject: Interop\r\nMessage-ID: <interop@test>\r\nMIME-Version: 1.0\r\n`;
}

const ENTITY = Buffer.from('Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nBonjour, résultat joint.\r\n');

beforeAll(async () => {
  gpg = await Gpg.create();
  [alice, bob] = await Promise.all([
    generateMailboxKey({ address: ALICE, name: 'Alice' }),
    generateMailboxKey({ address: 'bob@hopital.test', algorithm: 'rsa3072' }),
  ]);
  carolFpr = await gpg.generate(`Carol <${CAROL}>`, 'rsa3072');
  daveFpr = await gpg.generate(`Dave <${DAVE}>`, 'ed25519');
  weakFpr = await gpg.generate(`Weak <${WEAK}>`, 'rsa1024');
  await gpg.mustRun(['--import'], armorPublicKey(alice.publicKey));
  await gpg.mustRun(['--import'], armorPublicKey(bob.publicKey));
  carol = ok(await readPublicKey(await gpg.exportPublic(carolFpr)));
  dave = ok(await readPublicKey(await gpg.exportPublic(daveFpr)));
  carolSecret = ok(await readPrivateKey(await gpg.exportSecret(carolFpr)));
  resolver = staticResolver([alice.publicKey, carol, dave]);
});

afterAll(async () => {
  await gpg?.close();
});

describe('keys', () => {
  it('imports gpg-made keys (RSA 3072, ed25519/cv25519), public and secret, with their fingerprints and user IDs', () => {
    expect(fingerprintOf(carol)).toBe(carolFpr.toLowerCase());
    expect(keyInfo(carol)).toMatchObject({ algorithm: 'rsaEncryptSign', bits: 3072, emails: [CAROL], userIds: [`Carol <${CAROL}>`] });
    expect(keyInfo(dave)).toMatchObject({ algorithm: 'eddsaLegacy', curve: 'ed25519Legacy', emails: [DAVE] });
    expect(keyInfo(dave).subkeys[0]).toMatchObject({ algorithm: 'ecdh', curve: 'curve25519Legacy' });
    expect(carolSecret.isDecrypted()).toBe(true);
    expect(fingerprintOf(carolSecret)).toBe(carolFpr.toLowerCase());
  });

  it('refuses a gpg RSA-1024 key as weak-key', async () => {
    expect(await readPublicKey(await gpg.exportPublic(weakFpr))).toMatchObject({ ok: false, code: 'weak-key' });
  });

  it('gpg imports our public keys and our private keys, in clear and passphrase-protected', async () => {
    const fprs = await gpg.fingerprints();
    expect(fprs).toContain(alice.fingerprint.toUpperCase());
    expect(fprs).toContain(bob.fingerprint.toUpperCase());

    const other = await Gpg.create();
    try {
      const clear = await other.importKey(await armorPrivateKey(alice.privateKey));
      expect(clear.status.some((l) => l.startsWith('IMPORT_OK'))).toBe(true);
      const locked = await other.importKey(await armorPrivateKey(bob.privateKey, 'pass phrase'), 'pass phrase');
      expect(locked.status.some((l) => l.startsWith('IMPORT_OK'))).toBe(true);
      expect((await other.fingerprints(true)).sort()).toEqual([alice.fingerprint, bob.fingerprint].map((f) => f.toUpperCase()).sort());
      // The imported secret key works in gpg: it signs, and our side verifies the signature.
      const signed = await other.mustRun(['--armor', '--detach-sign', '-u', alice.fingerprint], ENTITY);
      const container = buildSigned(ENTITY, signed.stdout.toString(), 'pgp-sha512');
      const raw = Buffer.concat([Buffer.from(outerHeader(ALICE, CAROL)), containerEntity(container)]);
      expect(ok(await processIncoming(raw, { decryptionKeys: [], resolver })).verification.signerFingerprint).toBe(alice.fingerprint);
    } finally {
      await other.close();
    }
  });
});

describe('gpg → us', () => {
  it('gpg --sign --encrypt (combined, compressed) → decrypted and verified', async () => {
    const armored = await gpg.mustRun(['--armor', '--sign', '--encrypt', '-u', carolFpr, '-r', alice.fingerprint], ENTITY);
    const raw = Buffer.concat([Buffer.from(outerHeader(CAROL, ALICE)), containerEntity(buildEncrypted(armored.stdout.toString()))]);
    const got = ok(await processIncoming(raw, { decryptionKeys: [alice.privateKey], resolver }));
    expect(got.verification).toMatchObject({
      encrypted: true,
      signed: true,
      signatureForm: 'openpgp-inline',
      signerAddress: CAROL,
      signerFingerprint: carolFpr.toLowerCase(),
      decryptionKeyFingerprint: alice.fingerprint,
    });
    expect(got.message.toString('utf8')).toBe(outerHeader(CAROL, ALICE) + ENTITY.toString('utf8'));
  });

  it('gpg detached signature inside gpg encryption (nested, ed25519/cv25519) → decrypted and verified', async () => {
    const signature = await gpg.mustRun(['--armor', '--detach-sign', '-u', daveFpr], ENTITY);
    const signedEntity = containerEntity(buildSigned(ENTITY, signature.stdout.toString(), 'pgp-sha512'));
    const armored = await gpg.mustRun(['--armor', '--encrypt', '-r', alice.fingerprint], signedEntity);
    const raw = Buffer.concat([Buffer.from(outerHeader(DAVE, ALICE)), containerEntity(buildEncrypted(armored.stdout.toString()))]);
    const got = ok(await processIncoming(raw, { decryptionKeys: [alice.privateKey], resolver }));
    expect(got.verification).toMatchObject({ encrypted: true, signed: true, signatureForm: 'multipart-signed', signerFingerprint: daveFpr.toLowerCase() });
    expect(got.message.toString('utf8')).toBe(outerHeader(DAVE, ALICE) + ENTITY.toString('utf8'));
  });

  it('gpg multipart/signed → verified; one flipped byte → bad-signature', async () => {
    const signature = await gpg.mustRun(['--armor', '--detach-sign', '-u', carolFpr], ENTITY);
    const raw = Buffer.concat([Buffer.from(outerHeader(CAROL, ALICE)), containerEntity(buildSigned(ENTITY, signature.stdout.toString(), 'pgp-sha256'))]);
    expect(ok(await processIncoming(raw, { decryptionKeys: [], resolver })).verification).toMatchObject({ signed: true, signerAddress: CAROL });
    const tampered = replaceOnce(raw, 'résultat', 'rèsultat');
    expect(await processIncoming(tampered, { decryptionKeys: [], resolver })).toMatchObject({ ok: false, code: 'bad-signature', address: CAROL });
  });

  it('a gpg SHA-1 signature → weak-algorithm', async () => {
    const signature = await gpg.mustRun(['--armor', '--detach-sign', '--digest-algo', 'SHA1', '-u', carolFpr], ENTITY);
    const raw = Buffer.concat([Buffer.from(outerHeader(CAROL, ALICE)), containerEntity(buildSigned(ENTITY, signature.stdout.toString(), 'pgp-sha1'))]);
    expect(await processIncoming(raw, { decryptionKeys: [], resolver })).toMatchObject({ ok: false, code: 'weak-algorithm' });
  });

  it('refusals on gpg-made messages: wrong recipient, identity mismatch, unknown signer, RSA-1024 signer', async () => {
    const toBob = await gpg.mustRun(['--armor', '--sign', '--encrypt', '-u', carolFpr, '-r', bob.fingerprint], ENTITY);
    const rawToBob = Buffer.concat([Buffer.from(outerHeader(CAROL, ALICE)), containerEntity(buildEncrypted(toBob.stdout.toString()))]);
    expect(await processIncoming(rawToBob, { decryptionKeys: [alice.privateKey], resolver })).toMatchObject({ ok: false, code: 'cannot-decrypt' });

    const byCarol = await gpg.mustRun(['--armor', '--sign', '--encrypt', '-u', carolFpr, '-r', alice.fingerprint], ENTITY);
    const claimingDave = Buffer.concat([Buffer.from(outerHeader(DAVE, ALICE)), containerEntity(buildEncrypted(byCarol.stdout.toString()))]);
    const everyone: PublicKeyResolver = { keysFor: () => Promise.resolve([carol, dave]) };
    expect(await processIncoming(claimingDave, { decryptionKeys: [alice.privateKey], resolver: everyone })).toMatchObject({
      ok: false,
      code: 'identity-mismatch',
    });
    expect(await processIncoming(claimingDave, { decryptionKeys: [alice.privateKey], resolver })).toMatchObject({ ok: false, code: 'unknown-signer' });
    const fromCarol = Buffer.concat([Buffer.from(outerHeader(CAROL, ALICE)), containerEntity(buildEncrypted(byCarol.stdout.toString()))]);
    expect(await processIncoming(fromCarol, { decryptionKeys: [alice.privateKey], resolver: staticResolver([dave]) })).toMatchObject({
      ok: false,
      code: 'unknown-signer',
    });

    // The weak key cannot come through readPublicKey; a resolver built on openpgp directly could hand it out.
    const weak = await readKey({ armoredKey: await gpg.exportPublic(weakFpr) });
    const byWeak = await gpg.mustRun(['--armor', '--sign', '--encrypt', '-u', weakFpr, '-r', alice.fingerprint], ENTITY);
    const rawWeak = Buffer.concat([Buffer.from(outerHeader(WEAK, ALICE)), containerEntity(buildEncrypted(byWeak.stdout.toString()))]);
    expect(await processIncoming(rawWeak, { decryptionKeys: [alice.privateKey], resolver: staticResolver([weak]) })).toMatchObject({
      ok: false,
      code: 'weak-key',
    });
  });

  it('a gpg message with a modified ciphertext byte → integrity-failure', async () => {
    const binary = await gpg.mustRun(['--sign', '--encrypt', '-u', carolFpr, '-r', alice.fingerprint], ENTITY);
    const flipped = Buffer.from(binary.stdout);
    flipped[flipped.length - 10]! ^= 0x01;
    const raw = Buffer.concat([
      Buffer.from(outerHeader(CAROL, ALICE)),
      Buffer.from(
        'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b"\r\n\r\n--b\r\n' +
          'Content-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--b\r\n' +
          `Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n${flipped.toString('base64')}\r\n--b--\r\n`,
      ),
    ]);
    expect(await processIncoming(raw, { decryptionKeys: [alice.privateKey], resolver })).toMatchObject({ ok: false, code: 'integrity-failure' });
  });
});

describe('us → gpg', () => {
  /** gpg --decrypt of the application/octet-stream part; then gpg --verify of the inner multipart/signed. */
  async function gpgReads(sent: Buffer, label: string): Promise<{ decrypt: string[]; verify: string[]; inner: Buffer }> {
    const { children } = topParts(sent);
    expect(children.map((c) => `${c.node.type}/${c.node.subtype}`)).toEqual(['application/pgp-encrypted', 'application/octet-stream']);
    const decrypted = await gpg.mustRun(['--decrypt'], children[1]!.body);
    const inner = decrypted.stdout;
    const parsed = parsePgpMime(inner);
    if (!parsed.ok || parsed.value.kind !== 'signed') throw new Error('decrypted content is not a PGP/MIME multipart/signed');
    expect(inner.toString('latin1')).toMatch(/^Content-Type: multipart\/signed; micalg=pgp-sha\d+; protocol="application\/pgp-signature"/);
    const dataFile = path.join(gpg.home, `${label}.data`);
    const sigFile = path.join(gpg.home, `${label}.asc`);
    await writeFile(dataFile, parsed.value.signedData);
    await writeFile(sigFile, parsed.value.signature);
    const verified = await gpg.mustRun(['--verify', sigFile, dataFile]);
    return { decrypt: decrypted.status, verify: verified.status, inner };
  }

  it('our sign+encrypt to an RSA recipient: gpg decrypts, and verifies the inner signature', async () => {
    const raw = sampleMessage({ from: ALICE, to: CAROL, encoding: '8bit', body: 'Résultat: normal\r\n' });
    const sent = ok(await signAndEncryptMessage(raw, { signingKey: alice.privateKey, recipients: [CAROL], resolver }));
    const { decrypt, verify, inner } = await gpgReads(sent, 'rsa');
    expect(decrypt).toContain('DECRYPTION_OKAY');
    expect(decrypt.filter((l) => l.startsWith('ENC_TO '))).toHaveLength(2);
    expect(decrypt.some((l) => l.startsWith('DECRYPTION_INFO 2 9'))).toBe(true); // MDC, AES-256
    expect(verify.some((l) => l.startsWith('GOODSIG ') && l.includes(`<${ALICE}>`))).toBe(true);
    expect(verify.some((l) => l.startsWith(`VALIDSIG `) && l.endsWith(alice.fingerprint.toUpperCase()))).toBe(true);
    expect(inner.toString('latin1')).toContain('Content-Transfer-Encoding: quoted-printable\r\n\r\nR=C3=A9sultat: normal\r\n');
  });

  it('our sign+encrypt to a cv25519 recipient: gpg decrypts and verifies', async () => {
    const sent = ok(await signAndEncryptMessage(sampleMessage({ from: ALICE, to: DAVE }), { signingKey: alice.privateKey, recipients: [DAVE], resolver }));
    const { decrypt, verify } = await gpgReads(sent, 'ecc');
    expect(decrypt).toContain('DECRYPTION_OKAY');
    expect(verify.some((l) => l.startsWith('GOODSIG '))).toBe(true);
    expect(verify.some((l) => l.startsWith('VALIDSIG ') && l.endsWith(alice.fingerprint.toUpperCase()))).toBe(true);
  });

  it('our multipart/signed: gpg verifies the first part against the detached signature', async () => {
    const sent = ok(await signMessage(sampleMessage({ from: ALICE, to: CAROL }), { signingKey: alice.privateKey }));
    const parsed = parsePgpMime(sent);
    if (!parsed.ok || parsed.value.kind !== 'signed') throw new Error('not multipart/signed');
    await writeFile(path.join(gpg.home, 'signed.data'), parsed.value.signedData);
    await writeFile(path.join(gpg.home, 'signed.asc'), parsed.value.signature);
    const verified = await gpg.run(['--verify', path.join(gpg.home, 'signed.asc'), path.join(gpg.home, 'signed.data')]);
    expect(verified.code).toBe(0);
    expect(verified.status.some((l) => l.startsWith('GOODSIG '))).toBe(true);
    // And the same signature does not cover a modified part.
    await writeFile(path.join(gpg.home, 'signed.data'), Buffer.concat([parsed.value.signedData, Buffer.from('x')]));
    const bad = await gpg.run(['--verify', path.join(gpg.home, 'signed.asc'), path.join(gpg.home, 'signed.data')]);
    expect(bad.status.some((l) => l.startsWith('BADSIG '))).toBe(true);
  });

  it('a gpg-made mailbox key works as our mailbox key: we decrypt mail gpg encrypted to it', async () => {
    const armored = await gpg.mustRun(['--armor', '--sign', '--encrypt', '-u', daveFpr, '-r', carolFpr], ENTITY);
    const raw = Buffer.concat([Buffer.from(outerHeader(DAVE, CAROL)), containerEntity(buildEncrypted(armored.stdout.toString()))]);
    const got = ok(await processIncoming(raw, { decryptionKeys: [carolSecret], resolver }));
    expect(got.verification).toMatchObject({ encrypted: true, signed: true, decryptionKeyFingerprint: carolFpr.toLowerCase() });
  });
});
