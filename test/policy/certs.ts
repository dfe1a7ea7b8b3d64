/** Certificates for the trust-space tests, made with the openssl CLI (asynchronously): a CA and leaves with chosen subjects. */
import { createPrivateKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { subtle, toPem, x509 } from '../../src/crypto/x509-util.js';
import { openssl } from '../helpers/openssl-certs.js';

export interface MadeCert {
  certFile: string;
  keyFile: string;
  pem: string;
  keyPem: string;
}

/** A self-signed CA (basicConstraints CA:TRUE) with the given subject (OpenSSL `/A=b/C=d` form, UTF-8). */
export async function makeCa(dir: string, name: string, subject: string): Promise<MadeCert> {
  const keyFile = path.join(dir, `${name}.key`);
  const certFile = path.join(dir, `${name}.pem`);
  await openssl(['req', '-x509', '-utf8', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-subj', subject, '-days', '30'], dir);
  return { certFile, keyFile, pem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') };
}

/** A TLS server leaf issued by `ca` (serverAuth and clientAuth, as an operator's certificate), CA:FALSE. */
export async function makeServerLeaf(dir: string, ca: MadeCert, name: string, subject: string, dnsNames: string[] = ['localhost']): Promise<MadeCert> {
  const keyFile = path.join(dir, `${name}.key`);
  const certFile = path.join(dir, `${name}.pem`);
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  writeFileSync(
    ext,
    [
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature, keyEncipherment',
      'extendedKeyUsage = serverAuth, clientAuth',
      `subjectAltName = ${[...dnsNames.map((d) => `DNS:${d}`), 'IP:127.0.0.1'].join(', ')}`,
      '',
    ].join('\n'),
  );
  await openssl(['req', '-new', '-utf8', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', csr, '-subj', subject], dir);
  await openssl(['x509', '-req', '-in', csr, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-set_serial', '0x1234', '-days', '30', '-extfile', ext, '-out', certFile], dir);
  return { certFile, keyFile, pem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') };
}

/** The serial number `makeServerLeaf` gives its certificates (lower-case hex). */
export const SERVER_LEAF_SERIAL = '1234';

/** Writes (or rewrites) `file` with a CRL of `ca` listing `serials` (lower-case hex), valid for a week. */
export async function writeCrl(ca: MadeCert, file: string, serials: readonly string[]): Promise<void> {
  const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  const der = createPrivateKey(ca.keyPem).export({ type: 'pkcs8', format: 'der' });
  const signingKey = await subtle.importKey('pkcs8', der, alg, false, ['sign']);
  const cert = new x509.X509Certificate(ca.pem);
  const crl = await x509.X509CrlGenerator.create({
    issuer: cert.subjectName,
    thisUpdate: new Date(Date.now() - 60_000),
    nextUpdate: new Date(Date.now() + 7 * 86_400_000),
    signingKey,
    signingAlgorithm: alg,
    entries: serials.map((serialNumber) => ({ serialNumber, revocationDate: new Date(Date.now() - 60_000) })),
  });
  writeFileSync(file, toPem(crl.rawData, 'X509 CRL'));
}
