import type { TLSSocket } from 'node:tls';
import { Certificate, KEY_USAGE } from '../crypto/cms/certificate.js';
import { DerError } from '../crypto/cms/der.js';
import { SmimeError, type SmimeFailureCode } from '../crypto/cms/failure.js';
import { type RevocationChecker, validateCertificate } from '../crypto/smime/trust.js';
import { Refusal, type RefusalCode } from '../pipeline/refusal.js';
import type { PeerCheck } from '../policy/trust-store.js';

/**
 * What the inbound relay asks of a peer operator's TLS client certificate: that it chains to the CA bundle of
 * the trust space, is within its validity period, is not revoked (CRLs) and may authenticate a TLS client; and
 * that a domain's trust entry names it (`DNCertificatOperateur`). Each failure is a precise `Refusal`.
 */

const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const EKU_ANY = '2.5.29.37.0';
const MAX_CHAIN = 8;

/** The certificates the client presented in the TLS handshake, leaf first (empty when it sent none). */
export function presentedChain(socket: TLSSocket): Certificate[] {
  const chain: Certificate[] = [];
  let cert = socket.getPeerCertificate(true) as (ReturnType<TLSSocket['getPeerCertificate']> & { issuerCertificate?: unknown }) | null;
  const seen = new Set<string>();
  while (cert && Buffer.isBuffer(cert.raw) && cert.raw.length > 0 && chain.length < MAX_CHAIN && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    try {
      chain.push(Certificate.fromDer(cert.raw));
    } catch {
      // Unreadable: left out of the chain; an unreadable leaf makes the chain empty at the check.
      if (chain.length === 0) return [];
    }
    cert = (cert.issuerCertificate ?? null) as typeof cert;
  }
  return chain;
}

const CERTIFICATE_REFUSALS: Partial<Record<SmimeFailureCode, RefusalCode>> = {
  'cert-expired': 'relay-certificate-expired',
  'cert-not-yet-valid': 'relay-certificate-not-yet-valid',
  'cert-revoked': 'relay-certificate-revoked',
  'revocation-unknown': 'relay-revocation-unknown',
};

export interface PeerTrust {
  /** The CA certificates of the trust space (the bundle stored with the active list). */
  anchors(): Promise<Certificate[]>;
  revocation: RevocationChecker | null;
  revocationMode: 'require' | 'best-effort';
  now?: () => Date;
}

/** TLS client authentication: extKeyUsage clientAuth (or absent, or any), keyUsage digitalSignature (or absent). */
function checkTlsClientUse(cert: Certificate): void {
  const eku = cert.extKeyUsage;
  if (eku !== null && !eku.includes(EKU_CLIENT_AUTH) && !eku.includes(EKU_ANY)) {
    throw new Refusal('relay-untrusted-certificate', `${cert.subject} is not for TLS client authentication (extKeyUsage)`);
  }
  if (cert.keyUsage !== null && (cert.keyUsage & KEY_USAGE.digitalSignature) === 0) {
    throw new Refusal('relay-untrusted-certificate', `${cert.subject} may not sign (keyUsage lacks digitalSignature)`);
  }
}

/**
 * Validates the presented chain (leaf first; the others only as possible intermediates) against the trust
 * space's CAs. Returns the leaf; throws a `Refusal`.
 */
export async function checkPeerCertificate(chain: readonly Certificate[], trust: PeerTrust): Promise<Certificate> {
  const [leaf, ...others] = chain;
  if (!leaf) throw new Refusal('relay-certificate-required');
  const anchors = await trust.anchors();
  if (anchors.length === 0) throw new Refusal('relay-no-trust-list', 'no CA bundle is stored with the trust list');
  try {
    await validateCertificate(leaf, 'sign', 'signer', { anchors, revocation: trust.revocation, revocationMode: trust.revocationMode, ...(trust.now ? { now: trust.now } : {}) }, others);
  } catch (err) {
    if (err instanceof DerError) throw new Refusal('relay-untrusted-certificate', `unreadable certificate: ${err.message}`);
    if (!(err instanceof SmimeError)) throw err;
    // The S/MIME purposes (emailProtection) do not apply here: 'key-usage' is raised only once a whole path
    // verified (dates, CA constraints, revocation), so the path is good and the TLS purpose is checked below.
    if (err.code !== 'key-usage') throw new Refusal(CERTIFICATE_REFUSALS[err.code] ?? 'relay-untrusted-certificate', err.message);
  }
  checkTlsClientUse(leaf);
  return leaf;
}

/** The trust space's answer about a domain and the peer's certificate, as a `Refusal` when it is no. */
export function peerCheckRefusal(check: PeerCheck, domain: string, what: string): Refusal | null {
  if (check.ok) return null;
  switch (check.reason) {
    case 'no-trust-list':
      return new Refusal('relay-no-trust-list', 'no trust list imported');
    case 'domain-not-in-trust-space':
      return new Refusal('relay-unknown-domain', `${what} domain ${domain}`);
    case 'dn-mismatch':
      return new Refusal('relay-dn-mismatch', `${what} domain ${domain}: presented ${check.presented ?? '?'}, listed ${check.expected.join(' | ')}`);
  }
}
