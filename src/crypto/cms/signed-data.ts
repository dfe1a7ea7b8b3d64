/**
 * CMS SignedData (RFC 5652 §5): creation of a detached (or encapsulating) signature with the signed
 * attributes contentType, signingTime, messageDigest and sMIMECapabilities, and its verification:
 * digest policy, signer certificate lookup, key strength, message digest and signature. Trust in the signer
 * (path, validity, revocation, usage, identity) is decided by the caller.
 */
import type { KeyObject } from 'node:crypto';
import {
  type AlgorithmPolicy,
  checkDigest,
  checkKeyStrength,
  createSignature,
  digest,
  DIGEST_OID,
  digestLength,
  type DigestName,
  parseDigestAlgorithm,
  parseSignatureAlgorithm,
  signatureAlgorithmIdentifier,
  type SignatureScheme,
  type SigningDigest,
  verifySignature,
} from './algorithms.js';
import { type Certificate, type NameAttribute, normaliseSerial, parseNameDer, sameName } from './certificate.js';
import { algorithmIdentifier, Asn1, contextCons, DerError, int, octetString, oid, seq, setOf, TAG, time, tlv } from './der.js';
import { malformed, SmimeError } from './failure.js';
import { OIDS } from './oids.js';

export interface SigningCredential {
  key: KeyObject;
  certificate: Certificate;
  /** Intermediates to include so the receiver can build the path (the anchor need not be sent). */
  chain?: Certificate[];
}

export interface SignOptions {
  /** Digest of the content and of the signed attributes (default sha256). */
  digest?: SigningDigest;
  /** RSA signature padding (default PKCS#1 v1.5, what every S/MIME client verifies). Ignored for EC keys. */
  rsaPadding?: 'pkcs1' | 'pss';
  signingTime?: Date;
  /** Encapsulate the content instead of a detached signature (default false: detached). */
  encapsulate?: boolean;
}

/** A signature carries its signer's chain, not a certificate store. */
const MAX_CERTIFICATES = 32;

const CAPABILITIES = seq(
  seq(oid(OIDS.aes256Gcm)),
  seq(oid(OIDS.aes256Cbc)),
  seq(oid(OIDS.aes128Cbc)),
);

function attribute(type: string, value: Buffer): Buffer {
  return seq(oid(type), setOf([value]));
}

/** Encodes a ContentInfo holding SignedData over `content` (id-data). */
export function createSignedData(content: Buffer, signer: SigningCredential, options: SignOptions = {}): Buffer {
  const hash: DigestName = options.digest ?? 'sha256';
  const keyType = signer.key.asymmetricKeyType;
  let scheme: SignatureScheme;
  if (keyType === 'ec') scheme = { kind: 'ecdsa', hash };
  else if (keyType === 'rsa-pss' || options.rsaPadding === 'pss') scheme = { kind: 'rsa-pss', hash, saltLength: digestLength(hash) };
  else scheme = { kind: 'rsa-pkcs1', hash };

  const attrs = [
    attribute(OIDS.contentType, oid(OIDS.data)),
    attribute(OIDS.signingTime, time(options.signingTime ?? new Date())),
    attribute(OIDS.messageDigest, octetString(digest(hash, content))),
    attribute(OIDS.smimeCapabilities, CAPABILITIES),
  ];
  const signedAttrsForSignature = setOf(attrs);
  const signature = createSignature(scheme, signer.key, signedAttrsForSignature);
  const signedAttrs = Buffer.concat([Buffer.of(0xa0), signedAttrsForSignature.subarray(1)]);
  const cert = signer.certificate;
  const digestAlg = algorithmIdentifier(DIGEST_OID[hash]);
  const signerInfo = seq(
    int(1),
    seq(cert.issuerDer, tlv(0x02, cert.serialBytes)),
    digestAlg,
    signedAttrs,
    signatureAlgorithmIdentifier(scheme),
    octetString(signature),
  );
  const certs = [cert, ...(signer.chain ?? []).filter((c) => !c.equals(cert))].map((c) => c.der);
  const encap = options.encapsulate ? seq(oid(OIDS.data), contextCons(0, octetString(content))) : seq(oid(OIDS.data));
  const signedData = seq(
    int(1),
    setOf([digestAlg]),
    encap,
    tlv(0xa0, ...[...certs].sort(Buffer.compare)),
    setOf([signerInfo]),
  );
  return seq(oid(OIDS.signedData), contextCons(0, signedData));
}

// ---------------------------------------------------------------------------------------------------------
// Parsing

export type SignerIdentifier =
  | { kind: 'issuer-serial'; issuer: Buffer; serial: string }
  | { kind: 'ski'; keyId: Buffer };

export interface ParsedSignerInfo {
  sid: SignerIdentifier;
  digest: DigestName;
  /** The signed attributes re-tagged as SET OF, the bytes the signature covers; null when absent. */
  signedAttrs: Buffer | null;
  contentType: string | null;
  messageDigest: Buffer | null;
  signingTime: Date | null;
  signatureAlgorithm: Asn1;
  signature: Buffer;
}

export interface ParsedSignedData {
  contentType: string;
  /** The encapsulated content, or null for a detached signature. */
  content: Buffer | null;
  certificates: Certificate[];
  signerInfos: ParsedSignerInfo[];
}

/** The content type and content of a ContentInfo. */
export function parseContentInfo(der: Buffer): { contentType: string; content: Asn1 } {
  try {
    const [type, content, ...rest] = Asn1.parse(der).items('ContentInfo');
    if (!type || !content || rest.length || !content.isContext(0)) throw new DerError('bad ContentInfo');
    const [inner, ...more] = content.children();
    if (!inner || more.length) throw new DerError('bad ContentInfo content');
    return { contentType: type.oid(), content: inner };
  } catch (err) {
    if (err instanceof DerError) throw malformed(`CMS: ${err.message}`);
    throw err;
  }
}

/** Parses a ContentInfo holding SignedData. Certificates are parsed too (a malformed one is a malformed message). */
export function parseSignedData(der: Buffer, certificateParser: (der: Buffer) => Certificate): ParsedSignedData {
  const info = parseContentInfo(der);
  if (info.contentType !== OIDS.signedData) throw malformed(`CMS content type ${info.contentType} is not SignedData`);
  try {
    const fields = info.content.items('SignedData');
    const [version, _digestAlgorithms, encap] = fields;
    if (!version || !_digestAlgorithms || !encap) throw new DerError('SignedData is incomplete');
    version.smallInt();
    _digestAlgorithms.expect(TAG.set, 'digestAlgorithms');
    const [eType, eContent, ...erest] = encap.items('EncapsulatedContentInfo');
    if (!eType || erest.length) throw new DerError('bad EncapsulatedContentInfo');
    let content: Buffer | null = null;
    if (eContent) {
      if (!eContent.isContext(0)) throw new DerError('bad eContent');
      const [octets, ...orest] = eContent.children();
      if (!octets || orest.length) throw new DerError('bad eContent');
      content = octets.octets();
    }
    const certificates: Certificate[] = [];
    let signerInfosNode: Asn1 | undefined;
    for (const field of fields.slice(3)) {
      if (field.isContext(0)) {
        const all = field.children();
        if (all.length > MAX_CERTIFICATES) throw new DerError(`more than ${MAX_CERTIFICATES} certificates`);
        for (const c of all) if (c.isUniversal(TAG.sequence)) certificates.push(certificateParser(Buffer.from(c.raw)));
      } else if (field.isContext(1)) {
        // revocation information: not used (CRLs come from the configured provider)
      } else if (field.isUniversal(TAG.set) && !signerInfosNode) signerInfosNode = field;
      else throw new DerError('unexpected field in SignedData');
    }
    if (!signerInfosNode) throw new DerError('SignedData without signerInfos');
    const signerInfos = signerInfosNode.children().map(parseSignerInfo);
    return { contentType: eType.oid(), content, certificates, signerInfos };
  } catch (err) {
    if (err instanceof DerError) throw malformed(`SignedData: ${err.message}`);
    throw err;
  }
}

function parseSignerInfo(node: Asn1): ParsedSignerInfo {
  const fields = node.items('SignerInfo');
  const [version, sidNode, digestAlg] = fields;
  if (!version || !sidNode || !digestAlg) throw new DerError('SignerInfo is incomplete');
  version.smallInt();
  let sid: SignerIdentifier;
  if (sidNode.isUniversal(TAG.sequence)) {
    const [issuer, serial, ...rest] = sidNode.children();
    if (!issuer || !serial || rest.length) throw new DerError('bad IssuerAndSerialNumber');
    sid = { kind: 'issuer-serial', issuer: issuer.expect(TAG.sequence, 'issuer').raw, serial: normaliseSerial(serial.integerBytes()) };
  } else if (sidNode.isContext(0) && !sidNode.constructed) sid = { kind: 'ski', keyId: sidNode.content };
  else throw new DerError('bad SignerIdentifier');
  const digestName = parseDigestAlgorithm(digestAlg);
  let i = 3;
  let signedAttrs: Buffer | null = null;
  let contentType: string | null = null;
  let messageDigest: Buffer | null = null;
  let signingTime: Date | null = null;
  const attrsNode = fields[i];
  if (attrsNode?.isContext(0)) {
    i++;
    if (attrsNode.indefinite) throw new DerError('signed attributes must be DER');
    signedAttrs = Buffer.concat([Buffer.of(0x31), attrsNode.raw.subarray(1)]);
    const seen = new Set<string>();
    for (const attr of attrsNode.children()) {
      const [type, values, ...rest] = attr.items('Attribute');
      if (!type || !values || rest.length) throw new DerError('bad Attribute');
      const t = type.oid();
      const vals = values.items('AttributeValues', TAG.set);
      if (t === OIDS.contentType || t === OIDS.messageDigest || t === OIDS.signingTime) {
        if (seen.has(t) || vals.length !== 1) throw new DerError(`attribute ${t} must appear once with one value`);
        seen.add(t);
        const v = vals[0]!;
        if (t === OIDS.contentType) contentType = v.oid();
        else if (t === OIDS.messageDigest) messageDigest = v.octets();
        else {
          try {
            signingTime = v.time();
          } catch {
            signingTime = null; // an odd time format does not invalidate the signature; it is only reported
          }
        }
      }
    }
  }
  const signatureAlgorithm = fields[i++];
  const signature = fields[i++];
  if (!signatureAlgorithm || !signature) throw new DerError('SignerInfo is incomplete');
  for (const f of fields.slice(i)) if (!f.isContext(1)) throw new DerError('unexpected field in SignerInfo');
  return { sid, digest: digestName, signedAttrs, contentType, messageDigest, signingTime, signatureAlgorithm, signature: signature.octets() };
}

// ---------------------------------------------------------------------------------------------------------
// Verification

export interface VerifiedSignature {
  certificate: Certificate;
  digest: DigestName;
  scheme: SignatureScheme;
  signingTime: Date | null;
}

export function findSignerCertificate(sid: SignerIdentifier, candidates: readonly Certificate[]): Certificate | null {
  if (sid.kind === 'ski') return candidates.find((c) => c.subjectKeyId?.equals(sid.keyId)) ?? null;
  let attrs: NameAttribute[] = [];
  try {
    attrs = parseNameDer(sid.issuer);
  } catch {
    // byte comparison only
  }
  return candidates.find((c) => c.serialNumber === sid.serial && sameName(c.issuerDer, c.issuerAttributes, sid.issuer, attrs)) ?? null;
}

/**
 * Verifies every SignerInfo over `content` (all must verify: one bad signature means the message was
 * altered). Throws SmimeError: weak-digest, unsupported-algorithm, no-signer-certificate, weak-key,
 * bad-signature. Returns one entry per signer, in order.
 */
export function verifySignedData(
  parsed: ParsedSignedData,
  content: Buffer,
  policy: AlgorithmPolicy,
  extraCertificates: readonly Certificate[] = [],
): VerifiedSignature[] {
  if (parsed.signerInfos.length === 0) throw new SmimeError('bad-signature', 'SignedData has no signer', 'signer');
  const digests = new Map<DigestName, Buffer>();
  const contentDigest = (name: DigestName) => {
    let d = digests.get(name);
    if (!d) digests.set(name, (d = digest(name, content)));
    return d;
  };
  return parsed.signerInfos.map((si) => {
    checkDigest(si.digest, policy, 'signer', 'the message digest');
    const scheme = parseSignatureAlgorithm(si.signatureAlgorithm, si.digest);
    checkDigest(scheme.hash, policy, 'signer', 'the signature');
    const cert = findSignerCertificate(si.sid, [...parsed.certificates, ...extraCertificates]);
    if (!cert) throw new SmimeError('no-signer-certificate', 'the signer certificate is not in the message', 'signer');
    checkKeyStrength(cert.publicKey, policy, 'signer', cert.ref);
    let signedBytes = content;
    if (si.signedAttrs) {
      if (si.contentType !== parsed.contentType) throw new SmimeError('bad-signature', 'contentType attribute missing or different', 'signer', cert.ref);
      if (!si.messageDigest) throw new SmimeError('bad-signature', 'messageDigest attribute missing', 'signer', cert.ref);
      if (!si.messageDigest.equals(contentDigest(si.digest))) {
        throw new SmimeError('bad-signature', 'message digest mismatch: the signed content was altered', 'signer', cert.ref);
      }
      signedBytes = si.signedAttrs;
    } else if (parsed.contentType !== OIDS.data) {
      throw new SmimeError('bad-signature', 'signed attributes are required for this content type', 'signer', cert.ref);
    }
    if (!verifySignature(scheme, cert.publicKey, signedBytes, si.signature)) {
      throw new SmimeError('bad-signature', 'the signature does not verify with the signer certificate', 'signer', cert.ref);
    }
    return { certificate: cert, digest: si.digest, scheme, signingTime: si.signingTime };
  });
}
