/**
 * Trust in a certificate (RFC 5280 §6, the parts S/MIME needs): a path from the certificate through
 * intermediates (from the message or configured) to a configured trust anchor, checked for validity dates
 * (injectable clock), key strength, signature algorithms, CA constraints, unknown critical extensions and
 * revocation; then the certificate's purpose (keyUsage / extKeyUsage).
 */
import { type AlgorithmPolicy, checkDigest, checkKeyStrength, parseSignatureAlgorithm, resolvePolicy, verifySignature } from '../cms/algorithms.js';
import { type Certificate, KEY_USAGE, sameName } from '../cms/certificate.js';
import { DerError } from '../cms/der.js';
import { SmimeError, type SmimeParty } from '../cms/failure.js';
import { OIDS } from '../cms/oids.js';

export type RevocationStatus =
  | { status: 'good' }
  | { status: 'revoked'; revokedAt: Date; reason: number | null }
  | { status: 'unknown'; detail: string };

/** Anything that answers whether `cert`, issued by `issuer`, is revoked at `now` (the CRL provider does). */
export interface RevocationChecker {
  check(cert: Certificate, issuer: Certificate, now: Date): Promise<RevocationStatus>;
}

export interface TrustOptions {
  /** Trust anchors: roots, or any certificate trusted as is (a Direct anchor may be an intermediate or a leaf). */
  anchors: readonly Certificate[];
  /** Intermediates known in advance (in addition to those a message carries). */
  intermediates?: readonly Certificate[];
  revocation?: RevocationChecker | null;
  /** 'require' (default when a checker is given): no valid CRL is a refusal; 'best-effort': only a listed certificate is refused. */
  revocationMode?: 'require' | 'best-effort';
  /** The clock, for validity and CRL freshness (tests inject one). */
  now?: () => Date;
  policy?: Partial<AlgorithmPolicy>;
}

export type Purpose = 'sign' | 'encrypt';

const MAX_PATH = 8;
const MAX_PATHS_TRIED = 16;
/** Signature checks allowed while building paths for one certificate. */
const MAX_ISSUER_CHECKS = 64;

/** Throws 'key-usage' when the certificate may not be used for this purpose. */
export function checkPurpose(cert: Certificate, purpose: Purpose, party: SmimeParty): void {
  const ku = cert.keyUsage;
  if (ku !== null) {
    const needed = purpose === 'sign' ? KEY_USAGE.digitalSignature | KEY_USAGE.nonRepudiation : KEY_USAGE.keyEncipherment;
    if ((ku & needed) === 0) {
      const what = purpose === 'sign' ? 'digitalSignature or nonRepudiation' : 'keyEncipherment';
      throw new SmimeError('key-usage', `the certificate's keyUsage lacks ${what}`, party, cert.ref);
    }
  }
  const eku = cert.extKeyUsage;
  if (eku !== null && !eku.includes(OIDS.ekuEmailProtection) && !eku.includes(OIDS.ekuAny)) {
    throw new SmimeError('key-usage', 'the certificate is not for e-mail protection (extKeyUsage)', party, cert.ref);
  }
}

function signedBy(cert: Certificate, issuer: Certificate): boolean {
  try {
    return verifySignature(parseSignatureAlgorithm(cert.signatureAlgorithm), issuer.publicKey, cert.tbs, cert.signatureValue);
  } catch {
    return false;
  }
}

function couldIssue(issuer: Certificate, cert: Certificate): boolean {
  if (!sameName(issuer.subjectDer, issuer.subjectAttributes, cert.issuerDer, cert.issuerAttributes)) return false;
  if (cert.authorityKeyId && issuer.subjectKeyId && !cert.authorityKeyId.equals(issuer.subjectKeyId)) return false;
  return true;
}

/**
 * Candidate paths leaf → anchor, anchors tried first, each certificate's signature checked by its issuer.
 * The work is bounded: certificates sharing a name and a key could otherwise form a graph with an
 * exponential number of paths.
 */
function* candidatePaths(leaf: Certificate, anchors: readonly Certificate[], pool: readonly Certificate[]): Generator<Certificate[]> {
  const isAnchor = (c: Certificate) => anchors.some((a) => a.equals(c));
  const verified = new Map<string, boolean>();
  let budget = MAX_ISSUER_CHECKS;
  const issues = (issuer: Certificate, cert: Certificate): boolean => {
    const key = `${issuer.fingerprint256}>${cert.fingerprint256}`;
    let ok = verified.get(key);
    if (ok === undefined) {
      budget--;
      verified.set(key, (ok = signedBy(cert, issuer)));
    }
    return ok;
  };
  const walk = function* (path: Certificate[]): Generator<Certificate[]> {
    const last = path[path.length - 1]!;
    if (isAnchor(last)) {
      yield path;
      return;
    }
    if (path.length >= MAX_PATH) return;
    for (const candidate of [...anchors, ...pool]) {
      if (budget <= 0) return;
      if (path.some((c) => c.equals(candidate)) || !couldIssue(candidate, last) || !issues(candidate, last)) continue;
      yield* walk([...path, candidate]);
    }
  };
  yield* walk([leaf]);
}

function when(d: Date): string {
  return d.toISOString();
}

function role(i: number, length: number): string {
  return i === 0 ? 'certificate' : i === length - 1 ? 'trust anchor' : 'intermediate CA certificate';
}

async function checkPath(path: Certificate[], purposeParty: SmimeParty, trust: TrustOptions, policy: AlgorithmPolicy, now: Date): Promise<void> {
  const n = path.length;
  for (let i = 0; i < n; i++) {
    const c = path[i]!;
    if (now < c.notBefore) throw new SmimeError('cert-not-yet-valid', `${role(i, n)} ${c.subject} is valid from ${when(c.notBefore)}`, purposeParty, c.ref);
    if (now > c.notAfter) throw new SmimeError('cert-expired', `${role(i, n)} ${c.subject} expired ${when(c.notAfter)}`, purposeParty, c.ref);
  }
  for (const c of path) checkKeyStrength(c.publicKey, policy, purposeParty, c.ref);
  for (let i = 0; i < n - 1; i++) {
    const c = path[i]!;
    checkDigest(parseSignatureAlgorithm(c.signatureAlgorithm).hash, policy, purposeParty, `the signature of ${c.subject}`, c.ref);
    if (c.unknownCriticalExtensions.length) {
      throw new SmimeError('chain-untrusted', `${c.subject} has unsupported critical extensions ${c.unknownCriticalExtensions.join(', ')}`, purposeParty, c.ref);
    }
  }
  for (let i = 1; i < n; i++) {
    const ca = path[i]!;
    const anchor = i === n - 1;
    // A version 1 root has no extensions; it is acceptable only as a configured anchor.
    if (!(anchor && ca.version === 0) && !ca.basicConstraints?.ca) {
      throw new SmimeError('chain-untrusted', `${ca.subject} is not a CA certificate`, purposeParty, ca.ref);
    }
    if (ca.keyUsage !== null && (ca.keyUsage & KEY_USAGE.keyCertSign) === 0) {
      throw new SmimeError('chain-untrusted', `${ca.subject} may not sign certificates (keyUsage)`, purposeParty, ca.ref);
    }
    const below = path.slice(1, i).filter((c) => !c.isSelfIssued).length;
    const max = ca.basicConstraints?.pathLength;
    if (max !== null && max !== undefined && below > max) {
      throw new SmimeError('chain-untrusted', `path length constraint of ${ca.subject} exceeded`, purposeParty, ca.ref);
    }
  }
  const checker = trust.revocation;
  if (!checker) return;
  const mode = trust.revocationMode ?? 'require';
  for (let i = 0; i < n - 1; i++) {
    const c = path[i]!;
    const status = await checker.check(c, path[i + 1]!, now);
    if (status.status === 'revoked') {
      throw new SmimeError('cert-revoked', `${role(i, n)} ${c.subject} was revoked ${when(status.revokedAt)}`, purposeParty, c.ref);
    }
    if (status.status === 'unknown' && mode === 'require') {
      throw new SmimeError('revocation-unknown', `revocation status of ${c.subject} unknown: ${status.detail}`, purposeParty, c.ref);
    }
  }
}

export interface ValidatedPath {
  /** Leaf first, anchor last. */
  path: Certificate[];
}

/**
 * Validates `leaf` for `purpose`: a trusted path (with `untrusted` certificates as possible intermediates),
 * then keyUsage/extKeyUsage. Throws SmimeError with the precise cause; among several candidate paths the first
 * valid one wins, otherwise the first complete path's error is reported.
 */
export async function validateCertificate(
  leaf: Certificate,
  purpose: Purpose,
  party: SmimeParty,
  trust: TrustOptions,
  untrusted: readonly Certificate[] = [],
): Promise<ValidatedPath> {
  const policy = resolvePolicy(trust.policy);
  const now = (trust.now ?? (() => new Date()))();
  const pool = [...(trust.intermediates ?? []), ...untrusted].filter((c, i, all) => all.findIndex((o) => o.equals(c)) === i && !c.equals(leaf));
  let firstError: unknown = null;
  let tried = 0;
  try {
    for (const path of candidatePaths(leaf, trust.anchors, pool)) {
      try {
        await checkPath(path, party, trust, policy, now);
        checkPurpose(leaf, purpose, party);
        return { path };
      } catch (err) {
        if (!(err instanceof SmimeError)) throw err;
        firstError ??= err;
      }
      if (++tried >= MAX_PATHS_TRIED) break;
    }
  } catch (err) {
    if (err instanceof DerError) throw new SmimeError('malformed', `certificate: ${err.message}`, party, leaf.ref);
    throw err;
  }
  if (firstError) throw firstError;
  throw new SmimeError('chain-untrusted', `no path from ${leaf.subject} (issued by ${leaf.issuer}) to a trust anchor`, party, leaf.ref);
}
