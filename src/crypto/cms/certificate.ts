/**
 * X.509 certificates as the security agent needs them, parsed with the strict DER reader: the exact bytes of
 * the issuer, subject and serial (to match CMS identifiers and CRLs), tbsCertificate (to verify signatures),
 * the extensions that decide trust and use, and the public key as a node KeyObject.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { Asn1, DerError, TAG } from './der.js';
import { malformed, type CertificateRef } from './failure.js';
import { OIDS } from './oids.js';

/** keyUsage bits (RFC 5280 §4.2.1.3), bit n = 1 << n. */
export const KEY_USAGE = {
  digitalSignature: 1 << 0,
  nonRepudiation: 1 << 1,
  keyEncipherment: 1 << 2,
  dataEncipherment: 1 << 3,
  keyAgreement: 1 << 4,
  keyCertSign: 1 << 5,
  cRLSign: 1 << 6,
  encipherOnly: 1 << 7,
  decipherOnly: 1 << 8,
} as const;

/** Extensions whose meaning we enforce (or may safely ignore); another critical one makes the certificate unusable. */
const UNDERSTOOD_EXTENSIONS = new Set<string>([
  OIDS.subjectKeyIdentifier,
  OIDS.keyUsage,
  OIDS.subjectAltName,
  OIDS.basicConstraints,
  OIDS.authorityKeyIdentifier,
  OIDS.extKeyUsage,
  OIDS.crlDistributionPoints,
  OIDS.certificatePolicies, // no policy OID is required by our configuration, so the extension imposes nothing
]);

const SHORT_NAMES: Readonly<Record<string, string>> = {
  '2.5.4.3': 'CN',
  '2.5.4.4': 'SN',
  '2.5.4.5': 'serialNumber',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.42': 'GN',
  '1.2.840.113549.1.9.1': 'emailAddress',
};

export interface NameAttribute {
  oid: string;
  value: string;
}

export class Certificate {
  readonly der: Buffer;
  readonly tbs: Buffer;
  /** The certificate's own signature algorithm identifier and value (checked against its issuer). */
  readonly signatureAlgorithm: Asn1;
  readonly signatureValue: Buffer;
  readonly version: number;
  /** INTEGER content bytes, as encoded (for IssuerAndSerialNumber matching). */
  readonly serialBytes: Buffer;
  /** Lower-case hex without leading zero bytes. */
  readonly serialNumber: string;
  readonly issuerDer: Buffer;
  readonly subjectDer: Buffer;
  readonly issuerAttributes: NameAttribute[];
  readonly subjectAttributes: NameAttribute[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly spki: Buffer;
  readonly publicKey: KeyObject;
  /** keyUsage bits, or null when the extension is absent (any use allowed). */
  readonly keyUsage: number | null;
  /** extKeyUsage OIDs, or null when absent. */
  readonly extKeyUsage: string[] | null;
  readonly basicConstraints: { ca: boolean; pathLength: number | null } | null;
  readonly subjectKeyId: Buffer | null;
  readonly authorityKeyId: Buffer | null;
  /** rfc822Name entries of subjectAltName, as written. */
  readonly emails: string[];
  /** dNSName entries of subjectAltName, lower-case. */
  readonly dnsNames: string[];
  /** http(s) URLs of the CRL distribution points. */
  readonly crlUrls: string[];
  readonly unknownCriticalExtensions: string[];
  readonly fingerprint256: string;

  private constructor(der: Buffer) {
    this.der = der;
    const [tbsNode, sigAlg, sigValue, ...rest] = Asn1.parse(der).items('Certificate');
    if (!tbsNode || !sigAlg || !sigValue || rest.length) throw new DerError('Certificate must have three fields');
    this.tbs = tbsNode.raw;
    this.signatureAlgorithm = sigAlg;
    const bits = sigValue.bitString();
    if (bits.unusedBits !== 0) throw new DerError('signature BIT STRING with unused bits');
    this.signatureValue = bits.bytes;

    const fields = tbsNode.items('TBSCertificate');
    let i = 0;
    this.version = 0;
    if (fields[0]?.isContext(0)) {
      this.version = (fields[0].children()[0] ?? fields[0]).smallInt();
      i++;
    }
    const serial = fields[i++];
    const _signature = fields[i++];
    const issuer = fields[i++];
    const validity = fields[i++];
    const subject = fields[i++];
    const spki = fields[i++];
    if (!serial || !_signature || !issuer || !validity || !subject || !spki) throw new DerError('TBSCertificate is incomplete');
    this.serialBytes = serial.integerBytes();
    this.serialNumber = normaliseSerial(this.serialBytes);
    this.issuerDer = issuer.expect(TAG.sequence, 'issuer').raw;
    this.subjectDer = subject.expect(TAG.sequence, 'subject').raw;
    this.issuerAttributes = parseName(issuer);
    this.subjectAttributes = parseName(subject);
    const [nb, na, ...vrest] = validity.items('Validity');
    if (!nb || !na || vrest.length) throw new DerError('bad Validity');
    this.notBefore = nb.time();
    this.notAfter = na.time();
    this.spki = spki.expect(TAG.sequence, 'SubjectPublicKeyInfo').raw;
    try {
      this.publicKey = createPublicKey({ key: this.spki, format: 'der', type: 'spki' });
    } catch (err) {
      throw new DerError(`unusable public key: ${(err as Error).message}`);
    }

    let keyUsage: number | null = null;
    let extKeyUsage: string[] | null = null;
    let basicConstraints: Certificate['basicConstraints'] = null;
    let subjectKeyId: Buffer | null = null;
    let authorityKeyId: Buffer | null = null;
    const emails: string[] = [];
    const dnsNames: string[] = [];
    const crlUrls: string[] = [];
    const unknownCritical: string[] = [];
    const seen = new Set<string>();
    for (const field of fields.slice(i)) {
      if (field.isContext(1) || field.isContext(2)) continue; // unique identifiers
      if (!field.isContext(3)) throw new DerError('unexpected field in TBSCertificate');
      const [extensions] = field.children();
      for (const ext of extensions?.items('Extensions') ?? []) {
        const parts = ext.items('Extension');
        const oid = parts[0]?.oid();
        if (!oid) throw new DerError('empty Extension');
        if (seen.has(oid)) throw new DerError(`duplicate extension ${oid}`);
        seen.add(oid);
        const critical = parts.length === 3 ? parts[1]!.boolean() : false;
        const valueNode = parts[parts.length - 1];
        if (!valueNode || parts.length < 2 || parts.length > 3) throw new DerError('bad Extension');
        const value = Asn1.parse(valueNode.octets());
        switch (oid) {
          case OIDS.keyUsage:
            keyUsage = bitsToFlags(value.bitString());
            break;
          case OIDS.extKeyUsage:
            extKeyUsage = value.items('ExtKeyUsage').map((n) => n.oid());
            break;
          case OIDS.basicConstraints: {
            const bc = value.items('BasicConstraints');
            let ca = false;
            let pathLength: number | null = null;
            for (const n of bc) {
              if (n.isUniversal(TAG.boolean)) ca = n.boolean();
              else pathLength = n.smallInt();
            }
            basicConstraints = { ca, pathLength };
            break;
          }
          case OIDS.subjectKeyIdentifier:
            subjectKeyId = value.octets();
            break;
          case OIDS.authorityKeyIdentifier:
            for (const n of value.items('AuthorityKeyIdentifier')) if (n.isContext(0)) authorityKeyId = n.content;
            break;
          case OIDS.subjectAltName:
            for (const n of value.items('SubjectAltName')) {
              if (n.isContext(1) && !n.constructed) emails.push(n.content.toString('latin1'));
              else if (n.isContext(2) && !n.constructed) dnsNames.push(n.content.toString('latin1').toLowerCase());
            }
            break;
          case OIDS.crlDistributionPoints:
            for (const dp of value.items('CRLDistributionPoints')) {
              for (const f of dp.items('DistributionPoint')) {
                if (!f.isContext(0)) continue;
                const [name] = f.children();
                if (!name?.isContext(0)) continue; // nameRelativeToCRLIssuer: not supported
                for (const gn of name.children()) {
                  const url = gn.isContext(6) && !gn.constructed ? gn.content.toString('latin1') : '';
                  if (/^https?:\/\//i.test(url)) crlUrls.push(url);
                }
              }
            }
            break;
          default:
            if (critical && !UNDERSTOOD_EXTENSIONS.has(oid)) unknownCritical.push(oid);
        }
      }
    }
    this.keyUsage = keyUsage;
    this.extKeyUsage = extKeyUsage;
    this.basicConstraints = basicConstraints;
    this.subjectKeyId = subjectKeyId;
    this.authorityKeyId = authorityKeyId;
    this.emails = emails;
    this.dnsNames = dnsNames;
    this.crlUrls = crlUrls;
    this.unknownCriticalExtensions = unknownCritical;
    this.fingerprint256 = createHash('sha256').update(der).digest('hex');
  }

  /** Parses one DER certificate; malformed input throws SmimeError('malformed'). */
  static fromDer(der: Buffer | Uint8Array): Certificate {
    const buf = Buffer.isBuffer(der) ? der : Buffer.from(der.buffer, der.byteOffset, der.byteLength);
    try {
      return new Certificate(buf);
    } catch (err) {
      if (err instanceof DerError) throw malformed(`certificate: ${err.message}`);
      throw err;
    }
  }

  /** Every certificate of a PEM text, or the one DER certificate of a binary input. */
  static parseAll(input: string | Buffer): Certificate[] {
    if (typeof input !== 'string' && !input.subarray(0, 64).includes('-----BEGIN')) return [Certificate.fromDer(input)];
    const text = typeof input === 'string' ? input : input.toString('latin1');
    const out: Certificate[] = [];
    for (const m of text.matchAll(/-----BEGIN (?:X509 )?CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END (?:X509 )?CERTIFICATE-----/g)) {
      out.push(Certificate.fromDer(Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64')));
    }
    return out;
  }

  /** Exactly one certificate from PEM or DER. */
  static from(input: string | Buffer): Certificate {
    const all = Certificate.parseAll(input);
    if (all.length === 0) throw malformed('no certificate found');
    return all[0]!;
  }

  get subject(): string {
    return formatName(this.subjectAttributes);
  }

  get issuer(): string {
    return formatName(this.issuerAttributes);
  }

  get isSelfIssued(): boolean {
    return this.subjectDer.equals(this.issuerDer);
  }

  /** Values of one subject attribute (e.g. serialNumber 2.5.4.5, which carries idNat_PS). */
  subjectValues(oid: string): string[] {
    return this.subjectAttributes.filter((a) => a.oid === oid).map((a) => a.value);
  }

  get pem(): string {
    const lines = this.der.toString('base64').match(/.{1,64}/g) ?? [];
    return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
  }

  get ref(): CertificateRef {
    return { subject: this.subject, issuer: this.issuer, serialNumber: this.serialNumber, fingerprint256: this.fingerprint256 };
  }

  equals(other: Certificate): boolean {
    return this.der.equals(other.der);
  }
}

export function normaliseSerial(bytes: Buffer): string {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return bytes.subarray(i).toString('hex');
}

function bitsToFlags(b: { unusedBits: number; bytes: Buffer }): number {
  let flags = 0;
  for (let bit = 0; bit < 9; bit++) {
    const byte = b.bytes[bit >> 3];
    if (byte !== undefined && byte & (0x80 >> (bit & 7))) flags |= 1 << bit;
  }
  return flags;
}

/** The attributes of an encoded Name; throws DerError when it is not one. */
export function parseNameDer(der: Buffer): NameAttribute[] {
  return parseName(Asn1.parse(der));
}

function parseName(name: Asn1): NameAttribute[] {
  const out: NameAttribute[] = [];
  for (const rdn of name.items('Name')) {
    for (const atv of rdn.items('RelativeDistinguishedName', TAG.set)) {
      const [type, value, ...rest] = atv.items('AttributeTypeAndValue');
      if (!type || !value || rest.length) throw new DerError('bad AttributeTypeAndValue');
      let text: string;
      try {
        text = value.text();
      } catch {
        text = `#${value.raw.toString('hex')}`;
      }
      out.push({ oid: type.oid(), value: text });
    }
  }
  return out;
}

/** RFC 4514-style text (most specific first), for logs and audit. */
export function formatName(attrs: readonly NameAttribute[]): string {
  const esc = (v: string) => v.replace(/([,+"\\<>;])/g, '\\$1');
  return [...attrs]
    .reverse()
    .map((a) => `${SHORT_NAMES[a.oid] ?? a.oid}=${esc(a.value)}`)
    .join(',');
}

/**
 * Whether two encoded Names are the same: byte equality, or equal attribute lists once case and inner white
 * space are folded (RFC 5280 §7.1 lets a CA re-encode a name, e.g. PrintableString vs UTF8String).
 */
export function sameName(aDer: Buffer, aAttrs: readonly NameAttribute[], bDer: Buffer, bAttrs: readonly NameAttribute[]): boolean {
  if (aDer.equals(bDer)) return true;
  if (aAttrs.length !== bAttrs.length) return false;
  const fold = (v: string) => v.normalize('NFKC').trim().replace(/\s+/g, ' ').toLowerCase();
  return aAttrs.every((a, i) => a.oid === bAttrs[i]!.oid && fold(a.value) === fold(bAttrs[i]!.value));
}
