import type { X509Certificate } from 'node:crypto';
import { Certificate, formatName, type NameAttribute } from '../crypto/cms/certificate.js';

/**
 * Distinguished names as the trust list writes them (`DNCertificatOperateur`: RFC 4514 text, most specific
 * first, e.g. `CN=smtp-1.sesan.santnet.com,OU=1750048886,O=GIP SESAN,ST=Paris (75),C=FR`) against the subject
 * of a certificate (its encoded Name, most general first).
 *
 * Comparison (`sameDn`) is on attributes, not strings: attribute types by OID (`CN`, `commonName`, `2.5.4.3`
 * alike), values after Unicode NFKC, trimmed, inner white space collapsed and case folded (RFC 4518's
 * caseIgnoreMatch, which every attribute the list uses has), and RDN order ignored, so the published text
 * matches whether it was written in RFC 4514 order or OpenSSL's. Each type stays bound to its value: swapping
 * values between attributes does not match. Accents are significant.
 */

export type DnAttribute = NameAttribute;

export class DnSyntaxError extends Error {}

/** Attribute type names (upper-case) to OIDs: RFC 4514 §3, RFC 4519 and the names OpenSSL prints. */
const TYPES: Readonly<Record<string, string>> = {
  CN: '2.5.4.3',
  COMMONNAME: '2.5.4.3',
  SN: '2.5.4.4',
  SURNAME: '2.5.4.4',
  SERIALNUMBER: '2.5.4.5',
  C: '2.5.4.6',
  COUNTRYNAME: '2.5.4.6',
  L: '2.5.4.7',
  LOCALITYNAME: '2.5.4.7',
  ST: '2.5.4.8',
  S: '2.5.4.8',
  STATEORPROVINCENAME: '2.5.4.8',
  STREET: '2.5.4.9',
  STREETADDRESS: '2.5.4.9',
  O: '2.5.4.10',
  ORGANIZATIONNAME: '2.5.4.10',
  OU: '2.5.4.11',
  ORGANIZATIONALUNITNAME: '2.5.4.11',
  T: '2.5.4.12',
  TITLE: '2.5.4.12',
  POSTALCODE: '2.5.4.17',
  NAME: '2.5.4.41',
  GN: '2.5.4.42',
  G: '2.5.4.42',
  GIVENNAME: '2.5.4.42',
  INITIALS: '2.5.4.43',
  GENERATIONQUALIFIER: '2.5.4.44',
  DNQUALIFIER: '2.5.4.46',
  PSEUDONYM: '2.5.4.65',
  ORGANIZATIONIDENTIFIER: '2.5.4.97',
  DC: '0.9.2342.19200300.100.1.25',
  DOMAINCOMPONENT: '0.9.2342.19200300.100.1.25',
  UID: '0.9.2342.19200300.100.1.1',
  USERID: '0.9.2342.19200300.100.1.1',
  E: '1.2.840.113549.1.9.1',
  EMAIL: '1.2.840.113549.1.9.1',
  EMAILADDRESS: '1.2.840.113549.1.9.1',
};

function attributeOid(type: string): string {
  const t = type.trim();
  const numeric = /^(?:oid\.)?(\d+(?:\.\d+)+)$/i.exec(t);
  if (numeric) return numeric[1]!;
  const oid = TYPES[t.toUpperCase()];
  if (!oid) throw new DnSyntaxError(`unknown attribute type ${JSON.stringify(t)}`);
  return oid;
}

const isHex = (c: string | undefined) => c !== undefined && /^[0-9A-Fa-f]$/.test(c);

/**
 * Parses an RFC 4514 string (also RFC 2253's `;` separator, spaces around separators and `=`, and RFC 1779
 * quoted values), in the order written. `\XX` escapes are UTF-8 bytes; a `#hex` value is kept as
 * `#<lower-case hex>` (the form `Certificate` gives an attribute it cannot read as text).
 */
export function parseDn(text: string): DnAttribute[] {
  const s = text;
  const out: DnAttribute[] = [];
  let i = 0;
  const skipSpaces = () => {
    while (s[i] === ' ' || s[i] === '\t' || s[i] === '\r' || s[i] === '\n') i++;
  };
  skipSpaces();
  if (i >= s.length) throw new DnSyntaxError('empty DN');
  while (i < s.length) {
    skipSpaces();
    const eq = s.indexOf('=', i);
    if (eq < 0) throw new DnSyntaxError(`missing "=" after ${JSON.stringify(s.slice(i))}`);
    const oid = attributeOid(s.slice(i, eq));
    i = eq + 1;
    skipSpaces();
    let value: string;
    if (s[i] === '#') {
      let j = i + 1;
      while (isHex(s[j])) j++;
      const hex = s.slice(i + 1, j);
      if (hex.length === 0 || hex.length % 2) throw new DnSyntaxError(`bad hex value at ${i}`);
      value = `#${hex.toLowerCase()}`;
      i = j;
    } else if (s[i] === '"') {
      let v = '';
      for (i++; i < s.length && s[i] !== '"'; i++) v += s[i] === '\\' && i + 1 < s.length ? s[++i] : s[i];
      if (s[i] !== '"') throw new DnSyntaxError('unterminated quoted value');
      i++;
      value = v;
    } else {
      const bytes: number[] = [];
      let keep = 0; // bytes up to the last escaped or non-space character: unescaped trailing spaces are dropped
      while (i < s.length && s[i] !== ',' && s[i] !== '+' && s[i] !== ';') {
        if (s[i] === '\\') {
          if (isHex(s[i + 1]) && isHex(s[i + 2])) {
            bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
            i += 3;
          } else if (i + 1 < s.length) {
            bytes.push(...Buffer.from(s[i + 1]!, 'utf8'));
            i += 2;
          } else throw new DnSyntaxError('dangling "\\" at the end');
          keep = bytes.length;
          continue;
        }
        const ch = String.fromCodePoint(s.codePointAt(i)!);
        bytes.push(...Buffer.from(ch, 'utf8'));
        if (ch !== ' ') keep = bytes.length;
        i += ch.length;
      }
      value = Buffer.from(bytes.slice(0, keep)).toString('utf8');
    }
    out.push({ oid, value });
    skipSpaces();
    if (i < s.length) {
      if (s[i] !== ',' && s[i] !== '+' && s[i] !== ';') throw new DnSyntaxError(`unexpected ${JSON.stringify(s[i])} at ${i}`);
      i++;
      skipSpaces();
      if (i >= s.length) throw new DnSyntaxError('DN ends with a separator');
    }
  }
  return out;
}

/** What a certificate can come as: ours, Node's (`X509Certificate`, or a TLS peer certificate's `raw`), @peculiar/x509's, DER or PEM. */
export type CertificateLike = Certificate | X509Certificate | { raw: Buffer } | { rawData: ArrayBuffer } | Buffer | string;

function toCertificate(cert: CertificateLike): Certificate {
  if (cert instanceof Certificate) return cert;
  if (typeof cert === 'string' || Buffer.isBuffer(cert)) return Certificate.from(cert);
  if ('raw' in cert) return Certificate.fromDer(cert.raw);
  if ('rawData' in cert) return Certificate.fromDer(Buffer.from(cert.rawData));
  throw new TypeError('not a certificate');
}

/** The subject attributes of a certificate, most general first (as encoded). */
export function certificateSubject(cert: CertificateLike): DnAttribute[] {
  return toCertificate(cert).subjectAttributes;
}

/** RFC 4514 text of a certificate's subject, most specific first: the form `DNCertificatOperateur` uses. */
export function certificateSubjectText(cert: CertificateLike): string {
  return formatName(certificateSubject(cert));
}

function foldValue(oid: string, value: string): string {
  const v = value.normalize('NFKC').trim().replace(/\s+/g, ' ');
  return oid === '2.5.4.6' ? v.toUpperCase() : v.toLowerCase();
}

function keyOf(attrs: readonly DnAttribute[]): string[] {
  return attrs.map((a) => `${a.oid}=${foldValue(a.oid, a.value)}`).sort();
}

/** Whether two DNs (text or attributes) name the same subject, as described above. */
export function sameDn(a: string | readonly DnAttribute[], b: string | readonly DnAttribute[]): boolean {
  const [ka, kb] = [keyOf(typeof a === 'string' ? parseDn(a) : a), keyOf(typeof b === 'string' ? parseDn(b) : b)];
  return ka.length === kb.length && ka.every((k, i) => k === kb[i]);
}

/** Whether the certificate's subject is the published DN; false (never a throw) when the DN text is malformed. */
export function dnMatchesCertificate(publishedDn: string, cert: CertificateLike): boolean {
  let published: DnAttribute[];
  try {
    published = parseDn(publishedDn);
  } catch (err) {
    if (err instanceof DnSyntaxError) return false;
    throw err;
  }
  return sameDn(published, certificateSubject(cert));
}
