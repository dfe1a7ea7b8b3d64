/**
 * A throw-away PKI for the S/MIME tests, in the shape of the dev PKI (root → persons intermediate →
 * practitioner certificates carrying '8' + RPPS), but with every knob a refusal fixture needs: key type and
 * size, validity, keyUsage, SAN, CRLs. Keys are generated once per test file and reused across certificates.
 */
import { type KeyObject, KeyObject as NodeKeyObject, webcrypto } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Certificate } from '../../../src/crypto/cms/certificate.js';
import { randomSerialHex, toPem, x509 } from '../../../src/crypto/x509-util.js';

type Pair = webcrypto.CryptoKeyPair;
export type KeyKind = 'rsa2048' | 'rsa1024' | 'rsa3072' | 'ec256';

const DAY = 86_400_000;
const KU = x509.KeyUsageFlags;

export interface Issued {
  cert: Certificate;
  key: KeyObject;
  pair: Pair;
  certPem: string;
  keyPem: string;
}

export async function generatePair(kind: KeyKind): Promise<Pair> {
  if (kind === 'ec256') return (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as Pair;
  const modulusLength = Number(kind.slice(3));
  return (await webcrypto.subtle.generateKey(
    { name: 'RSASSA-PKCS1-v1_5', modulusLength, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    true,
    ['sign', 'verify'],
  )) as Pair;
}

function alg(key: webcrypto.CryptoKey, hash: string) {
  return key.algorithm.name === 'ECDSA' ? { name: 'ECDSA', hash } : { name: 'RSASSA-PKCS1-v1_5', hash };
}

async function toIssued(cert: x509.X509Certificate, pair: Pair): Promise<Issued> {
  const key = NodeKeyObject.from(pair.privateKey);
  return {
    cert: Certificate.fromDer(Buffer.from(cert.rawData)),
    key,
    pair,
    certPem: cert.toString('pem') + '\n',
    keyPem: key.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}

export interface LeafOptions {
  pair: Pair;
  issuer: Issued;
  /** rfc822Name SAN; omitted when null. */
  email?: string | null;
  dns?: string;
  rpps?: string;
  cn?: string;
  keyUsage?: number;
  eku?: string[] | null;
  notBefore?: Date;
  notAfter?: Date;
  crlUrls?: string[];
  hash?: 'SHA-1' | 'SHA-256';
  /** Added as they are (e.g. an unknown critical extension). */
  extensions?: x509.Extension[];
  /** Issue a CA certificate (basicConstraints cA) instead of an end-entity one. */
  ca?: boolean;
}

export const USAGE = {
  /** An all-purpose test certificate: signs and receives encrypted mail. */
  both: KU.digitalSignature | KU.nonRepudiation | KU.keyEncipherment,
  sign: KU.digitalSignature | KU.nonRepudiation,
  encrypt: KU.keyEncipherment | KU.digitalSignature,
  authOnly: KU.digitalSignature,
};

export class TestPki {
  private constructor(
    readonly root: Issued,
    readonly intermediate: Issued,
  ) {}

  static async create(name = 'TEST', pairs?: { root: Pair; intermediate: Pair }): Promise<TestPki> {
    const rootPair = pairs?.root ?? (await generatePair('rsa2048'));
    const interPair = pairs?.intermediate ?? (await generatePair('rsa2048'));
    const root = await TestPki.ca(`${name} AC RACINE`, rootPair, null, 1);
    const intermediate = await TestPki.ca(`${name} AC PERSONNES`, interPair, root, 0);
    return new TestPki(root, intermediate);
  }

  static async ca(cn: string, pair: Pair, issuer: Issued | null, pathLen: number, validity?: { notBefore: Date; notAfter: Date }): Promise<Issued> {
    const subject = `C=FR, O=MSS TEST, CN=${cn}`;
    const ski = await x509.SubjectKeyIdentifierExtension.create(pair.publicKey);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerialHex(),
      subject,
      issuer: issuer ? new x509.X509Certificate(issuer.cert.der).subjectName : subject,
      notBefore: validity?.notBefore ?? new Date(Date.now() - DAY),
      notAfter: validity?.notAfter ?? new Date(Date.now() + 3650 * DAY),
      publicKey: pair.publicKey,
      signingKey: issuer ? issuer.pair.privateKey : pair.privateKey,
      signingAlgorithm: alg(issuer ? issuer.pair.privateKey : pair.privateKey, 'SHA-256'),
      extensions: [
        new x509.BasicConstraintsExtension(true, pathLen, true),
        new x509.KeyUsagesExtension(KU.keyCertSign | KU.cRLSign, true),
        ski,
        new x509.AuthorityKeyIdentifierExtension(issuer ? issuer.cert.subjectKeyId!.toString('hex') : ski.keyId),
      ],
    });
    return toIssued(cert, pair);
  }

  async leaf(o: LeafOptions): Promise<Issued> {
    const rpps = o.rpps ?? '10001234567';
    const cn = o.cn ?? `8${rpps}/DUPONT Jean`;
    const subject = new x509.Name([
      { '2.5.4.6': [{ printableString: 'FR' }] },
      { '2.5.4.10': [{ utf8String: 'MSS TEST' }] },
      { '2.5.4.5': [{ printableString: `8${rpps}` }] },
      { '2.5.4.3': [{ utf8String: cn }] },
    ]);
    const san: x509.JsonGeneralName[] = [];
    if (o.email !== null) san.push({ type: 'email', value: o.email ?? 'jean.dupont@hopital.test' });
    if (o.dns) san.push({ type: 'dns', value: o.dns });
    const issuerName = new x509.X509Certificate(o.issuer.cert.der).subjectName;
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(o.ca ?? false, undefined, true),
      new x509.KeyUsagesExtension(o.keyUsage ?? USAGE.both, true),
      ...(o.extensions ?? []),
      await x509.SubjectKeyIdentifierExtension.create(o.pair.publicKey),
      new x509.AuthorityKeyIdentifierExtension(o.issuer.cert.subjectKeyId!.toString('hex')),
    ];
    if (o.eku !== null) extensions.push(new x509.ExtendedKeyUsageExtension(o.eku ?? [x509.ExtendedKeyUsage.emailProtection], false));
    if (san.length) extensions.push(new x509.SubjectAlternativeNameExtension(san));
    if (o.crlUrls?.length) extensions.push(new x509.CRLDistributionPointsExtension(o.crlUrls));
    // WebCrypto binds the hash to an RSA key: re-import the issuer key for another hash.
    const signingKey =
      o.hash && o.hash !== 'SHA-256' && o.issuer.pair.privateKey.algorithm.name !== 'ECDSA'
        ? await webcrypto.subtle.importKey('pkcs8', o.issuer.key.export({ type: 'pkcs8', format: 'der' }), { name: 'RSASSA-PKCS1-v1_5', hash: o.hash }, false, ['sign'])
        : o.issuer.pair.privateKey;
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerialHex(),
      subject,
      issuer: issuerName,
      notBefore: o.notBefore ?? new Date(Date.now() - DAY),
      notAfter: o.notAfter ?? new Date(Date.now() + 365 * DAY),
      publicKey: o.pair.publicKey,
      signingKey,
      signingAlgorithm: alg(signingKey, o.hash ?? 'SHA-256'),
      extensions,
    });
    return toIssued(cert, o.pair);
  }

  /** A DER CRL of `issuer` listing `revoked`. */
  static async crl(issuer: Issued, revoked: Issued[], o: { thisUpdate?: Date; nextUpdate?: Date; signer?: Pair } = {}): Promise<Buffer> {
    const signingKey = (o.signer ?? issuer.pair).privateKey;
    const crl = await x509.X509CrlGenerator.create({
      issuer: new x509.X509Certificate(issuer.cert.der).subjectName,
      thisUpdate: o.thisUpdate ?? new Date(Date.now() - 60_000),
      nextUpdate: o.nextUpdate ?? new Date(Date.now() + 7 * DAY),
      signingKey,
      signingAlgorithm: alg(signingKey, 'SHA-256'),
      entries: revoked.map((r) => ({ serialNumber: r.cert.serialNumber, revocationDate: new Date(Date.now() - 30_000) })),
      extensions: [new x509.AuthorityKeyIdentifierExtension(issuer.cert.subjectKeyId!.toString('hex'))],
    });
    return Buffer.from(crl.rawData);
  }
}

/** Writes `<name>.pem` (certificate) and `<name>.key` (PKCS#8) for the openssl CLI; returns their paths. */
export function writeIssued(dir: string, name: string, issued: Issued): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.pem`);
  const key = path.join(dir, `${name}.key`);
  writeFileSync(cert, issued.certPem);
  writeFileSync(key, issued.keyPem, { mode: 0o600 });
  return { cert, key };
}

export function crlPem(der: Buffer): string {
  return toPem(der, 'X509 CRL');
}

export const DAY_MS = DAY;
