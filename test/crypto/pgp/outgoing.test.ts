import { readMessage, readSignature, revokeKey, verify, createMessage, type PublicKey } from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  encryptMessage,
  generateMailboxKey,
  signAndEncryptMessage,
  signMessage,
  staticResolver,
  type MailboxKeyPair,
  type PublicKeyResolver,
} from '../../../src/crypto/pgp/index.js';
import { parsePgpMime } from '../../../src/crypto/pgp/pgp-mime-parse.js';
import { sampleMessage, topParts, weakRsaKey } from './fixtures.js';

const ALICE = 'alice@hopital.test';
const BOB = 'bob@clinique.test';

let alice: MailboxKeyPair;
let bob: MailboxKeyPair;
let resolver: PublicKeyResolver;

beforeAll(async () => {
  [alice, bob] = await Promise.all([
    generateMailboxKey({ address: ALICE, name: 'Alice' }),
    generateMailboxKey({ address: BOB, name: 'Bob' }),
  ]);
  resolver = staticResolver([alice.publicKey, bob.publicKey]);
});

function headerBlock(raw: Buffer): string {
  return raw.subarray(0, raw.indexOf('\r\n\r\n') + 2).toString('utf8');
}

describe('signing (multipart/signed)', () => {
  it('keeps the routing fields outside and signs the canonical entity with a detached signature', async () => {
    const raw = sampleMessage({ from: ALICE, to: BOB, encoding: '8bit', body: 'Été\nligne 2\n' });
    const result = await signMessage(raw, { signingKey: alice.privateKey });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const header = headerBlock(result.value);
    for (const field of ['From: Sender <alice@hopital.test>', 'To: <bob@clinique.test>', 'Cc: copy@hopital.test', 'Date: ', 'Message-ID: <m1@hopital.test>', 'Subject: Compte rendu']) {
      expect(header).toContain(field);
    }
    expect(header).toMatch(/Content-Type: multipart\/signed; micalg=pgp-sha\d+; protocol="application\/pgp-signature"; boundary="/);
    expect(header.match(/MIME-Version/g)).toHaveLength(1);
    expect(header).not.toContain('charset=utf-8');

    const { children } = topParts(result.value);
    expect(children).toHaveLength(2);
    const signed = children[0]!.entity;
    expect(signed.toString('latin1')).toBe(
      'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=C3=89t=C3=A9\r\nligne 2\r\n',
    );
    expect(`${children[1]!.node.type}/${children[1]!.node.subtype}`).toBe('application/pgp-signature');
    const signature = await readSignature({ armoredSignature: children[1]!.body.toString('latin1') });
    const check = await verify({
      message: await createMessage({ binary: new Uint8Array(signed) }),
      signature,
      verificationKeys: alice.publicKey,
      format: 'binary',
    });
    await expect(check.signatures[0]!.verified).resolves.toBe(true);
    const micalg = /micalg=(pgp-[a-z0-9-]+)/.exec(header)![1];
    expect(micalg).toBe(`pgp-${['', '', '', '', '', '', '', '', 'sha256', 'sha384', 'sha512'][signature.packets[0]!.hashAlgorithm!]}`);
  });

  it('refuses to sign for a From address the key does not carry, or with a locked or public key', async () => {
    const raw = sampleMessage({ from: 'someone.else@hopital.test', to: BOB });
    expect(await signMessage(raw, { signingKey: alice.privateKey })).toMatchObject({ ok: false, code: 'identity-mismatch' });
    const noFrom = Buffer.from('To: bob@clinique.test\r\nSubject: x\r\n\r\nbody\r\n');
    expect(await signMessage(noFrom, { signingKey: alice.privateKey })).toMatchObject({ ok: false, code: 'malformed' });
    const { privateKey: revoked } = await revokeKey({ key: alice.privateKey, format: 'object' });
    expect(await signMessage(sampleMessage({ from: ALICE, to: BOB }), { signingKey: revoked })).toMatchObject({
      ok: false,
      code: 'key-revoked',
    });
  });

  it('refuses a message without a header', async () => {
    expect(await signMessage(Buffer.from('\r\njust a body\r\n'), { signingKey: alice.privateKey })).toMatchObject({
      ok: false,
      code: 'malformed',
    });
  });
});

describe('encrypting (multipart/encrypted)', () => {
  it('sign+encrypt: a multipart/encrypted holding a multipart/signed, readable by the recipient and the sender', async () => {
    const raw = sampleMessage({ from: ALICE, to: BOB });
    const result = await signAndEncryptMessage(raw, { signingKey: alice.privateKey, recipients: [BOB], resolver });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const header = headerBlock(result.value);
    expect(header).toContain('Subject: Compte rendu');
    expect(header).toMatch(/Content-Type: multipart\/encrypted; protocol="application\/pgp-encrypted"; boundary="/);
    const { children } = topParts(result.value);
    expect(children.map((c) => `${c.node.type}/${c.node.subtype}`)).toEqual(['application/pgp-encrypted', 'application/octet-stream']);
    expect(children[0]!.body.toString()).toBe('Version: 1\r\n');
    const armored = children[1]!.body.toString('latin1');
    expect(armored).toMatch(/^-----BEGIN PGP MESSAGE-----\r\n/);

    const message = await readMessage({ armoredMessage: armored });
    const recipients = message.getEncryptionKeyIDs().map((id) => id.toHex());
    const subkeyId = (k: PublicKey) => k.subkeys[0]!.getKeyID().toHex();
    expect(recipients.sort()).toEqual([subkeyId(alice.publicKey), subkeyId(bob.publicKey)].sort());
    // v4 packets only: a PKESK v3 per recipient and a SEIPD v1 (tag 18) — what gpg 2.2 reads.
    expect(message.packets.map((p) => (p.constructor as { tag?: number }).tag)).toEqual([1, 1, 18]);
    const decrypted = await message.decrypt([bob.privateKey]);
    const inner = Buffer.from(decrypted.getLiteralData() as Uint8Array);
    const parsed = parsePgpMime(inner);
    expect(parsed.ok && parsed.value.kind).toBe('signed');
  });

  it('encrypt only: recipients plus an optional copy for the sender', async () => {
    const raw = sampleMessage({ from: ALICE, to: BOB });
    const result = await encryptMessage(raw, { recipients: [BOB], resolver, encryptToSelf: alice.publicKey });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const armored = topParts(result.value).children[1]!.body.toString('latin1');
    const message = await readMessage({ armoredMessage: armored });
    expect(message.getEncryptionKeyIDs()).toHaveLength(2);
    const decrypted = await message.decrypt([alice.privateKey]);
    expect(Buffer.from(decrypted.getLiteralData() as Uint8Array).toString()).toBe(
      'Content-Type: text/plain; charset=utf-8\r\n\r\nBonjour,\r\nVoici le compte rendu.\r\n',
    );
  });

  it('fails with the recipient named when a recipient has no usable key', async () => {
    const raw = sampleMessage({ from: ALICE, to: BOB });
    expect(await signAndEncryptMessage(raw, { signingKey: alice.privateKey, recipients: [BOB, 'nokey@ailleurs.test'], resolver })).toEqual({
      ok: false,
      code: 'no-recipient-key',
      detail: 'no public key known for nokey@ailleurs.test',
      address: 'nokey@ailleurs.test',
    });
    expect(await encryptMessage(raw, { recipients: [], resolver })).toMatchObject({ ok: false, code: 'no-recipient-key' });

    const weak = await weakRsaKey('weak@ailleurs.test');
    const weakResolver: PublicKeyResolver = { keysFor: () => Promise.resolve([weak.publicKey]) };
    expect(await encryptMessage(raw, { recipients: ['weak@ailleurs.test'], resolver: weakResolver })).toMatchObject({
      ok: false,
      code: 'weak-key',
      address: 'weak@ailleurs.test',
    });

    const past = new Date(Date.now() - 30 * 86_400_000);
    const expired = await generateMailboxKey({ address: 'old@ailleurs.test', date: past, expiresInSeconds: 86_400 });
    expect(await encryptMessage(raw, { recipients: ['old@ailleurs.test'], resolver: staticResolver([expired.publicKey]) })).toMatchObject({
      ok: false,
      code: 'key-expired',
    });

    // A key filed under the wrong address is not used: it would let its owner read the message.
    const misfiled: PublicKeyResolver = { keysFor: () => Promise.resolve([bob.publicKey]) };
    expect(await encryptMessage(raw, { recipients: ['carol@ailleurs.test'], resolver: misfiled })).toMatchObject({
      ok: false,
      code: 'identity-mismatch',
    });

    const down: PublicKeyResolver = { keysFor: () => Promise.reject(new Error('directory unavailable')) };
    expect(await encryptMessage(raw, { recipients: [BOB], resolver: down })).toMatchObject({ ok: false, code: 'key-lookup-failed' });
  });
});
