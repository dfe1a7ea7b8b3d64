/** Certificates for the trust-space tests, made with the openssl CLI (asynchronously): a CA and leaves with chosen subjects. */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
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
