import { Certificate } from '../crypto/cms/certificate.js';
import { SmimeError } from '../crypto/cms/failure.js';
import type { TrustDomainRow, TrustListRow, TrustStore } from '../store/trust-types.js';
import { certificateSubjectText, dnMatchesCertificate, type CertificateLike } from './dn.js';
import { parseTrustList, TrustListError, type SkippedDomain } from './trust-list.js';

/**
 * The trust space as the rest of the server uses it: importing a list (parse, validate, then replace the
 * active list in one unit of work, so a bad file never costs the last good list), the CA bundle stored with
 * it, and the question the relay asks of a peer: is this domain in the trust space, and is this certificate
 * the one its entry names?
 */

export { TrustListError } from './trust-list.js';

/** A CA bundle that cannot be used: nothing is imported. */
export class CaBundleError extends TrustListError {}

export interface CaBundle {
  /** The certificates, normalised to PEM (one block each, in the order given). */
  pem: string;
  certificates: Certificate[];
  /** Certificates that are usable but worth a look (expired, not yet valid). */
  warnings: string[];
}

/**
 * Checks a PEM bundle of CA certificates: at least one, each one a well-formed X.509 certificate marked as a
 * CA (basicConstraints cA). Expired ones are kept (with a warning): path validation decides per message.
 */
export function validateCaBundle(pem: string | Buffer, now = new Date()): CaBundle {
  const text = typeof pem === 'string' ? pem : pem.toString('latin1');
  let certificates: Certificate[];
  try {
    certificates = Certificate.parseAll(text);
  } catch (err) {
    if (err instanceof SmimeError) throw new CaBundleError(`CA bundle: ${err.message}`);
    throw err;
  }
  if (!text.includes('-----BEGIN')) throw new CaBundleError('the CA bundle must be PEM (-----BEGIN CERTIFICATE-----)');
  if (certificates.length === 0) throw new CaBundleError('the CA bundle holds no certificate');
  const warnings: string[] = [];
  for (const c of certificates) {
    if (!c.basicConstraints?.ca) throw new CaBundleError(`${c.subject} is not a CA certificate (basicConstraints cA is not set)`);
    if (c.notAfter < now) warnings.push(`${c.subject} expired on ${c.notAfter.toISOString()}`);
    if (c.notBefore > now) warnings.push(`${c.subject} is valid only from ${c.notBefore.toISOString()}`);
  }
  return { pem: certificates.map((c) => c.pem).join(''), certificates, warnings };
}

export interface TrustImportOptions {
  /** Where the list came from, kept with it (a file name, or a URL without credentials). */
  source: string;
  /** The CA bundle (PEM) to store with the list; undefined keeps the active list's bundle. */
  caBundle?: string | Buffer | null;
  maxBytes?: number;
  /** Refuse the whole list when a larger share of its entries is unusable (default 0.1). */
  maxSkippedRatio?: number;
  now?: Date;
}

export interface TrustImportReport {
  list: TrustListRow;
  /** False when the same list (same bytes, same CA bundle) was in force already. */
  replaced: boolean;
  skipped: SkippedDomain[];
  caWarnings: string[];
}

/**
 * Parses and validates `xml` (and the CA bundle), then makes it the active list. Any problem throws
 * (`TrustListError`, `CaBundleError`) before anything is written: the last good list stays.
 */
export async function importTrustList(trust: TrustStore, xml: Buffer | string, options: TrustImportOptions): Promise<TrustImportReport> {
  const now = options.now ?? new Date();
  const parsed = parseTrustList(xml, options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes });
  const total = parsed.domains.length + parsed.skipped.length;
  const maxSkipped = options.maxSkippedRatio ?? 0.1;
  if (parsed.skipped.length / total > maxSkipped) {
    const first = parsed.skipped[0]!;
    throw new TrustListError(
      `${parsed.skipped.length} of ${total} Domaine entries are unusable (more than ${Math.round(maxSkipped * 100)}%); ` +
        `the first, entry ${first.index}${first.name ? ` (${first.name})` : ''}: ${first.reason}`,
    );
  }
  let caBundle: string | null | undefined = options.caBundle === null ? null : undefined;
  let caWarnings: string[] = [];
  if (options.caBundle !== undefined && options.caBundle !== null) {
    const bundle = validateCaBundle(options.caBundle, now);
    caBundle = bundle.pem;
    caWarnings = bundle.warnings;
  }
  const outcome = await trust.replaceList(
    { generatedAt: parsed.generatedAt, source: options.source, sha256: parsed.sha256, caBundle, domains: parsed.domains },
    now.getTime(),
  );
  return { list: outcome.list, replaced: outcome.replaced, skipped: parsed.skipped, caWarnings };
}

export type PeerCheck =
  | { ok: true; entry: TrustDomainRow }
  | {
      ok: false;
      reason: 'no-trust-list' | 'domain-not-in-trust-space' | 'dn-mismatch';
      /** The DNs the domain's entries name (for dn-mismatch). */
      expected: string[];
      /** The certificate's subject, RFC 4514 text. */
      presented: string | null;
    };

/**
 * The trust space over a `TrustStore`, for the relay (inbound: MAIL FROM domain and client certificate;
 * outbound: recipient domain and server certificate). Reads go to the database each time, so every process
 * sees an import at once; only the parsed CA bundle is cached, per list.
 */
export class TrustSpace {
  #anchors: { listId: number; certificates: Certificate[] } | null = null;

  constructor(private readonly trust: TrustStore) {}

  /** The entries of a domain (one per operator certificate), empty when it is not in the trust space. */
  lookup(domain: string): Promise<TrustDomainRow[]> {
    return this.trust.lookupDomain(domain);
  }

  /** Whether `domain` is in the trust space and `certificate`'s subject is the DN of one of its entries. */
  async checkPeer(domain: string, certificate: CertificateLike): Promise<PeerCheck> {
    const entries = await this.trust.lookupDomain(domain);
    if (entries.length === 0) {
      const active = await this.trust.activeList();
      return { ok: false, reason: active ? 'domain-not-in-trust-space' : 'no-trust-list', expected: [], presented: null };
    }
    const entry = entries.find((e) => dnMatchesCertificate(e.operatorDn, certificate));
    if (entry) return { ok: true, entry };
    return { ok: false, reason: 'dn-mismatch', expected: entries.map((e) => e.operatorDn), presented: certificateSubjectText(certificate) };
  }

  /** The CA certificates stored with the active list (empty when none was given), parsed once per list. */
  async anchors(): Promise<Certificate[]> {
    const active = await this.trust.activeList();
    if (!active?.caBundle) return [];
    if (this.#anchors?.listId !== active.id) this.#anchors = { listId: active.id, certificates: Certificate.parseAll(active.caBundle) };
    return this.#anchors.certificates;
  }
}
