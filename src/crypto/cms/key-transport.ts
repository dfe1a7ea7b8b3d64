/**
 * RSA key transport of the content-encryption key (RFC 5652 §6.2.1): PKCS#1 v1.5 (rsaEncryption, what every
 * S/MIME client sends by default) and RSAES-OAEP (RFC 8017 §7.1, RFC 4055).
 *
 * Node 20 refuses PKCS#1 v1.5 private decryption (CVE-2023-46809, the Marvin attack). We do not revert that:
 * the modular exponentiation runs in OpenSSL with no padding (RSA_NO_PADDING, blinded and constant-time), and
 * the PKCS#1 v1.5 unpadding is done here without branches or memory accesses that depend on the secret, with
 * implicit rejection: an invalid encoding yields a deterministic pseudo-random key of the expected length,
 * so the failure only shows when the content fails to decrypt, exactly as with a wrong key.
 * See docs/decisions/0006-pkcs1v15-key-transport.md.
 */
import { constants, createHash, createHmac, privateDecrypt, publicEncrypt, type KeyObject } from 'node:crypto';
import { type DigestName, DIGEST_OID, parseDigestAlgorithm } from './algorithms.js';
import { algorithmIdentifier, Asn1, contextCons, DerError, derNull, seq } from './der.js';
import { SmimeError } from './failure.js';
import { OIDS } from './oids.js';

export type KeyTransport = 'rsa-pkcs1' | 'rsa-oaep-sha256';

export type KeyTransportParams = { scheme: 'rsa-pkcs1' } | { scheme: 'rsa-oaep'; hash: DigestName };

/** The KeyEncryptionAlgorithmIdentifier we write. */
export function keyTransportIdentifier(t: KeyTransport): Buffer {
  if (t === 'rsa-pkcs1') return algorithmIdentifier(OIDS.rsaEncryption, derNull());
  // Hash identifiers without parameters, as OpenSSL writes them (RFC 4055 lets readers accept both forms).
  const sha256 = algorithmIdentifier(DIGEST_OID.sha256);
  return algorithmIdentifier(OIDS.rsaOaep, seq(contextCons(0, sha256), contextCons(1, algorithmIdentifier(OIDS.mgf1, sha256))));
}

/** Reads a KeyEncryptionAlgorithmIdentifier (RSA only; OAEP with MGF1 on the same hash and an empty label). */
export function parseKeyTransport(node: Asn1): KeyTransportParams {
  const parts = node.items('key encryption algorithm');
  const oid = parts[0]?.oid();
  if (oid === OIDS.rsaEncryption) return { scheme: 'rsa-pkcs1' };
  if (oid !== OIDS.rsaOaep) throw new SmimeError('unsupported-algorithm', `key transport ${oid ?? '?'}`, 'recipient');
  let hash: DigestName = 'sha1';
  let mgfHash: DigestName = 'sha1';
  for (const field of parts[1]?.items('RSAES-OAEP-params') ?? []) {
    const [inner] = field.children();
    if (!inner) throw new DerError('empty OAEP parameter');
    if (field.isContext(0)) hash = parseDigestAlgorithm(inner);
    else if (field.isContext(1)) {
      const [mgfOid, mgfParams] = inner.items('MGF');
      if (mgfOid?.oid() !== OIDS.mgf1 || !mgfParams) throw new SmimeError('unsupported-algorithm', 'OAEP mask generation', 'recipient');
      mgfHash = parseDigestAlgorithm(mgfParams);
    } else if (field.isContext(2)) {
      const [pOid, label] = inner.items('pSourceAlgorithm');
      if (pOid?.oid() !== OIDS.pSpecified || (label && label.octets().length > 0)) {
        throw new SmimeError('unsupported-algorithm', 'OAEP with a label', 'recipient');
      }
    } else throw new DerError('unexpected OAEP parameter');
  }
  if (hash !== mgfHash || hash === 'md5') throw new SmimeError('unsupported-algorithm', `OAEP with ${hash} and MGF1-${mgfHash}`, 'recipient');
  return { scheme: 'rsa-oaep', hash };
}

/** Encrypts the content-encryption key to a recipient's RSA public key. */
export function wrapKey(cek: Buffer, publicKey: KeyObject, t: KeyTransport): Buffer {
  if (t === 'rsa-pkcs1') return publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, cek);
  return publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, cek);
}

/** RSAES-OAEP decryption; null when it fails (wrong key or altered value: the caller cannot tell, nor can we). */
export function unwrapKeyOaep(privateKey: KeyObject, encryptedKey: Buffer, hash: DigestName): Buffer | null {
  try {
    return privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, encryptedKey);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------------
// PKCS#1 v1.5 with implicit rejection

interface RsaSecrets {
  /** Modulus length in bytes. */
  k: number;
  /** SHA-256 of the private exponent as a k-byte big-endian integer: the key of the key-derivation key. */
  kdkKey: Buffer;
}

const secrets = new WeakMap<KeyObject, RsaSecrets>();

function rsaSecrets(privateKey: KeyObject): RsaSecrets {
  let s = secrets.get(privateKey);
  if (s) return s;
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'rsa') {
    throw new SmimeError('unsupported-algorithm', 'PKCS#1 v1.5 key transport needs an RSA private key', 'recipient');
  }
  const bits = privateKey.asymmetricKeyDetails?.modulusLength ?? 0;
  const k = Math.ceil(bits / 8);
  const jwk = privateKey.export({ format: 'jwk' });
  const d = Buffer.from(jwk.d ?? '', 'base64url');
  const dPadded = Buffer.alloc(k);
  d.copy(dPadded, k - d.length);
  s = { k, kdkKey: createHash('sha256').update(dPadded).digest() };
  d.fill(0);
  dPadded.fill(0);
  secrets.set(privateKey, s);
  return s;
}

const LABEL = Buffer.from('CMS content-encryption key', 'latin1');

/**
 * The key returned when the encoding is invalid: IRPRF of draft-irtf-cfrg-rsa-guidance §7 (as in OpenSSL
 * 3.2), keyed by KDK = HMAC-SHA256(SHA-256(d), C), truncated to the length CMS expects. It depends only on
 * the private key and the ciphertext, so asking twice gives the same answer and nothing reveals it is synthetic.
 */
function syntheticKey(s: RsaSecrets, ciphertext: Buffer, length: number): Buffer {
  const kdk = createHmac('sha256', s.kdkKey).update(ciphertext).digest();
  const bitLength = Buffer.alloc(2);
  bitLength.writeUInt16BE(length * 8);
  const blocks: Buffer[] = [];
  for (let i = 0; blocks.length * 32 < length; i++) {
    const counter = Buffer.alloc(2);
    counter.writeUInt16BE(i);
    blocks.push(createHmac('sha256', kdk).update(counter).update(LABEL).update(bitLength).digest());
  }
  return Buffer.concat(blocks).subarray(0, length);
}

// Constant-time helpers on small non-negative integers (< 2^31): no branches, no secret-indexed accesses.
/** 1 when x === 0, else 0. */
const ctIsZero = (x: number): number => (((x | -x) >>> 31) ^ 1) & 1;
const ctEq = (a: number, b: number): number => ctIsZero(a ^ b);
/** 1 when a < b, else 0. */
const ctLt = (a: number, b: number): number => ((a - b) >>> 31) & 1;

/**
 * Decrypts a PKCS#1 v1.5 encrypted key of `expectedLength` bytes. Never throws for a bad ciphertext and never
 * tells a bad one apart: on any encoding error (first bytes not 00 02, no zero separator, padding string
 * shorter than 8 bytes, message not of the expected length, ciphertext not below the modulus or of the wrong
 * size) it returns the synthetic key, through the same code path and the same amount of work.
 */
export function unwrapKeyPkcs1(privateKey: KeyObject, encryptedKey: Buffer, expectedLength: number): Buffer {
  const s = rsaSecrets(privateKey);
  const { k } = s;
  if (expectedLength < 1 || expectedLength > k - 11) throw new RangeError(`a ${expectedLength}-byte key cannot be PKCS#1 v1.5 encrypted`);
  // Public checks on the ciphertext alone (its length and range are not secret): fall through to the
  // synthetic key with an all-zero encoded message, which fails the checks below like any bad padding.
  const c = Buffer.alloc(k);
  let em: Buffer;
  if (encryptedKey.length <= k) {
    encryptedKey.copy(c, k - encryptedKey.length);
    try {
      em = privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, c);
    } catch {
      em = Buffer.alloc(k); // c >= n
    }
  } else em = Buffer.alloc(k);
  if (em.length !== k) {
    const padded = Buffer.alloc(k);
    em.copy(padded, k - em.length);
    em.fill(0);
    em = padded;
  }

  const synthetic = syntheticKey(s, encryptedKey.length <= k ? c : encryptedKey, expectedLength);

  let good = ctIsZero(em[0]!) & ctEq(em[1]!, 2);
  let foundZero = 0;
  let zeroIndex = 0;
  for (let i = 2; i < k; i++) {
    const isZero = ctIsZero(em[i]!);
    const first = isZero & (foundZero ^ 1);
    zeroIndex |= -first & i;
    foundZero |= isZero;
  }
  good &= foundZero;
  good &= ctLt(zeroIndex, 2 + 8) ^ 1; // at least 8 bytes of padding string
  good &= ctEq(k - zeroIndex - 1, expectedLength);

  const mask = -good & 0xff;
  const out = Buffer.alloc(expectedLength);
  const offset = k - expectedLength;
  for (let j = 0; j < expectedLength; j++) out[j] = (em[offset + j]! & mask) | (synthetic[j]! & ~mask & 0xff);
  em.fill(0);
  synthetic.fill(0);
  return out;
}
