import { createMessage, encrypt, revokeKey, sign } from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  encryptMessage,
  generateMailboxKey,
  processIncoming,
  signAndEncryptMessage,
  signMessage,
  staticResolver,
  type IncomingOptions,
  type MailboxKeyPair,
  type PgpResult,
  type PublicKeyResolver,
} from '../../../src/crypto/pgp/index.js';
import { buildEncrypted, containerEntity } from '../../../src/crypto/pgp/pgp-mime-build.js';
import { replaceOnce, sampleMessage, topParts, weakRsaKey } from './fixtures.js';

const ALICE = 'alice@hopital.test';
const BOB = 'bob@clinique.test';
const MALLORY = 'mallory@ailleurs.test';

let alice: MailboxKeyPair;
let bob: MailboxKeyPair;
let mallory: MailboxKeyPair;
let aliceRsa: MailboxKeyPair;
let resolver: PublicKeyResolver;
let bobInbox: IncomingOptions;

beforeAll(async () => {
  [alice, bob, mallory, aliceRsa] = await Promise.all([
    generateMailboxKey({ address: ALICE, name: 'Alice' }),
    generateMailboxKey({ address: BOB, name: 'Bob' }),
    generateMailboxKey({ address: MALLORY }),
    generateMailboxKey({ address: ALICE, algorithm: 'rsa3072' }),
  ]);
  resolver = staticResolver([alice.publicKey, bob.publicKey, mallory.publicKey, aliceRsa.publicKey]);
  bobInbox = { decryptionKeys: [bob.privateKey], resolver };
});

function ok<T>(result: PgpResult<T>): T {
  if (!result.ok) throw new Error(`expected success, got ${result.code}: ${result.detail}`);
  return result.value;
}

describe('round trips through our own outbound side', () => {
  it('sign+encrypt → decrypt, verify, and give back the original fields and content', async () => {
    const raw = sampleMessage({ from: ALICE, to: BOB, extra: ['In-Reply-To: <m0@clinique.test>'] });
    const sent = ok(await signAndEncryptMessage(raw, { signingKey: alice.privateKey, recipients: [BOB], resolver }));
    const got = ok(await processIncoming(sent, bobInbox));
    expect(got.verification).toMatchObject({
      encrypted: true,
      signed: true,
      signatureForm: 'multipart-signed',
      signerAddress: ALICE,
      signerFingerprint: alice.fingerprint,
      decryptionKeyFingerprint: bob.fingerprint,
    });
    expect(got.verification.signingKeyFingerprint).toMatch(/^[0-9a-f]{40}$/);
    expect(got.verification.signedAt).toBeInstanceOf(Date);
    expect(got.message.toString('utf8')).toBe(raw.toString('utf8'));
    // The sender can read its own sent copy.
    expect(ok(await processIncoming(sent, { decryptionKeys: [alice.privateKey], resolver })).message.equals(raw)).toBe(true);
  });

  it('RSA signer: micalg pgp-sha256 and hash reported', async () => {
    const raw = sampleMessage({ from: ALICE, to: BOB });
    const sent = ok(await signAndEncryptMessage(raw, { signingKey: aliceRsa.privateKey, recipients: [BOB], resolver }));
    const got = ok(await processIncoming(sent, bobInbox));
    expect(got.verification).toMatchObject({ signed: true, hashAlgorithm: 'sha256', signerFingerprint: aliceRsa.fingerprint });
  });

  it('sign only → verified, unwrapped; line endings rewritten to LF in storage still verify', async () => {
    const raw = sampleMessage({ from: ALICE, to: BOB, body: 'Résultat: normal\r\n' });
    const sent = ok(await signMessage(raw, { signingKey: alice.privateKey }));
    const got = ok(await processIncoming(sent, bobInbox));
    expect(got.verification).toMatchObject({ encrypted: false, signed: true, signerAddress: ALICE });
    expect(got.message.toString('latin1')).toContain('Content-Transfer-Encoding: quoted-printable\r\n\r\nR=C3=A9sultat: normal\r\n');
    const lf = Buffer.from(sent.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
    expect(ok(await processIncoming(lf, bobInbox)).verification.signed).toBe(true);
  });

  it('encrypt only → decrypted, not signed; refused as unsigned when a signature is required', async () => {
    const raw = sampleMessage({ from: ALICE, to: BOB });
    const sent = ok(await encryptMessage(raw, { recipients: [BOB], resolver }));
    const got = ok(await processIncoming(sent, bobInbox));
    expect(got.verification).toMatchObject({ encrypted: true, signed: false, signerAddress: null });
    expect(got.message.equals(raw)).toBe(true);
    expect(await processIncoming(sent, { ...bobInbox, requireSignature: true })).toMatchObject({ ok: false, code: 'unsigned' });
  });

  it('passes a plain message through unchanged', async () => {
    const raw = sampleMessage({ from: ALICE, to: BOB });
    const got = ok(await processIncoming(raw, bobInbox));
    expect(got.message).toBe(raw);
    expect(got.verification).toMatchObject({ encrypted: false, signed: false });
    expect(await processIncoming(raw, { ...bobInbox, requireSignature: true })).toMatchObject({ ok: false, code: 'unsigned' });
  });
});

describe('refusals', () => {
  it('a flipped byte in the signed part → bad-signature', async () => {
    const sent = ok(await signMessage(sampleMessage({ from: ALICE, to: BOB }), { signingKey: alice.privateKey }));
    const tampered = replaceOnce(sent, 'Voici le compte rendu.', 'Voici le compte rendu!');
    expect(await processIncoming(tampered, bobInbox)).toMatchObject({ ok: false, code: 'bad-signature', address: ALICE });
  });

  it('a flipped byte in the ciphertext → integrity-failure', async () => {
    const sent = ok(await signAndEncryptMessage(sampleMessage({ from: ALICE, to: BOB }), { signingKey: alice.privateKey, recipients: [BOB], resolver }));
    const { children } = topParts(sent);
    const armored = children[1]!.body.toString('latin1');
    // Decode the armor by hand (base64 lines between the blank line and the checksum), flip a byte, and
    // send the binary packets base64-encoded (a form some clients use, read as well as armor).
    const base64 = armored.split(/\r?\n\r?\n/)[1]!.split(/\r?\n=|-----END/)[0]!.replace(/\s/g, '');
    const binary = Buffer.from(base64, 'base64');
    const rebuilt = (bytes: Buffer) =>
      Buffer.concat([
        sent.subarray(0, children[1]!.node.headerStart),
        Buffer.from(`Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n${bytes.toString('base64')}`),
        sent.subarray(children[1]!.node.bodyEnd),
      ]);
    expect(ok(await processIncoming(rebuilt(binary), bobInbox)).verification.signed).toBe(true);
    const flipped = Buffer.from(binary);
    flipped[flipped.length - 30]! ^= 0x01;
    const tampered = rebuilt(flipped);
    expect(await processIncoming(tampered, bobInbox)).toMatchObject({ ok: false, code: 'integrity-failure' });
  });

  it('not encrypted to this mailbox → cannot-decrypt', async () => {
    const sent = ok(await signAndEncryptMessage(sampleMessage({ from: ALICE, to: BOB }), { signingKey: alice.privateKey, recipients: [BOB], resolver }));
    expect(await processIncoming(sent, { decryptionKeys: [mallory.privateKey], resolver })).toMatchObject({ ok: false, code: 'cannot-decrypt' });
    expect(await processIncoming(sent, { decryptionKeys: [], resolver })).toMatchObject({ ok: false, code: 'cannot-decrypt' });
  });

  it('signed by a key nobody knows for the sender → unknown-signer', async () => {
    const sent = ok(await signMessage(sampleMessage({ from: ALICE, to: BOB }), { signingKey: alice.privateKey }));
    const nobody: PublicKeyResolver = { keysFor: () => Promise.resolve([]) };
    expect(await processIncoming(sent, { ...bobInbox, resolver: nobody })).toMatchObject({ ok: false, code: 'unknown-signer' });
    const lookupDown: PublicKeyResolver = { keysFor: () => Promise.reject(new Error('LDAP timeout')) };
    expect(await processIncoming(sent, { ...bobInbox, resolver: lookupDown })).toMatchObject({ ok: false, code: 'key-lookup-failed' });
  });

  it("mallory's valid signature on a message From alice → identity-mismatch", async () => {
    // Mallory signs for herself, then changes the outer From; a resolver that (wrongly) hands out
    // Mallory's key for alice — say a keyring searched by key ID — must not make it pass.
    const sent = ok(await signMessage(sampleMessage({ from: MALLORY, to: BOB }), { signingKey: mallory.privateKey }));
    const forged = Buffer.from(sent.toString('latin1').replace(`From: Sender <${MALLORY}>`, `From: Sender <${ALICE}>`), 'latin1');
    const keyring: PublicKeyResolver = { keysFor: () => Promise.resolve([alice.publicKey, mallory.publicKey]) };
    expect(await processIncoming(forged, { ...bobInbox, resolver: keyring })).toMatchObject({ ok: false, code: 'identity-mismatch' });
    // With a resolver indexed by address the same forgery is an unknown signer.
    expect(await processIncoming(forged, bobInbox)).toMatchObject({ ok: false, code: 'unknown-signer' });
  });

  it('a protected From inside the encryption that differs from the outer one → identity-mismatch', async () => {
    const entity = Buffer.from(`Content-Type: text/plain\r\nFrom: <${ALICE}>\r\n\r\nPay this invoice.\r\n`);
    const armored = await encrypt({ message: await createMessage({ binary: new Uint8Array(entity) }), encryptionKeys: bob.publicKey });
    const container = buildEncrypted(armored);
    const raw = Buffer.concat([Buffer.from(`From: <${MALLORY}>\r\nTo: <${BOB}>\r\nMIME-Version: 1.0\r\n`), containerEntity(container)]);
    expect(await processIncoming(raw, bobInbox)).toMatchObject({ ok: false, code: 'identity-mismatch' });
  });

  it('RSA-1024 signer → weak-key; revoked signer → key-revoked; expired signer → key-expired', async () => {
    const weak = await weakRsaKey(ALICE);
    const detached = await sign({
      message: await createMessage({ binary: new Uint8Array(Buffer.from('Content-Type: text/plain\r\n\r\nx\r\n')) }),
      signingKeys: weak.privateKey,
      detached: true,
      config: { minRSABits: 1024 },
    });
    const boundary = 'b1';
    const raw = Buffer.from(
      `From: <${ALICE}>\r\nTo: <${BOB}>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature"; boundary="${boundary}"\r\n\r\n` +
        `--${boundary}\r\nContent-Type: text/plain\r\n\r\nx\r\n--${boundary}\r\nContent-Type: application/pgp-signature\r\n\r\n${detached}\r\n--${boundary}--\r\n`,
    );
    const weakResolver = staticResolver([weak.publicKey]);
    expect(await processIncoming(raw, { ...bobInbox, resolver: weakResolver })).toMatchObject({ ok: false, code: 'weak-key' });

    const sent = ok(await signMessage(sampleMessage({ from: ALICE, to: BOB }), { signingKey: alice.privateKey }));
    const { publicKey: revoked } = await revokeKey({ key: alice.privateKey, format: 'object' });
    expect(await processIncoming(sent, { ...bobInbox, resolver: staticResolver([revoked]) })).toMatchObject({ ok: false, code: 'key-revoked' });

    const created = new Date(Date.now() - 30 * 86_400_000);
    const shortLived = await generateMailboxKey({ address: ALICE, date: created, expiresInSeconds: 86_400 });
    const old = ok(await signMessage(sampleMessage({ from: ALICE, to: BOB }), { signingKey: shortLived.privateKey, date: new Date(created.getTime() + 1000) }));
    expect(await processIncoming(old, { ...bobInbox, resolver: { keysFor: () => Promise.resolve([shortLived.publicKey]) } })).toMatchObject({
      ok: false,
      code: 'key-expired',
    });
  });
  it('decrypted data that is not a MIME entity → malformed; encryption nested in encryption → unsupported', async () => {
    const seal = async (data: string) =>
      Buffer.concat([
        Buffer.from(`From: <${ALICE}>\r\nTo: <${BOB}>\r\nMIME-Version: 1.0\r\n`),
        containerEntity(
          buildEncrypted(await encrypt({ message: await createMessage({ binary: new Uint8Array(Buffer.from(data)) }), encryptionKeys: bob.publicKey })),
        ),
      ]);
    expect(await processIncoming(await seal('just some text, no header\r\n'), bobInbox)).toMatchObject({ ok: false, code: 'malformed' });
    const inner = await seal('Content-Type: text/plain\r\n\r\nx\r\n');
    const nested = await seal(inner.subarray(inner.indexOf('Content-Type:')).toString('latin1'));
    expect(await processIncoming(nested, bobInbox)).toMatchObject({ ok: false, code: 'unsupported' });
  });
});

describe('untrusted input never throws', () => {
  it('answers malformed for broken structures and armor', async () => {
    const header = `From: <${ALICE}>\r\nTo: <${BOB}>\r\nMIME-Version: 1.0\r\n`;
    const cases = [
      Buffer.alloc(0),
      Buffer.from('\r\n\r\n'),
      Buffer.from(`${header}Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary=b\r\n\r\n--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nnot base64 at all\r\n-----END PGP MESSAGE-----\r\n--b--\r\n`),
      Buffer.from(`${header}Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary=b\r\n\r\n--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01\x02garbage\r\n--b--\r\n`, 'latin1'),
      Buffer.from(`${header}Content-Type: multipart/signed; protocol="application/pgp-signature"; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b\r\nContent-Type: application/pgp-signature\r\n\r\n-----BEGIN PGP SIGNATURE-----\r\n\r\nAAAA\r\n-----END PGP SIGNATURE-----\r\n--b--\r\n`),
      Buffer.from(`${header}Content-Type: multipart/signed; protocol="application/pgp-signature"\r\n\r\nno boundary\r\n`),
    ];
    for (const raw of cases) {
      const result = await processIncoming(raw, bobInbox);
      expect(result).toMatchObject({ ok: false, code: 'malformed' });
    }
  });

  it('survives random corruption of valid messages', async () => {
    const signed = ok(await signMessage(sampleMessage({ from: ALICE, to: BOB }), { signingKey: alice.privateKey }));
    const encrypted = ok(await signAndEncryptMessage(sampleMessage({ from: ALICE, to: BOB }), { signingKey: alice.privateKey, recipients: [BOB], resolver }));
    let seed = 12345;
    const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const codes = new Set<string>();
    for (let i = 0; i < 120; i++) {
      const base = i % 2 === 0 ? signed : encrypted;
      const copy = Buffer.from(base);
      const flips = 1 + Math.floor(random() * 4);
      for (let f = 0; f < flips; f++) copy[Math.floor(random() * copy.length)] = Math.floor(random() * 256);
      const cut = random() < 0.2 ? copy.subarray(0, Math.floor(random() * copy.length)) : copy;
      const result = await processIncoming(cut, bobInbox);
      codes.add(result.ok ? 'ok' : result.code);
    }
    for (const code of codes) {
      expect(['ok', 'malformed', 'bad-signature', 'integrity-failure', 'cannot-decrypt', 'unknown-signer', 'unsupported', 'identity-mismatch', 'unsigned']).toContain(code);
    }
  });
});
