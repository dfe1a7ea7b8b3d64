/**
 * The S/MIME security agent (Direct Project model, STYLE.md §7): `protectOutbound` wraps, signs and encrypts
 * a whole RFC 5322 message; `processInbound` decrypts, verifies, unwraps and checks trust and identity.
 * Both return a typed result, never throw for bad input, and import nothing from the mail servers.
 */
import { createPublicKey } from 'node:crypto';
import { headerValue, type HeaderField, readHeader } from '../../mime/headers.js';
import { parseAddressList } from '../../mime/address.js';
import { resolvePolicy, checkKeyStrength, type ContentCipher, type DigestName, isGcm, MICALG, type OutboundCipher, type SigningDigest } from '../cms/algorithms.js';
import { Certificate, KEY_USAGE } from '../cms/certificate.js';
import { DerError } from '../cms/der.js';
import { createEnvelopedData, type DecryptionKey, decryptEnvelopedData, parseEnvelopedData } from '../cms/enveloped-data.js';
import { malformed, SmimeError, type SmimeFailure, type SmimeParty } from '../cms/failure.js';
import type { KeyTransport } from '../cms/key-transport.js';
import { OIDS } from '../cms/oids.js';
import { createSignedData, parseContentInfo, parseSignedData, type SigningCredential, verifySignedData, type VerifiedSignature } from '../cms/signed-data.js';
import { canonicalize } from './canonical.js';
import {
  assemble,
  buildMultipartSigned,
  decodedBody,
  type Entity,
  hasContentType,
  pkcs7MimeParts,
  rawField,
  readEntity,
  splitMultipartSigned,
  wrapMessage,
} from './entity.js';
import { DEFAULT_PROTECTED_HEADERS, headerMismatch } from './header-check.js';
import { certificateMatchesAddress, type PractitionerIdOptions, practitionerIdOf } from './identity.js';
import { checkPurpose, type Purpose, type TrustOptions, validateCertificate } from './trust.js';

export interface OutboundOptions {
  /** Sign (default true) and encrypt (default true): sign first, then encrypt the signed entity. */
  sign?: boolean;
  encrypt?: boolean;
  /** Wrap the whole message as message/rfc822 before signing (RFC 8551 §3.1; Direct default: true). */
  wrap?: boolean;
  digest?: SigningDigest;
  rsaPadding?: 'pkcs1' | 'pss';
  /** Default aes-256-cbc; GCM makes authEnveloped-data (RFC 5083), which not every client reads yet. */
  contentEncryption?: OutboundCipher;
  /** Default rsa-pkcs1, which every client decrypts; rsa-oaep-sha256 where peers support it. */
  keyTransport?: KeyTransport;
  /** Replaces the outer Subject (header privacy); the signed, wrapped message keeps the real one. */
  outerSubject?: string;
  signingTime?: Date;
}

export interface OutboundRequest {
  /** The complete RFC 5322 message (CRLF or LF line endings). */
  message: Buffer;
  signer: SigningCredential;
  recipients: readonly Certificate[];
  /**
   * The sender's own encryption certificate, so the copy in Sent stays readable. Default: the signer's
   * certificate when its keyUsage allows keyEncipherment; null to encrypt to the recipients only.
   */
  senderCertificate?: Certificate | null;
  /** When given, every certificate used must be valid and trusted here (recommended: Direct sends only to trusted anchors). */
  trust?: TrustOptions;
  options?: OutboundOptions;
}

export type OutboundResult =
  | { ok: true; message: Buffer; signed: boolean; encrypted: boolean; encryptedFor: Certificate[] }
  | SmimeFailure;

export interface InboundOptions {
  /** Refuse messages without a valid signature (default true) or not encrypted (default true). */
  requireSignature?: boolean;
  requireEncryption?: boolean;
  /** Outer header fields compared with the wrapped message (default From, Sender, Reply-To, To, Cc, Date, Message-ID). */
  protectedHeaders?: readonly string[];
  practitionerId?: PractitionerIdOptions;
}

export interface InboundRequest {
  message: Buffer;
  decryptionKeys: readonly DecryptionKey[];
  trust: TrustOptions;
  /** Certificates that may identify a signer whose message does not carry its certificate. */
  knownCertificates?: readonly Certificate[];
  options?: InboundOptions;
}

export interface Verification {
  signed: boolean;
  encrypted: boolean;
  /** The message was wrapped (message/rfc822) and its outer header agreed with it. */
  wrapped: boolean;
  /** The address the signer certificate was checked against (Sender, else From). */
  signerAddress: string | null;
  /** How the signer certificate names it: an address-bound or a domain-bound (Direct) certificate. */
  binding: 'address' | 'domain' | null;
  /** idNat_PS ('8' + RPPS) from the signer certificate subject, when it has one. */
  practitionerId: string | null;
  certificate: Certificate | null;
  /** Signer path, leaf first, trust anchor last. */
  chain: Certificate[];
  digest: DigestName | null;
  signatureAlgorithm: string | null;
  signingTime: Date | null;
  contentEncryption: ContentCipher | null;
  keyTransport: string | null;
  /** Our certificate the message was encrypted to. */
  decryptedWith: Certificate | null;
}

export type InboundResult = { ok: true; message: Buffer; verification: Verification } | SmimeFailure;

function fail(err: unknown): SmimeFailure {
  if (err instanceof SmimeError) return err.toFailure();
  if (err instanceof DerError) return malformed(err.message).toFailure();
  return malformed(`unexpected: ${err instanceof Error ? err.message : String(err)}`).toFailure();
}

const CONTENT_FIELD = /^content-/;

/** A From or Sender single address, or null. */
function singleAddress(value: string | null): string | null {
  const list = (parseAddressList(value) ?? []).filter((a) => a.host !== null && a.mailbox !== null);
  return list.length === 1 ? `${list[0]!.mailbox}@${list[0]!.host}` : null;
}

/** The address the signer must speak for: Sender when present, else the single From. */
function authorAddress(fields: readonly HeaderField[]): string | null {
  const sender = headerValue(fields, 'sender');
  return sender !== null ? singleAddress(sender) : singleAddress(headerValue(fields, 'from'));
}

/** Checks a certificate used outbound: purpose, strength, and trust (or, without trust options, validity dates). */
async function checkOutboundCertificate(cert: Certificate, purpose: Purpose, party: SmimeParty, trust: TrustOptions | undefined, untrusted: readonly Certificate[]) {
  if (trust) {
    await validateCertificate(cert, purpose, party, trust, untrusted);
    return;
  }
  const now = new Date();
  if (now < cert.notBefore) throw new SmimeError('cert-not-yet-valid', `${cert.subject} is valid from ${cert.notBefore.toISOString()}`, party, cert.ref);
  if (now > cert.notAfter) throw new SmimeError('cert-expired', `${cert.subject} expired ${cert.notAfter.toISOString()}`, party, cert.ref);
  checkKeyStrength(cert.publicKey, resolvePolicy(undefined), party, cert.ref);
  checkPurpose(cert, purpose, party);
}

function canEncipher(cert: Certificate): boolean {
  return cert.publicKey.asymmetricKeyType === 'rsa' && (cert.keyUsage === null || (cert.keyUsage & KEY_USAGE.keyEncipherment) !== 0);
}

/** Wraps, signs and encrypts a message for its recipients and the sender (Direct: sign, then encrypt). */
export async function protectOutbound(req: OutboundRequest): Promise<OutboundResult> {
  const o = req.options ?? {};
  const sign = o.sign ?? true;
  const encrypt = o.encrypt ?? true;
  if (sign && !createPublicKey(req.signer.key).export({ type: 'spki', format: 'der' }).equals(req.signer.certificate.spki)) {
    throw new TypeError('the signing key does not belong to the signer certificate');
  }
  try {
    const { fields, bodyStart } = readHeader(req.message, 0, req.message.length);
    const from = authorAddress(fields);
    if (!from) throw malformed('the message needs one From address (or a Sender)');

    if (sign) {
      await checkOutboundCertificate(req.signer.certificate, 'sign', 'signer', req.trust, req.signer.chain ?? []);
      if (!certificateMatchesAddress(req.signer.certificate, from).match) {
        throw new SmimeError('identity-mismatch', `the signer certificate does not name ${from}`, 'signer', req.signer.certificate.ref);
      }
    }
    const encryptTo: Certificate[] = [];
    if (encrypt) {
      if (req.recipients.length === 0) throw new SmimeError('no-recipient-certificate', 'no recipient certificate to encrypt to', 'recipient');
      for (const cert of req.recipients) {
        if (cert.publicKey.asymmetricKeyType !== 'rsa') {
          throw new SmimeError('unsupported-algorithm', `cannot encrypt to a ${cert.publicKey.asymmetricKeyType ?? '?'} key (RSA key transport only)`, 'recipient', cert.ref);
        }
        await checkOutboundCertificate(cert, 'encrypt', 'recipient', req.trust, []);
        encryptTo.push(cert);
      }
      const own = req.senderCertificate === undefined ? (canEncipher(req.signer.certificate) ? req.signer.certificate : null) : req.senderCertificate;
      if (own) {
        await checkOutboundCertificate(own, 'encrypt', 'sender', req.trust, req.signer.chain ?? []);
        encryptTo.push(own);
      }
    }
    const recipients = encryptTo.filter((c, i) => encryptTo.findIndex((d) => d.equals(c)) === i);

    const wrap = o.wrap ?? true;
    const outer: Buffer[] = [];
    const content: Buffer[] = [];
    for (const f of fields) {
      if (f.name === 'mime-version') continue;
      if (!wrap && CONTENT_FIELD.test(f.name)) content.push(rawField(req.message, f));
      else if (f.name === 'subject' && o.outerSubject !== undefined && wrap) outer.push(Buffer.from(`Subject: ${o.outerSubject.replace(/[\r\n]+/g, ' ')}\r\n`, 'utf8'));
      else if (!CONTENT_FIELD.test(f.name)) outer.push(rawField(req.message, f));
    }
    let entity = wrap
      ? wrapMessage(req.message)
      : canonicalize(Buffer.concat([...(content.length ? content : [Buffer.from('Content-Type: text/plain; charset=us-ascii\r\n')]), Buffer.from('\r\n'), req.message.subarray(bodyStart)]));
    if (sign) {
      const digest = o.digest ?? 'sha256';
      const signature = createSignedData(entity, req.signer, { digest, rsaPadding: o.rsaPadding, signingTime: o.signingTime });
      entity = buildMultipartSigned(entity, signature, MICALG[digest]);
    }
    let parts = [entity];
    if (encrypt) {
      const cipher = o.contentEncryption ?? 'aes-256-cbc';
      const der = createEnvelopedData(entity, recipients, { contentEncryption: cipher, keyTransport: o.keyTransport });
      parts = pkcs7MimeParts(der, isGcm(cipher) ? 'authEnveloped-data' : 'enveloped-data');
    }
    return { ok: true, message: assemble(outer, ...parts), signed: sign, encrypted: encrypt, encryptedFor: recipients };
  } catch (err) {
    return fail(err);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Inbound

const PKCS7_MIME = new Set(['application/pkcs7-mime', 'application/x-pkcs7-mime']);

interface SignatureLayer {
  signers: VerifiedSignature[];
  certificates: Certificate[];
}

/**
 * Verifies a SignedData over its detached content (multipart/signed) or its encapsulated one (signed-data);
 * returns the signers and the signed content.
 */
function verifyLayer(signatureDer: Buffer, detached: Buffer | null, req: InboundRequest): { layer: SignatureLayer; content: Buffer } {
  const parsed = parseSignedData(signatureDer, Certificate.fromDer);
  const content = detached ?? parsed.content;
  if (!content) throw malformed('signed-data without content');
  const signers = verifySignedData(parsed, content, resolvePolicy(req.trust.policy), req.knownCertificates ?? []);
  return { layer: { signers, certificates: parsed.certificates }, content };
}

/** Decrypts, verifies and unwraps an inbound message, then checks the signer's trust and identity. */
export async function processInbound(req: InboundRequest): Promise<InboundResult> {
  const o = req.options ?? {};
  try {
    const outer = readEntity(req.message);
    const v: Verification = {
      signed: false,
      encrypted: false,
      wrapped: false,
      signerAddress: null,
      binding: null,
      practitionerId: null,
      certificate: null,
      chain: [],
      digest: null,
      signatureAlgorithm: null,
      signingTime: null,
      contentEncryption: null,
      keyTransport: null,
      decryptedWith: null,
    };
    let layer: SignatureLayer | null = null;
    let cur: Entity = outer;
    // Layers from the outside in: at most one encryption and one signature (sign-then-encrypt, or the reverse).
    for (let depth = 0; depth < 3; depth++) {
      const der = PKCS7_MIME.has(cur.mediaType) ? decodedBody(cur) : null;
      if (PKCS7_MIME.has(cur.mediaType) && !der) throw malformed('undecodable application/pkcs7-mime body');
      const type = der ? parseContentInfo(der).contentType : null;
      const enveloped = type === OIDS.envelopedData || type === OIDS.authEnvelopedData;
      if (depth === 0 && !enveloped && (o.requireEncryption ?? true)) throw new SmimeError('not-encrypted', 'the message is not encrypted');
      if (der && enveloped && !v.encrypted) {
        const d = decryptEnvelopedData(parseEnvelopedData(der), req.decryptionKeys);
        const next = readEntity(d.content);
        // A wrong key whose CBC padding happens to check out yields noise, not a MIME entity: the same
        // 'cannot-decrypt' as any other wrong key (docs/decisions/0006).
        if (!hasContentType(next)) throw new SmimeError('cannot-decrypt', 'the content does not decrypt with our key', 'recipient');
        Object.assign(v, { encrypted: true, contentEncryption: d.cipher, keyTransport: d.keyTransport, decryptedWith: d.recipient });
        cur = next;
      } else if (der && type === OIDS.signedData && !layer) {
        const signed = verifyLayer(der, null, req);
        layer = signed.layer;
        cur = readEntity(signed.content);
      } else if (cur.mediaType === 'multipart/signed' && !layer) {
        const { content, signature } = splitMultipartSigned(cur);
        const signed = verifyLayer(signature, canonicalize(content), req);
        layer = signed.layer;
        cur = readEntity(signed.content);
      } else if (der && !enveloped && type !== OIDS.signedData) {
        throw new SmimeError('unsupported-algorithm', `CMS content type ${type ?? '?'}`);
      } else break;
    }
    if ((o.requireSignature ?? true) && !layer) throw new SmimeError('not-signed', 'the message is not signed');

    // The protected message: the wrapped one, or the outer header with the unwrapped entity.
    let message: Buffer;
    let protectedFields: readonly HeaderField[];
    if (cur !== outer && cur.mediaType === 'message/rfc822') {
      const inner = decodedBody(cur);
      if (!inner) throw malformed('undecodable message/rfc822 part');
      protectedFields = readHeader(inner, 0, inner.length).fields;
      const mismatch = headerMismatch(outer.fields, protectedFields, o.protectedHeaders ?? DEFAULT_PROTECTED_HEADERS);
      if (mismatch) throw new SmimeError('header-mismatch', mismatch);
      message = inner;
      v.wrapped = true;
    } else if (cur !== outer) {
      const lines = outer.fields.filter((f) => !CONTENT_FIELD.test(f.name) && f.name !== 'mime-version').map((f) => rawField(req.message, f));
      message = assemble(lines, cur.buf);
      protectedFields = outer.fields;
    } else {
      message = req.message;
      protectedFields = outer.fields;
    }

    if (layer) {
      const author = authorAddress(protectedFields);
      let firstError: unknown = null;
      for (const signer of layer.signers) {
        try {
          const { path } = await validateCertificate(signer.certificate, 'sign', 'signer', req.trust, [...layer.certificates, ...(req.knownCertificates ?? [])]);
          const identity = author ? certificateMatchesAddress(signer.certificate, author) : { match: false, binding: null };
          if (!identity.match) {
            throw new SmimeError('identity-mismatch', author ? `the signer certificate does not name ${author}` : 'the message has no single From address', 'signer', signer.certificate.ref);
          }
          Object.assign(v, {
            signed: true,
            signerAddress: author,
            binding: identity.binding,
            practitionerId: practitionerIdOf(signer.certificate, o.practitionerId),
            certificate: signer.certificate,
            chain: path,
            digest: signer.digest,
            signatureAlgorithm: signer.scheme.kind,
            signingTime: signer.signingTime,
          });
          firstError = null;
          break;
        } catch (err) {
          firstError ??= err;
        }
      }
      if (firstError) throw firstError;
    }
    return { ok: true, message, verification: v };
  } catch (err) {
    return fail(err);
  }
}
