/**
 * PKCS#1 v1.5 key transport without --security-revert (docs/decisions/0006): raw RSA plus constant-time
 * unpadding with implicit rejection. Bleichenbacher-style malformed ciphertexts, built by raw RSA encryption
 * with the recipient's public key, must give exactly the outcome of a message encrypted with the wrong key.
 */
import { constants, createCipheriv, privateDecrypt, publicEncrypt, randomBytes, type KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { algorithmIdentifier, contextCons, contextPrim, derNull, int, octetString, oid, seq, setOf, tlv } from '../../src/crypto/cms/der.js';
import { decryptEnvelopedData, parseEnvelopedData } from '../../src/crypto/cms/enveloped-data.js';
import { SmimeError } from '../../src/crypto/cms/failure.js';
import { unwrapKeyPkcs1 } from '../../src/crypto/cms/key-transport.js';
import { OIDS } from '../../src/crypto/cms/oids.js';
import { processInbound } from '../../src/crypto/smime/index.js';
import { buildPkcs7Mime } from '../../src/crypto/smime/entity.js';
import { generatePair, type Issued, TestPki } from './helpers/pki.js';

let pki: TestPki;
let bob: Issued;
let other: Issued;
const K = 256; // 2048-bit modulus

/** Raw RSA "encryption" of an arbitrary k-byte encoded message: m^e mod n. */
function rawEncrypt(pub: KeyObject, em: Buffer): Buffer {
  return publicEncrypt({ key: pub, padding: constants.RSA_NO_PADDING }, em);
}

function nonZero(n: number): Buffer {
  const b = randomBytes(n);
  for (let i = 0; i < n; i++) while (b[i] === 0) b[i] = randomBytes(1)[0]!;
  return b;
}

/** EM = 00 02 PS 00 M with the given pieces (for building malformed ones). */
function em(first: number, second: number, ps: Buffer, separator: boolean, m: Buffer): Buffer {
  const out = Buffer.concat([Buffer.of(first, second), ps, separator ? Buffer.of(0) : Buffer.alloc(0), m]);
  if (out.length !== K) throw new Error(`EM of ${out.length} bytes`);
  return out;
}

function malformedCiphertexts(pub: KeyObject, cek: Buffer): Record<string, Buffer> {
  const L = cek.length;
  const psLen = K - 3 - L;
  return {
    'first byte not 00': rawEncrypt(pub, em(0x01, 0x02, nonZero(psLen), true, cek)),
    'second byte not 02 (signature type 01)': rawEncrypt(pub, em(0x00, 0x01, Buffer.alloc(psLen, 0xff), true, cek)),
    'second byte 00': rawEncrypt(pub, em(0x00, 0x00, nonZero(psLen), true, cek)),
    'no zero separator': rawEncrypt(pub, em(0x00, 0x02, nonZero(K - 2), false, Buffer.alloc(0))),
    'padding string of 7 bytes': rawEncrypt(pub, Buffer.concat([Buffer.of(0, 2), nonZero(7), Buffer.of(0), nonZero(K - 10)])),
    'empty padding string': rawEncrypt(pub, Buffer.concat([Buffer.of(0, 2, 0), nonZero(K - 3)])),
    'key one byte short': rawEncrypt(pub, em(0x00, 0x02, nonZero(psLen + 1), true, cek.subarray(1))),
    'key one byte long': rawEncrypt(pub, em(0x00, 0x02, nonZero(psLen - 1), true, Buffer.concat([cek, Buffer.of(7)]))),
    '16-byte key where 32 are expected': rawEncrypt(pub, em(0x00, 0x02, nonZero(K - 3 - 16), true, randomBytes(16))),
    'all-zero encoded message': rawEncrypt(pub, Buffer.alloc(K)),
    'ciphertext not below the modulus': Buffer.alloc(K, 0xff),
    'ciphertext one byte short': randomBytes(K - 1),
    'ciphertext one byte long': randomBytes(K + 1),
    'empty ciphertext': Buffer.alloc(0),
  };
}

type Mode = 'aes-256-cbc' | 'aes-256-gcm';

/** An (Auth)EnvelopedData for `recipient` whose encryptedKey is exactly `encryptedKey`, content under `cek`. */
function envelope(recipient: Issued, encryptedKey: Buffer, cek: Buffer, content: Buffer, mode: Mode): Buffer {
  const ktri = seq(int(0), seq(recipient.cert.issuerDer, tlv(0x02, recipient.cert.serialBytes)), algorithmIdentifier(OIDS.rsaEncryption, derNull()), octetString(encryptedKey));
  if (mode === 'aes-256-cbc') {
    const iv = randomBytes(16);
    const c = createCipheriv('aes-256-cbc', cek, iv);
    const ct = Buffer.concat([c.update(content), c.final()]);
    const eci = seq(oid(OIDS.data), algorithmIdentifier(OIDS.aes256Cbc, octetString(iv)), contextPrim(0, ct));
    return seq(oid(OIDS.envelopedData), contextCons(0, seq(int(0), setOf([ktri]), eci)));
  }
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', cek, nonce, { authTagLength: 16 });
  const ct = Buffer.concat([c.update(content), c.final()]);
  const eci = seq(oid(OIDS.data), algorithmIdentifier(OIDS.aes256Gcm, seq(octetString(nonce), int(16))), contextPrim(0, ct));
  return seq(oid(OIDS.authEnvelopedData), contextCons(0, seq(int(0), setOf([ktri]), eci, octetString(c.getAuthTag()))));
}

function asMessage(der: Buffer, mode: Mode): Buffer {
  return Buffer.concat([
    Buffer.from('From: alice@hopital.test\r\nTo: bob@clinique.test\r\nMIME-Version: 1.0\r\n'),
    buildPkcs7Mime(der, mode === 'aes-256-gcm' ? 'authEnveloped-data' : 'enveloped-data'),
  ]);
}

const CONTENT = Buffer.from('Content-Type: text/plain\r\n\r\nCompte rendu confidentiel.\r\n');

beforeAll(async () => {
  const [rootP, interP, bobP, otherP] = await Promise.all([generatePair('rsa2048'), generatePair('rsa2048'), generatePair('rsa2048'), generatePair('rsa2048')]);
  pki = await TestPki.create('MARVIN', { root: rootP, intermediate: interP });
  bob = await pki.leaf({ pair: bobP, issuer: pki.intermediate, email: 'bob@clinique.test' });
  other = await pki.leaf({ pair: otherP, issuer: pki.intermediate, email: 'other@clinique.test' });
});

describe('Node 20 itself', () => {
  it('refuses PKCS#1 v1.5 private decryption (CVE-2023-46809): we do not depend on it', () => {
    const c = publicEncrypt({ key: bob.cert.publicKey, padding: constants.RSA_PKCS1_PADDING }, randomBytes(32));
    const major = Number(process.versions.node.split('.')[0]);
    if (major === 20 && !process.execArgv.some((a) => a.includes('security-revert'))) {
      expect(() => privateDecrypt({ key: bob.key, padding: constants.RSA_PKCS1_PADDING }, c)).toThrow(/RSA_PKCS1_PADDING is no longer supported/);
    }
  });
});

describe('unwrapKeyPkcs1 (implicit rejection)', () => {
  it('recovers a correctly encrypted key, as OpenSSL would', () => {
    for (const len of [16, 24, 32]) {
      const cek = randomBytes(len);
      const c = publicEncrypt({ key: bob.cert.publicKey, padding: constants.RSA_PKCS1_PADDING }, cek);
      expect(unwrapKeyPkcs1(bob.key, c, len).equals(cek)).toBe(true);
    }
  });

  it('returns a deterministic key of the expected length for every malformed encoding, never an error', () => {
    const cek = randomBytes(32);
    const seen = new Set<string>();
    for (const [name, c] of Object.entries(malformedCiphertexts(bob.cert.publicKey, cek))) {
      const k1 = unwrapKeyPkcs1(bob.key, c, 32);
      const k2 = unwrapKeyPkcs1(bob.key, c, 32);
      expect(k1.length, name).toBe(32);
      expect(k1.equals(k2), name).toBe(true);
      expect(k1.equals(cek), name).toBe(false);
      seen.add(k1.toString('hex'));
    }
    // The synthetic key depends on the ciphertext (and the private key), so it is not a constant.
    expect(seen.size).toBeGreaterThan(10);
    const c = malformedCiphertexts(bob.cert.publicKey, cek)['no zero separator']!;
    expect(unwrapKeyPkcs1(other.key, c, 32).equals(unwrapKeyPkcs1(bob.key, c, 32))).toBe(false);
  });
});

describe.each(['aes-256-cbc', 'aes-256-gcm'] as const)('Bleichenbacher-style ciphertexts in a message (%s)', (mode) => {
  const keys = () => [{ key: bob.key, certificate: bob.cert }];

  /** The reference: the CEK encrypted, correctly padded, to another key but addressed to bob. */
  function wrongKeyMessage(): Buffer {
    const cek = randomBytes(32);
    const c = publicEncrypt({ key: other.cert.publicKey, padding: constants.RSA_PKCS1_PADDING }, cek);
    return envelope(bob, c, cek, CONTENT, mode);
  }

  it('the control: a well-formed one decrypts', async () => {
    const cek = randomBytes(32);
    const der = envelope(bob, publicEncrypt({ key: bob.cert.publicKey, padding: constants.RSA_PKCS1_PADDING }, cek), cek, CONTENT, mode);
    expect(decryptEnvelopedData(parseEnvelopedData(der), keys()).content.equals(CONTENT)).toBe(true);
  });

  it('every malformed ciphertext yields the same outcome and error as the wrong key', async () => {
    const reference = await processInbound({ message: asMessage(wrongKeyMessage(), mode), decryptionKeys: keys(), trust: { anchors: [pki.root.cert] }, options: { requireSignature: false } });
    expect(reference).toEqual({ ok: false, code: 'cannot-decrypt', party: 'recipient', detail: 'the content does not decrypt with our key' });
    const cek = randomBytes(32);
    for (const [name, c] of Object.entries(malformedCiphertexts(bob.cert.publicKey, cek))) {
      const der = envelope(bob, c, cek, CONTENT, mode);
      const r = await processInbound({ message: asMessage(der, mode), decryptionKeys: keys(), trust: { anchors: [pki.root.cert] }, options: { requireSignature: false } });
      expect(r, name).toEqual(reference);
      if (mode === 'aes-256-gcm') {
        // With GCM the tag rejects the synthetic key with certainty, so the CMS layer alone already agrees.
        let thrown: unknown;
        try {
          decryptEnvelopedData(parseEnvelopedData(der), keys());
        } catch (err) {
          thrown = err;
        }
        expect(thrown, name).toBeInstanceOf(SmimeError);
        expect({ code: (thrown as SmimeError).code, detail: (thrown as SmimeError).detail }, name).toEqual({ code: 'cannot-decrypt', detail: 'the content does not decrypt with our key' });
      }
    }
  });

  it('an altered OAEP ciphertext fails the same way', async () => {
    const cek = randomBytes(32);
    const c = publicEncrypt({ key: bob.cert.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, cek);
    c[10] = c[10]! ^ 0x40;
    // envelope() writes rsaEncryption: re-encode the same envelope with RSAES-OAEP/SHA-256 instead.
    const oaepAlg = algorithmIdentifier(OIDS.rsaOaep, seq(contextCons(0, algorithmIdentifier(OIDS.sha256)), contextCons(1, algorithmIdentifier(OIDS.mgf1, algorithmIdentifier(OIDS.sha256)))));
    const pkcs1Alg = algorithmIdentifier(OIDS.rsaEncryption, derNull());
    const rebuilt = rebuildWithAlgorithm(envelope(bob, c, cek, CONTENT, mode), pkcs1Alg, oaepAlg, mode);
    let thrown: unknown;
    try {
      decryptEnvelopedData(parseEnvelopedData(rebuilt), keys());
    } catch (err) {
      thrown = err;
    }
    expect((thrown as SmimeError).code).toBe('cannot-decrypt');
    expect((thrown as SmimeError).detail).toBe('the content does not decrypt with our key');
  });
});

/** Re-encodes an envelope from envelope() with another key-encryption algorithm identifier. */
function rebuildWithAlgorithm(der: Buffer, from: Buffer, to: Buffer, mode: Mode): Buffer {
  const env = parseEnvelopedData(der);
  const ri = env.recipients[0]!;
  expect(ri.keyEncryptionAlgorithm.raw.equals(from)).toBe(true);
  const ktri = seq(int(0), seq(bob.cert.issuerDer, tlv(0x02, bob.cert.serialBytes)), to, octetString(ri.encryptedKey));
  const eci = seq(oid(OIDS.data), Buffer.from(env.contentEncryptionAlgorithm.raw), contextPrim(0, env.encryptedContent));
  if (mode === 'aes-256-cbc') return seq(oid(OIDS.envelopedData), contextCons(0, seq(int(2), setOf([ktri]), eci)));
  return seq(oid(OIDS.authEnvelopedData), contextCons(0, seq(int(0), setOf([ktri]), eci, octetString(env.mac!))));
}
