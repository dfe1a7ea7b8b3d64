/**
 * The keystore on both engines: imports (PEM, PKCS#12, OpenPGP) and their refusals, dev-PKI issuance, keys
 * opened for the agent, revocation with the dev CRL, correspondents, and no private key in clear in the database.
 */
import { createPrivateKey, createSign, createVerify, type KeyObject, privateDecrypt, publicEncrypt, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createMessage, readSignature, sign as pgpSign, verify as pgpVerify } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMailbox } from '../../src/accounts/mailboxes.js';
import { devPkiPaths, ensureDevPki, type DevPkiOptions } from '../../src/crypto/devpki.js';
import { issueDemoCredentials, Keystore, keystoreAad, KeystoreError } from '../../src/crypto/keystore.js';
import { armorPrivateKey, generateMailboxKey } from '../../src/crypto/pgp/index.js';
import { Keyring, SealError } from '../../src/crypto/seal.js';
import { openKeystoreStore } from '../../src/store/keystore.js';
import type { Store } from '../../src/store/types.js';
import { ENGINES, openTestStore, type TestStore } from '../helpers/engines.js';
import { command, makeLeaf, makeP12, makeTestCa, openssl, type TestCa, type TestLeaf } from '../helpers/openssl-certs.js';

const DOMAIN = 'hopital.test';
const JEAN = `jean.dupont@${DOMAIN}`;
const CLAIRE = `claire.martin@${DOMAIN}`;
const DPI = `dpi@${DOMAIN}`;
const PATIENT = '279035121518989@patient.test';
const BOB = 'bob@clinique.test';

/** Fixtures shared by both engines: made once with openssl. */
const fixDir = mkdtempSync(path.join(tmpdir(), 'mss-keystore-fix-'));
let ca: TestCa;
let claireAuth: TestLeaf;
let claireSign: TestLeaf;
let claireOther: TestLeaf;
let claireWeak: TestLeaf;
let strangerLeaf: TestLeaf;
let bobLeaf: TestLeaf;
let bobWeak: TestLeaf;
let claireP12: string;
let claireSignP12: string;

beforeAll(async () => {
  ca = await makeTestCa(fixDir, 'Import');
  [claireAuth, claireSign, claireOther, claireWeak, strangerLeaf, bobLeaf, bobWeak] = await Promise.all([
    makeLeaf(fixDir, ca, 'claire-auth', { email: CLAIRE }),
    makeLeaf(fixDir, ca, 'claire-sign', { email: CLAIRE, keyUsage: 'digitalSignature, nonRepudiation', extKeyUsage: 'emailProtection' }),
    makeLeaf(fixDir, ca, 'claire-other', { email: CLAIRE }),
    makeLeaf(fixDir, ca, 'claire-weak', { email: CLAIRE, bits: 1024 }),
    makeLeaf(fixDir, ca, 'stranger', { email: 'someone@elsewhere.test' }),
    makeLeaf(fixDir, ca, 'bob', { email: BOB }),
    makeLeaf(fixDir, ca, 'bob-weak', { email: BOB, bits: 1024 }),
  ]);
  claireP12 = await makeP12(fixDir, claireAuth, ca, 'mot de passe', 'claire-auth');
  claireSignP12 = await makeP12(fixDir, claireSign, ca, 'mot de passe', 'claire-sign');
});
afterAll(() => rmSync(fixDir, { recursive: true, force: true }));

function signAndVerify(key: KeyObject, publicKey: KeyObject): boolean {
  const data = Buffer.from('compte rendu de consultation');
  const signature = createSign('sha256').update(data).sign(key);
  return createVerify('sha256').update(data).verify(publicKey, signature);
}

async function rejects(p: Promise<unknown>, code: KeystoreError['code'], message?: RegExp): Promise<void> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, `expected KeystoreError ${code}`).toBeInstanceOf(KeystoreError);
  expect((err as KeystoreError).code, (err as Error).message).toBe(code);
  if (message) expect((err as Error).message).toMatch(message);
}

/** Every file under a directory (the SQLite database, its WAL and shared memory). */
function filesUnder(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).map((f) => path.join(dir, f)).filter((f) => {
    try {
      readFileSync(f);
      return true;
    } catch {
      return false;
    }
  });
}

describe.each(ENGINES)('keystore (%s)', (engine) => {
  let ts: TestStore;
  let store: Store;
  let keyring: Keyring;
  let pki: DevPkiOptions;
  let keystore: Keystore;
  /** PKCS#8 DER of every private key that went into the keystore, to look for in the database afterwards. */
  const secrets: Buffer[] = [];

  beforeAll(async () => {
    ts = await openTestStore(engine);
    store = ts.store;
    keyring = new Keyring(randomBytes(32));
    pki = {
      certsDir: path.join(ts.dir, 'certs'),
      keyring,
      keyAlgorithm: 'RSA-2048',
      hash: 'SHA-256',
      caValidityDays: 3650,
      leafValidityDays: 825,
      serverNames: ['localhost'],
    };
    await ensureDevPki(pki);
    await createMailbox(store, keyring, { address: JEAN, type: 'PER', ownerId: '810001234567', displayName: 'Dr Jean DUPONT' });
    await createMailbox(store, keyring, { address: CLAIRE, type: 'PER', ownerId: '810007654321', displayName: 'Dr Claire MARTIN' });
    await createMailbox(store, keyring, { address: DPI, type: 'APP', ownerId: '1750000001', displayName: 'Hôpital — DPI' });
    await createMailbox(store, keyring, { address: PATIENT, type: 'PATIENT', ownerId: '279035121518989' });
    keystore = new Keystore({ store, keyring, pki });
  });
  afterAll(async () => {
    await ts.dispose();
  });

  describe('import', () => {
    it('imports a PEM certificate and key; the key opens and signs what the certificate verifies; a second import changes nothing', async () => {
      const first = await keystore.importPem(CLAIRE, 'auth', claireAuth.certPem, claireAuth.keyPem, ca.certPem);
      expect(first.created).toBe(true);
      expect(first.credential).toMatchObject({ address: CLAIRE, usage: 'auth', format: 'x509', status: 'valid', revokedAt: null });
      expect(first.credential.fingerprint).toMatch(/^[0-9a-f]{64}$/);
      secrets.push(createPrivateKey(claireAuth.keyPem).export({ type: 'pkcs8', format: 'der' }));

      const again = await keystore.importPem(CLAIRE, 'auth', claireAuth.certPem, claireAuth.keyPem);
      expect(again.created).toBe(false);
      expect(again.credential.id).toBe(first.credential.id);

      const auth = await keystore.credentialsFor(CLAIRE, 'auth');
      expect(auth.certificate.fingerprint256).toBe(first.credential.fingerprint);
      expect(auth.chain?.map((c) => c.subject)).toEqual(['CN=Import CA,O=Test']);
      expect(signAndVerify(auth.key, auth.certificate.publicKey)).toBe(true);
    });

    it('imports a PKCS#12 file (openssl pkcs12 -export); the usage comes from the certificate unless given', async () => {
      const signed = await keystore.importPkcs12(CLAIRE, readFileSync(claireSignP12), 'mot de passe');
      expect(signed.credential.usage).toBe('sign'); // nonRepudiation only: a signature certificate
      secrets.push(createPrivateKey(claireSign.keyPem).export({ type: 'pkcs8', format: 'der' }));
      const sign = await keystore.credentialsFor(CLAIRE, 'sign');
      expect(sign.certificate.fingerprint256).toBe(signed.credential.fingerprint);
      expect(sign.chain).toEqual([]); // the self-signed CA of the file is an anchor, not a chain certificate
      expect(signAndVerify(sign.key, sign.certificate.publicKey)).toBe(true);

      const enc = await keystore.importPkcs12(CLAIRE, readFileSync(claireP12), 'mot de passe', 'encrypt');
      expect(enc).toMatchObject({ created: true, credential: { usage: 'encrypt' } });
      await rejects(keystore.importPkcs12(CLAIRE, readFileSync(claireP12), 'wrong'), 'bad-password');
      await rejects(keystore.importPkcs12(CLAIRE, Buffer.from('not pkcs12'), 'x'), 'malformed');
    });

    it('refuses a private key that is not the certificate’s', async () => {
      await rejects(keystore.importPem(CLAIRE, 'auth', claireAuth.certPem, claireOther.keyPem), 'key-mismatch', /does not match the certificate/);
    });

    it('refuses RSA keys below 2048 bits', async () => {
      await rejects(keystore.importPem(CLAIRE, 'auth', claireWeak.certPem, claireWeak.keyPem), 'weak-key', /1024 bits/);
      const p12 = await makeP12(fixDir, claireWeak, ca, 'pw', `weak-${engine}`);
      await rejects(keystore.importPkcs12(CLAIRE, readFileSync(p12), 'pw'), 'weak-key');
    });

    it('refuses an expired or not yet valid certificate unless forced', async () => {
      const later = new Keystore({ store, keyring, pki, now: () => Date.now() + 60 * 86_400_000 });
      await rejects(later.importPem(CLAIRE, 'auth', claireOther.certPem, claireOther.keyPem), 'cert-expired', /--force/);
      const earlier = new Keystore({ store, keyring, pki, now: () => Date.now() - 86_400_000 });
      await rejects(earlier.importPem(CLAIRE, 'auth', claireOther.certPem, claireOther.keyPem), 'cert-not-yet-valid');
      const forced = await later.importPem(CLAIRE, 'auth', claireOther.certPem, claireOther.keyPem, undefined, { force: true });
      expect(forced.credential.status).toBe('expired');
      secrets.push(createPrivateKey(claireOther.keyPem).export({ type: 'pkcs8', format: 'der' }));
    });

    it('refuses a certificate that does not name the mailbox (unless forced), a CA certificate, a wrong usage, an unknown mailbox', async () => {
      await rejects(keystore.importPem(CLAIRE, 'auth', strangerLeaf.certPem, strangerLeaf.keyPem), 'identity-mismatch', /does not name claire/);
      await rejects(keystore.importPem(CLAIRE, 'auth', ca.certPem, readFileSync(ca.keyFile)), 'ca-certificate');
      await rejects(keystore.importPem(CLAIRE, 'encrypt', claireSign.certPem, claireSign.keyPem), 'key-usage');
      await rejects(keystore.importPem('nobody@hopital.test', 'auth', claireAuth.certPem, claireAuth.keyPem), 'unknown-mailbox');
    });

    it('imports an OpenPGP private key (passphrase-protected) naming the mailbox', async () => {
      const pair = await generateMailboxKey({ address: CLAIRE, name: 'Claire MARTIN' });
      const locked = await armorPrivateKey(pair.privateKey, 'phrase secrète');
      await rejects(keystore.importOpenPgp(CLAIRE, locked), 'bad-password');
      const r = await keystore.importOpenPgp(CLAIRE, locked, 'phrase secrète');
      expect(r.credential).toMatchObject({ usage: 'openpgp', format: 'openpgp', fingerprint: pair.fingerprint, notAfter: null });
      const other = await generateMailboxKey({ address: BOB });
      await rejects(keystore.importOpenPgp(CLAIRE, await armorPrivateKey(other.privateKey)), 'identity-mismatch');
      const pgp = await keystore.credentialsFor(CLAIRE, 'openpgp');
      expect(pgp.fingerprint).toBe(pair.fingerprint);
    });
  });

  describe('dev PKI', () => {
    it('issueDev gives a practitioner auth and sign certificates and an OpenPGP key, all usable; a second call issues nothing', async () => {
      const r = await keystore.issueDev(JEAN);
      expect(r.credentials.map((c) => [c.usage, c.created])).toEqual([
        ['auth', true],
        ['sign', true],
        ['openpgp', true],
      ]);
      const again = await keystore.issueDev(JEAN);
      expect(again.credentials.every((c) => !c.created)).toBe(true);
      expect(again.credentials.map((c) => c.fingerprint)).toEqual(r.credentials.map((c) => c.fingerprint));

      const sign = await keystore.credentialsFor(JEAN, 'sign');
      expect(sign.certificate.subjectValues('2.5.4.5')).toEqual(['810001234567']);
      expect(sign.certificate.emails).toEqual([JEAN]);
      expect(sign.chain?.map((c) => c.subject)).toEqual(['CN=DEV AC IGC-SANTE PERSONNES,OU=DEV IGC-SANTE,O=MSS DEV,C=FR']);
      expect(signAndVerify(sign.key, sign.certificate.publicKey)).toBe(true);
      const auth = await keystore.credentialsFor(JEAN, 'auth');
      expect(signAndVerify(auth.key, auth.certificate.publicKey)).toBe(true);
      expect(auth.certificate.fingerprint256).not.toBe(sign.certificate.fingerprint256);

      // The authentication certificate also receives encrypted mail.
      const [dec, ...more] = await keystore.credentialsFor(JEAN, 'encrypt');
      expect(more).toEqual([]);
      expect(dec!.certificate.fingerprint256).toBe(auth.certificate.fingerprint256);
      const secret = randomBytes(32);
      expect(privateDecrypt(dec!.key, publicEncrypt(dec!.certificate.publicKey, secret)).equals(secret)).toBe(true);
      expect((await keystore.encryptionCertificate(JEAN))?.fingerprint256).toBe(auth.certificate.fingerprint256);

      const pgp = await keystore.credentialsFor(JEAN, 'openpgp');
      const message = await createMessage({ text: 'résultats' });
      const signature = await pgpSign({ message, signingKeys: pgp.privateKey, detached: true });
      const verified = await pgpVerify({ message, signature: await readSignature({ armoredSignature: signature }), verificationKeys: pgp.publicKey });
      await expect(verified.signatures[0]!.verified).resolves.toBe(true);

      for (const k of [auth.key, sign.key]) secrets.push(k.export({ type: 'pkcs8', format: 'der' }));
    });

    it('an application mailbox gets one organisation certificate that serves auth, sign and encrypt', async () => {
      const r = await keystore.issueDev(DPI, { openpgp: false });
      expect(r.credentials.map((c) => c.usage)).toEqual(['auth']);
      const sign = await keystore.credentialsFor(DPI, 'sign');
      const auth = await keystore.credentialsFor(DPI, 'auth');
      expect(sign.certificate.equals(auth.certificate)).toBe(true);
      expect(sign.certificate.subjectValues('2.5.4.3')).toEqual([DPI]);
      expect(signAndVerify(sign.key, sign.certificate.publicKey)).toBe(true);
      expect((await keystore.credentialsFor(DPI, 'encrypt')).map((k) => k.certificate.fingerprint256)).toEqual([auth.certificate.fingerprint256]);
      await rejects(keystore.credentialsFor(DPI, 'openpgp'), 'no-credential');
      secrets.push(auth.key.export({ type: 'pkcs8', format: 'der' }));
    });

    it('refuses a patient mailbox and a practitioner without idNat_PS', async () => {
      await rejects(keystore.issueDev(PATIENT), 'unsupported-mailbox-type', /PATIENT/);
      await createMailbox(store, keyring, { address: `anonyme@${DOMAIN}`, type: 'PER', ownerId: null });
      await rejects(keystore.issueDev(`anonyme@${DOMAIN}`), 'missing-identity', /RPPS/);
    });

    it('revoke puts a dev certificate on its CA’s CRL (openssl sees it), and issueDev then issues a new one', async () => {
      const before = await keystore.credentialsFor(JEAN, 'sign');
      const certFile = path.join(ts.dir, `jean-sign-${engine}.pem`);
      writeFileSync(certFile, before.certificate.pem);
      const paths = devPkiPaths(pki.certsDir);
      const verifyArgs = ['verify', '-crl_check', '-CAfile', paths.caCert('root'), '-untrusted', paths.caCert('persons'), '-CRLfile', paths.caCrl('persons'), certFile];
      expect((await command('openssl', verifyArgs, ts.dir)).code).toBe(0);

      const r = await keystore.revoke(JEAN, before.certificate.serialNumber, 'keyCompromise');
      expect(r).toMatchObject({ address: JEAN, usages: ['sign'], alreadyRevoked: false, crlFile: paths.caCrl('persons') });

      const crl = await openssl(['crl', '-in', paths.caCrl('persons'), '-noout', '-text'], ts.dir);
      expect(crl).toContain(`Serial Number: ${before.certificate.serialNumber.toUpperCase()}`);
      expect(crl).toMatch(/Key Compromise/);
      const verify = await command('openssl', verifyArgs, ts.dir);
      expect(verify.code).not.toBe(0);
      expect(verify.out).toMatch(/certificate revoked/);

      const listed = (await keystore.list(JEAN)).find((c) => c.fingerprint === before.certificate.fingerprint256);
      expect(listed).toMatchObject({ status: 'revoked', revocationReason: 'keyCompromise' });
      await rejects(keystore.credentialsFor(JEAN, 'sign'), 'no-credential', /revoked/);
      expect((await keystore.revoke(JEAN, before.certificate.fingerprint256)).alreadyRevoked).toBe(true);

      const reissued = await keystore.issueDev(JEAN);
      expect(reissued.credentials.map((c) => [c.usage, c.created])).toEqual([
        ['auth', false],
        ['sign', true],
        ['openpgp', false],
      ]);
      const after = await keystore.credentialsFor(JEAN, 'sign');
      expect(after.certificate.serialNumber).not.toBe(before.certificate.serialNumber);
      secrets.push(after.key.export({ type: 'pkcs8', format: 'der' }));
    });

    it('revoke of an imported certificate marks it without touching a CRL; unknown and ambiguous references are refused', async () => {
      const enc = (await keystore.list(CLAIRE)).find((c) => c.usage === 'encrypt')!;
      const r = await keystore.revoke(CLAIRE, enc.fingerprint.slice(0, 12), 'superseded');
      // The same certificate was imported for auth and for encrypt: both rows are revoked.
      expect(r).toMatchObject({ crlFile: null, alreadyRevoked: false });
      expect(r.usages.sort()).toEqual(['auth', 'encrypt']);
      const other = (await keystore.list(CLAIRE)).find((c) => c.usage === 'auth' && c.status === 'valid')!;
      expect((await keystore.revoke(CLAIRE, other.serial.toUpperCase().replace(/(..)(?!$)/g, '$1:'))).usages).toEqual(['auth']);
      await rejects(keystore.credentialsFor(CLAIRE, 'auth'), 'no-credential');
      await rejects(keystore.revoke(CLAIRE, 'abcdef0123456789'), 'not-found');
      await rejects(keystore.revoke(CLAIRE, 'not hex!'), 'malformed');
      await rejects(keystore.revoke(CLAIRE, '0'), 'not-found');
      // Decryption still offers the revoked key (mail encrypted to it before must open), valid keys first.
      const keys = await keystore.credentialsFor(CLAIRE, 'encrypt');
      expect(keys.map((k) => k.certificate.fingerprint256)).toContain(enc.fingerprint);
    });

    it('issueDemoCredentials gives every practitioner and application mailbox its credentials, once', async () => {
      const first = await issueDemoCredentials(store, keyring, pki, [CLAIRE, DPI]);
      // Claire's imported sign certificate and OpenPGP key are valid, her auth ones revoked: a dev auth
      // certificate is issued. The application mailbox had no OpenPGP key.
      expect(first.lines).toEqual([`issued keystore credentials for ${CLAIRE}: auth`, `issued keystore credentials for ${DPI}: openpgp`]);
      expect(first.created).toBe(2);
      const second = await issueDemoCredentials(store, keyring, pki, [CLAIRE, DPI]);
      expect(second).toEqual({ created: 0, lines: [] });
      const auth = await keystore.credentialsFor(CLAIRE, 'auth');
      secrets.push(auth.key.export({ type: 'pkcs8', format: 'der' }));
    });
  });

  describe('correspondents', () => {
    it('keeps certificates and OpenPGP keys of other people, refusing weak, misnamed and unusable ones', async () => {
      expect(await keystore.addCorrespondent(BOB, bobLeaf.certPem)).toMatchObject({ created: true, format: 'x509' });
      expect(await keystore.addCorrespondent(BOB.toUpperCase(), readFileSync(bobLeaf.certFile), { source: 'message' })).toMatchObject({ created: false });
      const certs = await keystore.correspondentCertificates(BOB);
      expect(certs.map((c) => c.emails)).toEqual([[BOB]]);
      await rejects(keystore.addCorrespondent(BOB, bobWeak.certPem), 'weak-key');
      await rejects(keystore.addCorrespondent(BOB, claireAuth.certPem), 'identity-mismatch');
      await rejects(keystore.addCorrespondent(CLAIRE, claireSign.certPem), 'key-usage');

      const pair = await generateMailboxKey({ address: BOB });
      expect(await keystore.addCorrespondent(BOB, pair.publicKey.armor())).toMatchObject({ created: true, format: 'openpgp', fingerprint: pair.fingerprint });
      expect((await keystore.correspondentOpenPgpKeys(BOB)).map((k) => k.getFingerprint())).toEqual([pair.fingerprint]);
      // Our own mailboxes' OpenPGP keys are found too.
      expect((await keystore.pgpResolver().keysFor(JEAN)).length).toBe(1);
      expect(await keystore.removeCorrespondent(BOB, pair.fingerprint)).toBe(true);
      expect(await keystore.correspondentOpenPgpKeys(BOB)).toEqual([]);
    });
  });

  describe('at rest', () => {
    it('a sealed key moved to another row does not open', async () => {
      const jeanAuth = (await keystore.list(JEAN)).find((c) => c.usage === 'auth')!;
      const keys = openKeystoreStore(store);
      const row = (await keys.listCredentials()).find((r) => r.id === jeanAuth.id)!;
      const claire = (await store.getMailbox(CLAIRE))!;
      // Claire gets a copy of Jean's certificate and sealed key under the 'encrypt' usage.
      await keys.transaction((tx) => tx.insertCredential({ ...row, mailboxId: claire.id, usage: 'encrypt', chainPem: row.chainPem }));
      await expect(keystore.credentialsFor(CLAIRE, 'encrypt')).rejects.toThrow(SealError);
      expect(() => keyring.openWithMaster(row.sealedKey, keystoreAad.privateKey(JEAN, 'sign', row.fingerprint))).toThrow(SealError);
    });

    it('no private key is in clear in the database (SQLite files / pg_dump)', async () => {
      expect(secrets.length).toBeGreaterThanOrEqual(7);
      const rows = await openKeystoreStore(store).listCredentials();
      expect(rows.every((r) => r.sealedKey.length > 0)).toBe(true);
      let haystack: Buffer;
      if (engine === 'sqlite') {
        haystack = Buffer.concat(filesUnder(ts.dir).filter((f) => /mss\.sqlite/.test(f)).map((f) => readFileSync(f)));
        expect(haystack.length).toBeGreaterThan(0);
      } else {
        const dump = await command('pg_dump', ['--data-only', '--dbname', ts.url!], ts.dir);
        expect(dump.code, dump.out).toBe(0);
        expect(dump.out).toMatch(/COPY public\.mailbox_credentials/);
        haystack = Buffer.from(dump.out);
      }
      // Positive control: the certificates, public, are there in clear (one full PEM line of each).
      for (const r of rows) expect(haystack.includes(r.certificate.split('\n')[2]!), r.fingerprint).toBe(true);
      for (const marker of ['PRIVATE KEY', 'PGP PRIVATE KEY BLOCK']) expect(haystack.includes(marker), marker).toBe(false);
      for (const der of secrets) {
        // A slice from the middle of the key (the private exponent and primes), raw, hex (bytea) and base64 (PEM).
        const slice = der.subarray(Math.floor(der.length / 2), Math.floor(der.length / 2) + 48);
        expect(haystack.includes(slice)).toBe(false);
        expect(haystack.includes(slice.toString('hex'))).toBe(false);
        expect(haystack.includes(der.subarray(300, 345).toString('base64'))).toBe(false);
      }
    });
  });
});
