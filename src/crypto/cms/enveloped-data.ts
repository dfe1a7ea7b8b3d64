/**
 * CMS EnvelopedData (RFC 5652 §6) with AES-CBC, and AuthEnvelopedData (RFC 5083, RFC 5084) with AES-GCM,
 * both with KeyTransRecipientInfo for RSA recipients (PKCS#1 v1.5 or OAEP). Decryption refuses weak content
 * ciphers before touching a key, and reports every decryption failure the same way: 'cannot-decrypt'.
 */
import { type CipherGCMTypes, createCipheriv, createDecipheriv, randomBytes, type KeyObject } from 'node:crypto';
import {
  cipherKeyLength,
  type ContentCipher,
  type ContentEncryptionParams,
  contentEncryptionIdentifier,
  isGcm,
  type OutboundCipher,
  parseContentEncryption,
} from './algorithms.js';
import { type Certificate, normaliseSerial, parseNameDer, sameName } from './certificate.js';
import { Asn1, DerError, int, octetString, oid, seq, setOf, TAG, tlv, tlvParts } from './der.js';
import { malformed, SmimeError } from './failure.js';
import { type KeyTransport, keyTransportIdentifier, parseKeyTransport, unwrapKeyOaep, unwrapKeyPkcs1, wrapKey } from './key-transport.js';
import { OIDS } from './oids.js';
import { parseContentInfo } from './signed-data.js';

export interface EncryptOptions {
  /** Default aes-256-cbc. GCM ciphers produce AuthEnvelopedData. */
  contentEncryption?: OutboundCipher;
  /** Default rsa-pkcs1 (what every S/MIME client can decrypt); rsa-oaep-sha256 for peers that support it. */
  keyTransport?: KeyTransport;
}

/** Encodes a ContentInfo holding EnvelopedData (CBC) or AuthEnvelopedData (GCM) for these RSA recipients. */
export function createEnvelopedData(content: Buffer, recipients: readonly Certificate[], options: EncryptOptions = {}): Buffer {
  const cipher = options.contentEncryption ?? 'aes-256-cbc';
  const transport = options.keyTransport ?? 'rsa-pkcs1';
  if (recipients.length === 0) throw new SmimeError('no-recipient-certificate', 'no recipient certificate to encrypt to', 'recipient');
  const cek = randomBytes(cipherKeyLength(cipher));
  try {
    const recipientInfos = recipients.map((cert) => {
      if (cert.publicKey.asymmetricKeyType !== 'rsa') {
        throw new SmimeError('unsupported-algorithm', `cannot encrypt to a ${cert.publicKey.asymmetricKeyType ?? '?'} key (RSA only)`, 'recipient', cert.ref);
      }
      return seq(int(0), seq(cert.issuerDer, tlv(0x02, cert.serialBytes)), keyTransportIdentifier(transport), octetString(wrapKey(cek, cert.publicKey, transport)));
    });
    const gcm = isGcm(cipher);
    const params: ContentEncryptionParams = { cipher, iv: randomBytes(gcm ? 12 : 16), tagLength: gcm ? 16 : 0 };
    let ciphertext: Buffer[];
    let tag: Buffer | null = null;
    if (gcm) {
      const enc = createCipheriv(cipher as CipherGCMTypes, cek, params.iv, { authTagLength: params.tagLength });
      ciphertext = [enc.update(content), enc.final()];
      tag = enc.getAuthTag();
    } else {
      const enc = createCipheriv(cipher, cek, params.iv);
      ciphertext = [enc.update(content), enc.final()];
    }
    const encryptedContentInfo = tlvParts(0x30, [oid(OIDS.data), contentEncryptionIdentifier(params), ...tlvParts(0x80, ciphertext)]);
    const body = tlvParts(0x30, [int(0), setOf(recipientInfos), ...encryptedContentInfo, ...(tag ? [octetString(tag)] : [])]);
    return Buffer.concat(tlvParts(0x30, [oid(tag ? OIDS.authEnvelopedData : OIDS.envelopedData), ...tlvParts(0xa0, body)]));
  } finally {
    cek.fill(0);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Parsing

export type RecipientIdentifier = { kind: 'issuer-serial'; issuer: Buffer; serial: string } | { kind: 'ski'; keyId: Buffer };

export interface KeyTransRecipient {
  rid: RecipientIdentifier;
  /** Parsed only when the recipient is ours, so an exotic algorithm for someone else does not fail the message. */
  keyEncryptionAlgorithm: Asn1;
  encryptedKey: Buffer;
}

export interface ParsedEnvelope {
  kind: 'enveloped' | 'auth-enveloped';
  recipients: KeyTransRecipient[];
  /** RecipientInfos of other kinds (key agreement, KEK, password): not supported. */
  otherRecipients: number;
  contentType: string;
  /** Unparsed: a weak or unknown cipher is reported by decryptEnvelopedData. */
  contentEncryptionAlgorithm: Asn1;
  encryptedContent: Buffer;
  /** AuthEnvelopedData: the tag and the additional authenticated data (DER of authAttrs, or empty). */
  mac: Buffer | null;
  aad: Buffer;
}

export function parseEnvelopedData(der: Buffer): ParsedEnvelope {
  const info = parseContentInfo(der);
  const kind = info.contentType === OIDS.envelopedData ? 'enveloped' : info.contentType === OIDS.authEnvelopedData ? 'auth-enveloped' : null;
  if (!kind) throw malformed(`CMS content type ${info.contentType} is not (Auth)EnvelopedData`);
  try {
    const fields = info.content.items(kind === 'enveloped' ? 'EnvelopedData' : 'AuthEnvelopedData');
    let i = 0;
    fields[i++]?.smallInt();
    if (fields[i]?.isContext(0)) i++; // originatorInfo
    const recipientInfos = fields[i++]?.items('RecipientInfos', TAG.set);
    const eci = fields[i++];
    if (!recipientInfos || !eci) throw new DerError('incomplete EnvelopedData');
    const [contentTypeNode, algorithm, encrypted, ...rest] = eci.items('EncryptedContentInfo');
    if (!contentTypeNode || !algorithm || rest.length) throw new DerError('bad EncryptedContentInfo');
    if (!encrypted?.isContext(0)) throw new SmimeError('unsupported-algorithm', 'detached encrypted content');
    let mac: Buffer | null = null;
    let aad = Buffer.alloc(0);
    if (kind === 'auth-enveloped') {
      const authAttrs = fields[i]?.isContext(1) ? fields[i++]! : null;
      if (authAttrs) aad = Buffer.concat([Buffer.of(0x31), authAttrs.raw.subarray(1)]);
      const macNode = fields[i++];
      if (!macNode) throw new DerError('AuthEnvelopedData without mac');
      mac = macNode.octets();
      if (fields[i]?.isContext(2)) i++;
    } else if (fields[i]?.isContext(1)) i++;
    if (i !== fields.length) throw new DerError('unexpected field in EnvelopedData');

    const recipients: KeyTransRecipient[] = [];
    let otherRecipients = 0;
    for (const ri of recipientInfos) {
      if (!ri.isUniversal(TAG.sequence)) {
        otherRecipients++;
        continue;
      }
      const [version, ridNode, alg, encKey, ...more] = ri.children();
      if (!version || !ridNode || !alg || !encKey || more.length) throw new DerError('bad KeyTransRecipientInfo');
      version.smallInt();
      let rid: RecipientIdentifier;
      if (ridNode.isUniversal(TAG.sequence)) {
        const [issuer, serial, ...r] = ridNode.children();
        if (!issuer || !serial || r.length) throw new DerError('bad IssuerAndSerialNumber');
        rid = { kind: 'issuer-serial', issuer: issuer.expect(TAG.sequence, 'issuer').raw, serial: normaliseSerial(serial.integerBytes()) };
      } else if (ridNode.isContext(0) && !ridNode.constructed) rid = { kind: 'ski', keyId: ridNode.content };
      else throw new DerError('bad RecipientIdentifier');
      alg.expect(TAG.sequence, 'keyEncryptionAlgorithm');
      recipients.push({ rid, keyEncryptionAlgorithm: alg, encryptedKey: encKey.octets() });
    }
    return {
      kind,
      recipients,
      otherRecipients,
      contentType: contentTypeNode.oid(),
      contentEncryptionAlgorithm: algorithm,
      encryptedContent: encrypted.octets(true),
      mac,
      aad,
    };
  } catch (err) {
    if (err instanceof DerError) throw malformed(`EnvelopedData: ${err.message}`);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Decryption

export interface DecryptionKey {
  key: KeyObject;
  certificate: Certificate;
}

export interface Decrypted {
  content: Buffer;
  contentType: string;
  cipher: ContentCipher;
  keyTransport: 'rsa-pkcs1' | `rsa-oaep-${string}`;
  /** Our certificate the message was encrypted to. */
  recipient: Certificate;
}

function ridMatches(rid: RecipientIdentifier, cert: Certificate): boolean {
  if (rid.kind === 'ski') return cert.subjectKeyId?.equals(rid.keyId) ?? false;
  if (rid.serial !== cert.serialNumber) return false;
  let attrs: Certificate['issuerAttributes'] = [];
  try {
    attrs = parseNameDer(rid.issuer);
  } catch {
    // byte comparison only
  }
  return sameName(cert.issuerDer, cert.issuerAttributes, rid.issuer, attrs);
}

/** The one message every decryption failure gives, so that no failure tells more than another. */
const CANNOT_DECRYPT = 'the content does not decrypt with our key';

function decryptContent(p: ContentEncryptionParams, cek: Buffer, env: ParsedEnvelope): Buffer | null {
  try {
    if (!isGcm(p.cipher)) {
      const d = createDecipheriv(p.cipher, cek, p.iv);
      return Buffer.concat([d.update(env.encryptedContent), d.final()]);
    }
    if (!env.mac || env.mac.length !== p.tagLength) return null;
    const d = createDecipheriv(p.cipher as CipherGCMTypes, cek, p.iv, { authTagLength: p.tagLength });
    d.setAuthTag(env.mac);
    if (env.aad.length) d.setAAD(env.aad);
    return Buffer.concat([d.update(env.encryptedContent), d.final()]);
  } catch {
    return null;
  }
}

/**
 * Decrypts with the first of our keys the message was encrypted to. Throws SmimeError: weak-cipher,
 * unsupported-algorithm, cannot-decrypt (no RecipientInfo for us, or wrong key, or altered key or content:
 * all the same to the caller).
 */
export function decryptEnvelopedData(env: ParsedEnvelope, keys: readonly DecryptionKey[]): Decrypted {
  let params: ContentEncryptionParams;
  try {
    params = parseContentEncryption(env.contentEncryptionAlgorithm);
  } catch (err) {
    if (err instanceof DerError) throw malformed(`content encryption algorithm: ${err.message}`);
    throw err;
  }
  if (env.kind === 'auth-enveloped' ? !isGcm(params.cipher) : isGcm(params.cipher)) {
    throw new SmimeError('unsupported-algorithm', `${params.cipher} in ${env.kind === 'auth-enveloped' ? 'AuthEnvelopedData' : 'EnvelopedData'}`);
  }
  const keyLength = cipherKeyLength(params.cipher);
  let unsupported: SmimeError | null = null;
  let matched = false;
  for (const { key, certificate } of keys) {
    for (const ri of env.recipients) {
      if (!ridMatches(ri.rid, certificate)) continue;
      matched = true;
      let transport;
      try {
        transport = parseKeyTransport(ri.keyEncryptionAlgorithm);
      } catch (err) {
        if (err instanceof SmimeError && err.code === 'unsupported-algorithm') {
          unsupported = err;
          continue;
        }
        if (err instanceof DerError) throw malformed(`key encryption algorithm: ${err.message}`, 'recipient');
        throw err;
      }
      if (key.asymmetricKeyType !== 'rsa') continue;
      const cek =
        transport.scheme === 'rsa-pkcs1' ? unwrapKeyPkcs1(key, ri.encryptedKey, keyLength) : unwrapKeyOaep(key, ri.encryptedKey, transport.hash);
      if (!cek) continue;
      const content = cek.length === keyLength ? decryptContent(params, cek, env) : null;
      cek.fill(0);
      if (content) {
        return {
          content,
          contentType: env.contentType,
          cipher: params.cipher,
          keyTransport: transport.scheme === 'rsa-pkcs1' ? 'rsa-pkcs1' : `rsa-oaep-${transport.hash}`,
          recipient: certificate,
        };
      }
    }
  }
  if (unsupported) throw unsupported;
  if (!matched) {
    const detail = env.recipients.length === 0 && env.otherRecipients > 0 ? 'only key-agreement or other non-RSA recipients' : 'not encrypted to any of our certificates';
    throw new SmimeError('cannot-decrypt', detail, 'recipient');
  }
  throw new SmimeError('cannot-decrypt', CANNOT_DECRYPT, 'recipient');
}
