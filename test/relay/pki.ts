/**
 * A small test CA made in-process with @peculiar/x509 (the dev PKI's library): TLS client certificates with
 * chosen subjects, validity periods and extended key usages (an expired one, one not yet valid, one for servers
 * only), and a CRL listing chosen serials — what a peer operator's PKI can get wrong.
 */
import { createPrivateKey, type webcrypto } from 'node:crypto';
import { randomSerialHex, subtle, toPem, x509 } from '../../src/crypto/x509-util.js';

const DAY = 86_400_000;
const ALG = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };

type Keys = webcrypto.CryptoKeyPair;

export interface TestAuthority {
  cert: x509.X509Certificate;
  keys: Keys;
  pem: string;
}

export interface TestLeaf {
  certPem: string;
  keyPem: string;
  serialNumber: string;
}

async function keyPair(): Promise<Keys> {
  return (await subtle.generateKey(ALG, true, ['sign', 'verify'])) as Keys;
}

async function pkcs8Pem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await subtle.exportKey('pkcs8', key));
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }) as string;
}

export async function makeAuthority(name: string): Promise<TestAuthority> {
  const keys = await keyPair();
  const ski = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialHex(),
    name: `C=FR, O=Test PKI, CN=${name}`,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 365 * DAY),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ski,
      new x509.AuthorityKeyIdentifierExtension(ski.keyId),
    ],
  });
  return { cert, keys, pem: cert.toString('pem') + '\n' };
}

export interface LeafOptions {
  /** RFC 4514 text as @peculiar/x509 reads it, e.g. `C=FR, O=Op, CN=mx.op.test`. */
  subject: string;
  notBefore?: Date;
  notAfter?: Date;
  /** Default serverAuth + clientAuth, as an operator's server certificate. */
  ekus?: string[];
}

export async function issueLeaf(ca: TestAuthority, o: LeafOptions): Promise<TestLeaf> {
  const keys = await keyPair();
  const serialNumber = randomSerialHex();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber,
    subject: o.subject,
    issuer: ca.cert.subjectName,
    notBefore: o.notBefore ?? new Date(Date.now() - DAY),
    notAfter: o.notAfter ?? new Date(Date.now() + 30 * DAY),
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension(o.ekus ?? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await pkcs8Pem(keys.privateKey), serialNumber };
}

/** A current CRL of `ca` listing `serials`. */
export async function makeCrl(ca: TestAuthority, serials: string[]): Promise<string> {
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.cert.subjectName,
    thisUpdate: new Date(Date.now() - 60_000),
    nextUpdate: new Date(Date.now() + 7 * DAY),
    signingKey: ca.keys.privateKey,
    signingAlgorithm: ALG,
    entries: serials.map((serialNumber) => ({ serialNumber, revocationDate: new Date(Date.now() - 60_000) })),
    extensions: [await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey)],
  });
  return toPem(crl.rawData, 'X509 CRL');
}
