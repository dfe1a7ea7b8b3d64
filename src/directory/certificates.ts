import { createHash, X509Certificate } from 'node:crypto';
import type { NewDirCertificate } from '../store/directory-types.js';

export class CertificateFileError extends Error {}

/** Reads one X.509 certificate (PEM or DER) as the directory stores it for `ownerId`. */
export function directoryCertificate(ownerId: string, bytes: Buffer): NewDirCertificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(bytes);
  } catch (err) {
    throw new CertificateFileError(`not an X.509 certificate (PEM or DER): ${(err as Error).message}`);
  }
  const der = cert.raw;
  const notBefore = Date.parse(cert.validFrom);
  const notAfter = Date.parse(cert.validTo);
  if (Number.isNaN(notBefore) || Number.isNaN(notAfter)) throw new CertificateFileError('unreadable validity dates');
  return {
    fingerprint: createHash('sha256').update(der).digest('hex'),
    ownerId,
    serial: cert.serialNumber,
    subject: cert.subject.replace(/\n/g, ', '),
    issuer: cert.issuer.replace(/\n/g, ', '),
    notBefore,
    notAfter,
    der,
  };
}
