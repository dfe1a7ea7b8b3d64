/**
 * Algorithm identifiers and the policy that refuses weak ones (STYLE.md §10): digests, signature schemes,
 * key sizes and content ciphers, each mapped to node:crypto, which does all the arithmetic.
 */
import { constants, createHash, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { algorithmIdentifier, Asn1, contextCons, DerError, derNull, int, octetString, seq, TAG } from './der.js';
import { SmimeError, type CertificateRef, type SmimeParty } from './failure.js';
import { OIDS } from './oids.js';

export type DigestName = 'md5' | 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';
/** Digests we sign with. */
export type SigningDigest = 'sha256' | 'sha384' | 'sha512';

const DIGEST_BY_OID: Readonly<Record<string, DigestName>> = {
  [OIDS.md5]: 'md5',
  [OIDS.sha1]: 'sha1',
  [OIDS.sha224]: 'sha224',
  [OIDS.sha256]: 'sha256',
  [OIDS.sha384]: 'sha384',
  [OIDS.sha512]: 'sha512',
};

export const DIGEST_OID: Readonly<Record<DigestName, string>> = {
  md5: OIDS.md5,
  sha1: OIDS.sha1,
  sha224: OIDS.sha224,
  sha256: OIDS.sha256,
  sha384: OIDS.sha384,
  sha512: OIDS.sha512,
};

/** The `micalg` parameter of multipart/signed (RFC 8551 §3.5.3.2). */
export const MICALG: Readonly<Record<DigestName, string>> = {
  md5: 'md5',
  sha1: 'sha-1',
  sha224: 'sha-224',
  sha256: 'sha-256',
  sha384: 'sha-384',
  sha512: 'sha-512',
};

export interface AlgorithmPolicy {
  /** Accept SHA-1 message digests and certificate signatures (default false). MD5 is never accepted. */
  allowSha1: boolean;
  /** Smallest RSA modulus accepted, in bits (default 2048). */
  minRsaBits: number;
  /** Named curves accepted for EC keys (OpenSSL names). */
  curves: readonly string[];
}

export const DEFAULT_POLICY: AlgorithmPolicy = Object.freeze({
  allowSha1: false,
  minRsaBits: 2048,
  curves: Object.freeze(['prime256v1', 'secp384r1', 'secp521r1']),
});

export function resolvePolicy(p: Partial<AlgorithmPolicy> | undefined): AlgorithmPolicy {
  return { ...DEFAULT_POLICY, ...(p ?? {}) };
}

export function digest(name: DigestName, data: Buffer): Buffer {
  return createHash(name).update(data).digest();
}

/** Refuses MD5 always and SHA-1 unless the policy allows it. */
export function checkDigest(name: DigestName, policy: AlgorithmPolicy, party: SmimeParty, what: string, cert?: CertificateRef): void {
  if (name === 'md5' || (name === 'sha1' && !policy.allowSha1)) {
    throw new SmimeError('weak-digest', `${what} uses ${name.toUpperCase()}`, party, cert);
  }
}

/** The parameters of an AlgorithmIdentifier must be absent or NULL for digests and most signatures. */
function noParams(alg: Asn1[], what: string): void {
  const p = alg[1];
  if (alg.length > 2 || (p && !(p.isUniversal(TAG.null) && p.content.length === 0))) {
    throw new SmimeError('malformed', `unexpected parameters in the ${what} algorithm`);
  }
}

function algorithmParts(node: Asn1, what: string): { oid: string; parts: Asn1[] } {
  const parts = node.items(`${what} algorithm`);
  if (parts.length < 1) throw new DerError(`empty ${what} algorithm`);
  return { oid: parts[0]!.oid(), parts };
}

export function parseDigestAlgorithm(node: Asn1): DigestName {
  const { oid, parts } = algorithmParts(node, 'digest');
  const name = DIGEST_BY_OID[oid];
  if (!name) throw new SmimeError('unsupported-algorithm', `digest algorithm ${oid}`);
  noParams(parts, 'digest');
  return name;
}

// ---------------------------------------------------------------------------------------------------------
// Signatures

export type SignatureScheme =
  | { kind: 'rsa-pkcs1'; hash: DigestName }
  | { kind: 'rsa-pss'; hash: DigestName; saltLength: number }
  | { kind: 'ecdsa'; hash: DigestName };

const RSA_PKCS1_BY_OID: Readonly<Record<string, DigestName>> = {
  [OIDS.md5WithRSA]: 'md5',
  [OIDS.sha1WithRSA]: 'sha1',
  [OIDS.sha224WithRSA]: 'sha224',
  [OIDS.sha256WithRSA]: 'sha256',
  [OIDS.sha384WithRSA]: 'sha384',
  [OIDS.sha512WithRSA]: 'sha512',
};
const ECDSA_BY_OID: Readonly<Record<string, DigestName>> = {
  [OIDS.ecdsaWithSha1]: 'sha1',
  [OIDS.ecdsaWithSha224]: 'sha224',
  [OIDS.ecdsaWithSha256]: 'sha256',
  [OIDS.ecdsaWithSha384]: 'sha384',
  [OIDS.ecdsaWithSha512]: 'sha512',
};

/** RSASSA-PSS-params / RSAES-OAEP-params share the hash and MGF1 fields: returns [hash, mgf1 hash, rest]. */
function hashAndMgf(params: Asn1 | undefined, what: string): { hash: DigestName; mgfHash: DigestName; rest: Asn1[] } {
  let hash: DigestName = 'sha1';
  let mgfHash: DigestName = 'sha1';
  const rest: Asn1[] = [];
  for (const field of params ? params.items(`${what} parameters`) : []) {
    if (field.isContext(0)) {
      const [h] = field.children();
      if (!h) throw new DerError(`empty ${what} hash`);
      hash = parseDigestAlgorithm(h);
    } else if (field.isContext(1)) {
      const [mgf] = field.children();
      const { oid, parts } = algorithmParts(mgf ?? field, `${what} mask generation`);
      if (oid !== OIDS.mgf1 || !parts[1]) throw new SmimeError('unsupported-algorithm', `${what} mask generation ${oid}`);
      mgfHash = parseDigestAlgorithm(parts[1]);
    } else rest.push(field);
  }
  return { hash, mgfHash, rest };
}

/**
 * The signature scheme of an AlgorithmIdentifier. In a SignerInfo the identifier may be the bare key
 * algorithm (rsaEncryption, id-ecPublicKey): the hash is then the SignerInfo's digest algorithm.
 */
export function parseSignatureAlgorithm(node: Asn1, signerDigest?: DigestName): SignatureScheme {
  const { oid, parts } = algorithmParts(node, 'signature');
  const pkcs1 = RSA_PKCS1_BY_OID[oid];
  if (pkcs1) {
    noParams(parts, 'signature');
    return { kind: 'rsa-pkcs1', hash: pkcs1 };
  }
  const ecdsa = ECDSA_BY_OID[oid];
  if (ecdsa) {
    if (parts.length > 1) throw new SmimeError('malformed', 'ECDSA signature algorithm with parameters');
    return { kind: 'ecdsa', hash: ecdsa };
  }
  if (oid === OIDS.rsaEncryption && signerDigest) {
    noParams(parts, 'signature');
    return { kind: 'rsa-pkcs1', hash: signerDigest };
  }
  if (oid === OIDS.ecPublicKey && signerDigest) return { kind: 'ecdsa', hash: signerDigest };
  if (oid === OIDS.rsaPss) {
    const { hash, mgfHash, rest } = hashAndMgf(parts[1], 'RSASSA-PSS');
    let saltLength = 20;
    for (const field of rest) {
      if (field.isContext(2)) saltLength = (field.children()[0] ?? field).smallInt();
      else if (field.isContext(3)) {
        if ((field.children()[0] ?? field).smallInt() !== 1) throw new SmimeError('unsupported-algorithm', 'RSASSA-PSS trailer field');
      } else throw new DerError('unexpected RSASSA-PSS parameter');
    }
    if (mgfHash !== hash) throw new SmimeError('unsupported-algorithm', `RSASSA-PSS with MGF1-${mgfHash} and ${hash}`);
    return { kind: 'rsa-pss', hash, saltLength };
  }
  throw new SmimeError('unsupported-algorithm', `signature algorithm ${oid}`);
}

/** The identifier we write for a scheme (RFC 5754 / RFC 4056 / RFC 5753 encodings). */
export function signatureAlgorithmIdentifier(scheme: SignatureScheme): Buffer {
  switch (scheme.kind) {
    case 'rsa-pkcs1': {
      const oid = Object.entries(RSA_PKCS1_BY_OID).find(([, h]) => h === scheme.hash)![0];
      return algorithmIdentifier(oid, derNull());
    }
    case 'ecdsa':
      return algorithmIdentifier(Object.entries(ECDSA_BY_OID).find(([, h]) => h === scheme.hash)![0]);
    case 'rsa-pss': {
      const hashAlg = algorithmIdentifier(DIGEST_OID[scheme.hash], derNull());
      return algorithmIdentifier(
        OIDS.rsaPss,
        seq(contextCons(0, hashAlg), contextCons(1, algorithmIdentifier(OIDS.mgf1, hashAlg)), contextCons(2, int(scheme.saltLength))),
      );
    }
  }
}

const DIGEST_BYTES: Readonly<Record<DigestName, number>> = { md5: 16, sha1: 20, sha224: 28, sha256: 32, sha384: 48, sha512: 64 };

export function digestLength(name: DigestName): number {
  return DIGEST_BYTES[name];
}

function keyFor(scheme: SignatureScheme, key: KeyObject): KeyObject | { key: KeyObject; padding: number; saltLength: number } | null {
  const type = key.asymmetricKeyType;
  if (scheme.kind === 'rsa-pkcs1') return type === 'rsa' ? key : null;
  if (scheme.kind === 'ecdsa') return type === 'ec' ? key : null;
  if (type !== 'rsa' && type !== 'rsa-pss') return null;
  return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: scheme.saltLength };
}

/** Whether `signature` is a valid signature of `data` under `key`; false for any mismatch or malformed value. */
export function verifySignature(scheme: SignatureScheme, key: KeyObject, data: Buffer, signature: Buffer): boolean {
  const k = keyFor(scheme, key);
  if (!k) return false;
  try {
    return nodeVerify(scheme.hash, data, k, signature);
  } catch {
    return false;
  }
}

export function createSignature(scheme: SignatureScheme, key: KeyObject, data: Buffer): Buffer {
  const k = keyFor(scheme, key);
  if (!k) throw new SmimeError('unsupported-algorithm', `a ${key.asymmetricKeyType} key cannot sign with ${scheme.kind}`, 'signer');
  return nodeSign(scheme.hash, data, k);
}

/** Refuses RSA keys below the policy size and curves outside the policy list. */
export function checkKeyStrength(key: KeyObject, policy: AlgorithmPolicy, party: SmimeParty, cert?: CertificateRef): void {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'rsa' || type === 'rsa-pss') {
    const bits = details.modulusLength ?? 0;
    if (bits < policy.minRsaBits) throw new SmimeError('weak-key', `RSA key of ${bits} bits (minimum ${policy.minRsaBits})`, party, cert);
    return;
  }
  if (type === 'ec') {
    const curve = details.namedCurve ?? '?';
    if (!policy.curves.includes(curve)) throw new SmimeError('weak-key', `EC curve ${curve} not accepted`, party, cert);
    return;
  }
  throw new SmimeError('unsupported-algorithm', `${type ?? 'unknown'} keys are not supported`, party, cert);
}

// ---------------------------------------------------------------------------------------------------------
// Content encryption

export type ContentCipher = 'aes-128-cbc' | 'aes-192-cbc' | 'aes-256-cbc' | 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm';
/** What we encrypt with (192-bit AES is accepted on receipt only). */
export type OutboundCipher = 'aes-128-cbc' | 'aes-256-cbc' | 'aes-128-gcm' | 'aes-256-gcm';

export const CIPHER_OID: Readonly<Record<ContentCipher, string>> = {
  'aes-128-cbc': OIDS.aes128Cbc,
  'aes-192-cbc': OIDS.aes192Cbc,
  'aes-256-cbc': OIDS.aes256Cbc,
  'aes-128-gcm': OIDS.aes128Gcm,
  'aes-192-gcm': OIDS.aes192Gcm,
  'aes-256-gcm': OIDS.aes256Gcm,
};
const CIPHER_BY_OID: Readonly<Record<string, ContentCipher>> = Object.fromEntries(
  Object.entries(CIPHER_OID).map(([name, oid]) => [oid, name as ContentCipher]),
);
const WEAK_CIPHERS: Readonly<Record<string, string>> = {
  [OIDS.desEde3Cbc]: '3DES (DES-EDE3-CBC)',
  [OIDS.desCbc]: 'DES-CBC',
  [OIDS.rc2Cbc]: 'RC2-CBC',
  [OIDS.rc4]: 'RC4',
};

export function cipherKeyLength(c: ContentCipher): number {
  return Number(c.slice(4, 7)) / 8;
}

export function isGcm(c: ContentCipher): boolean {
  return c.endsWith('-gcm');
}

export interface ContentEncryptionParams {
  cipher: ContentCipher;
  /** CBC IV or GCM nonce. */
  iv: Buffer;
  /** GCM tag length (ICV), bytes. */
  tagLength: number;
}

/** Reads a ContentEncryptionAlgorithmIdentifier; refuses weak ciphers before anything is decrypted. */
export function parseContentEncryption(node: Asn1): ContentEncryptionParams {
  const { oid, parts } = algorithmParts(node, 'content encryption');
  const weak = WEAK_CIPHERS[oid];
  if (weak) throw new SmimeError('weak-cipher', `content encrypted with ${weak}`);
  const cipher = CIPHER_BY_OID[oid];
  if (!cipher) throw new SmimeError('unsupported-algorithm', `content encryption ${oid}`);
  const params = parts[1];
  if (!params || parts.length > 2) throw new DerError('content encryption parameters missing');
  if (!isGcm(cipher)) {
    const iv = params.octets();
    if (iv.length !== 16) throw new DerError('AES-CBC IV must be 16 bytes');
    return { cipher, iv, tagLength: 0 };
  }
  const [nonceNode, icvNode, ...extra] = params.items('GCM parameters');
  if (!nonceNode || extra.length) throw new DerError('bad GCM parameters');
  const iv = nonceNode.octets();
  const tagLength = icvNode ? icvNode.smallInt() : 12;
  if (iv.length < 8 || iv.length > 64) throw new DerError('bad GCM nonce length');
  if (tagLength < 12 || tagLength > 16) throw new SmimeError('unsupported-algorithm', `GCM tag of ${tagLength} bytes`);
  return { cipher, iv, tagLength };
}

export function contentEncryptionIdentifier(p: ContentEncryptionParams): Buffer {
  const oid = CIPHER_OID[p.cipher];
  if (!isGcm(p.cipher)) return algorithmIdentifier(oid, octetString(p.iv));
  return algorithmIdentifier(oid, seq(octetString(p.iv), int(p.tagLength)));
}
