import { revokeKey } from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  armorPrivateKey,
  armorPublicKey,
  binaryPublicKey,
  checkKeyStrength,
  fingerprintOf,
  generateMailboxKey,
  keyInfo,
  readPrivateKey,
  readPublicKey,
  readPublicKeys,
  staticResolver,
  userIdsOf,
  verifiedEmails,
  type MailboxKeyPair,
} from '../../../src/crypto/pgp/index.js';
import { weakRsaKey } from './fixtures.js';

let ecc: MailboxKeyPair;
let rsa: MailboxKeyPair;

beforeAll(async () => {
  [ecc, rsa] = await Promise.all([
    generateMailboxKey({ address: 'Jean.Dupont@Hopital.test', name: 'Jean Dupont' }),
    generateMailboxKey({ address: 'dpi@hopital.test', algorithm: 'rsa3072' }),
  ]);
});

describe('generating mailbox keys', () => {
  it('makes a v4 ed25519/cv25519 key pair with one user ID for the address', () => {
    const info = keyInfo(ecc.publicKey);
    expect(info.fingerprint).toMatch(/^[0-9a-f]{40}$/);
    expect(info.fingerprint).toBe(ecc.fingerprint);
    expect(info.keyId).toBe(info.fingerprint.slice(-16));
    expect(ecc.publicKey.keyPacket.version).toBe(4);
    expect(info.algorithm).toBe('eddsaLegacy');
    expect(info.subkeys.map((s) => [s.algorithm, s.curve])).toEqual([['ecdh', 'curve25519Legacy']]);
    expect(info.userIds).toEqual(['Jean Dupont <jean.dupont@hopital.test>']);
    expect(info.emails).toEqual(['jean.dupont@hopital.test']);
    expect(info.isPrivate).toBe(false);
    expect(ecc.revocationCertificate).toContain('BEGIN PGP PUBLIC KEY BLOCK');
  });

  it('makes RSA 3072 keys with a bare address user ID', async () => {
    const info = keyInfo(rsa.publicKey);
    expect([info.algorithm, info.bits]).toEqual(['rsaEncryptSign', 3072]);
    expect(info.subkeys[0]?.bits).toBe(3072);
    expect(userIdsOf(rsa.publicKey)).toEqual(['<dpi@hopital.test>']);
    expect(await verifiedEmails(rsa.publicKey)).toEqual(['dpi@hopital.test']);
  });

  it('refuses something that is not an address', async () => {
    await expect(generateMailboxKey({ address: 'not an address' })).rejects.toThrow(TypeError);
  });
});

describe('importing and exporting keys', () => {
  it('round-trips an armored and a binary public key', async () => {
    const armored = armorPublicKey(ecc.privateKey);
    expect(armored).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
    expect(armored).not.toMatch(/Version:|Comment:/);
    const back = await readPublicKey(armored);
    expect(back.ok && fingerprintOf(back.value)).toBe(ecc.fingerprint);
    const binary = await readPublicKey(binaryPublicKey(rsa.publicKey));
    expect(binary.ok && fingerprintOf(binary.value)).toBe(rsa.fingerprint);
    const both = await readPublicKeys(armorPublicKey(ecc.publicKey) + armorPublicKey(rsa.publicKey));
    expect(both.ok && both.value.map(fingerprintOf)).toEqual([ecc.fingerprint, rsa.fingerprint]);
  });

  it('round-trips a private key in clear and under a passphrase', async () => {
    const clear = await readPrivateKey(await armorPrivateKey(ecc.privateKey));
    expect(clear.ok && clear.value.isDecrypted() && fingerprintOf(clear.value)).toBe(ecc.fingerprint);
    const locked = await armorPrivateKey(ecc.privateKey, 'correct horse');
    expect((await readPrivateKey(locked)).ok).toBe(false);
    expect(await readPrivateKey(locked)).toMatchObject({ ok: false, code: 'key-locked' });
    expect(await readPrivateKey(locked, 'wrong')).toMatchObject({ ok: false, code: 'bad-passphrase' });
    const opened = await readPrivateKey(locked, 'correct horse');
    expect(opened.ok && opened.value.isDecrypted()).toBe(true);
    // The original object is untouched by exporting under a passphrase.
    expect(ecc.privateKey.isDecrypted()).toBe(true);
  });

  it('answers malformed for garbage, truncated armor, and a private key where a public one is expected', async () => {
    const armored = armorPublicKey(ecc.publicKey);
    for (const input of ['', 'hello', armored.slice(0, 120), '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n!!!!\n-----END PGP PUBLIC KEY BLOCK-----\n', new Uint8Array([1, 2, 3, 4])]) {
      expect(await readPublicKey(input)).toMatchObject({ ok: false, code: 'malformed' });
      expect(await readPrivateKey(input)).toMatchObject({ ok: false, code: 'malformed' });
    }
    expect(await readPublicKey(await armorPrivateKey(ecc.privateKey))).toMatchObject({ ok: false, code: 'malformed' });
    expect(await readPrivateKey(armored)).toMatchObject({ ok: false, code: 'malformed' });
    expect(await readPublicKey('x'.repeat((1 << 20) + 1))).toMatchObject({ ok: false, code: 'malformed' });
  });

  it('refuses RSA keys under 2048 bits as weak-key', async () => {
    const weak = await weakRsaKey('weak@hopital.test');
    expect(checkKeyStrength(weak.publicKey)).toMatchObject({ code: 'weak-key' });
    expect(checkKeyStrength(rsa.publicKey)).toBeNull();
    expect(await readPublicKey(armorPublicKey(weak.publicKey))).toMatchObject({ ok: false, code: 'weak-key' });
    expect(await readPrivateKey(await armorPrivateKey(weak.privateKey))).toMatchObject({ ok: false, code: 'weak-key' });
  });

  it('drops the user IDs of a revoked key from the verified emails', async () => {
    const { privateKey: revoked } = await revokeKey({ key: ecc.privateKey, format: 'object' });
    expect(keyInfo(revoked).emails).toEqual(['jean.dupont@hopital.test']);
    expect(await verifiedEmails(revoked)).toEqual([]);
  });
});

describe('static resolver', () => {
  it('finds keys by user ID email, case-insensitively', async () => {
    const resolver = staticResolver([ecc.publicKey, rsa.publicKey]);
    expect((await resolver.keysFor('JEAN.DUPONT@hopital.test')).map(fingerprintOf)).toEqual([ecc.fingerprint]);
    expect(await resolver.keysFor('nobody@hopital.test')).toEqual([]);
  });
});
