/**
 * Revocation by CRL (RFC 5280 §5, §6.3): CRLs from files and http(s) URLs (configured, and the distribution
 * points of certificates whose path already verified, so an untrusted certificate cannot make us fetch an
 * address of its choosing), cached and reloaded when a file changes, when the refresh interval has passed
 * or when a CRL's nextUpdate is past. A CRL is used only if its issuer's key verifies its signature, the
 * issuer may sign CRLs, and it is current (thisUpdate ≤ now ≤ nextUpdate).
 */
import { readFile, stat } from 'node:fs/promises';
import { parseSignatureAlgorithm, verifySignature } from '../cms/algorithms.js';
import { type Certificate, KEY_USAGE, normaliseSerial, type NameAttribute, parseNameDer, sameName } from '../cms/certificate.js';
import { Asn1, DerError, TAG } from '../cms/der.js';
import { OIDS } from '../cms/oids.js';
import type { RevocationChecker, RevocationStatus } from './trust.js';

const DELTA_CRL_INDICATOR = '2.5.29.27';
/** Clock skew tolerated on thisUpdate. */
const SKEW_MS = 5 * 60_000;

export interface ParsedCrl {
  der: Buffer;
  tbs: Buffer;
  signatureAlgorithm: Asn1;
  signature: Buffer;
  issuerDer: Buffer;
  issuerAttributes: NameAttribute[];
  thisUpdate: Date;
  nextUpdate: Date | null;
  authorityKeyId: Buffer | null;
  /** Normalised hex serial → revocation. */
  revoked: Map<string, { date: Date; reason: number | null }>;
  /** Why the CRL cannot be used as a complete CRL for its issuer (delta CRL, indirect, partial reasons), or null. */
  unusable: string | null;
  onlyUserCerts: boolean;
  onlyCaCerts: boolean;
}

function extensions(node: Asn1 | undefined): { oid: string; critical: boolean; value: Asn1 }[] {
  if (!node) return [];
  const [exts] = node.children();
  return (exts?.items('Extensions') ?? []).map((ext) => {
    const parts = ext.items('Extension');
    const oid = parts[0]?.oid();
    const v = parts[parts.length - 1];
    if (!oid || !v || parts.length < 2 || parts.length > 3) throw new DerError('bad Extension');
    return { oid, critical: parts.length === 3 && parts[1]!.boolean(), value: Asn1.parse(v.octets()) };
  });
}

/** Parses one DER CRL; throws DerError. */
export function parseCrl(der: Buffer): ParsedCrl {
  const [tbsNode, sigAlg, sigValue, ...rest] = Asn1.parse(der).items('CertificateList');
  if (!tbsNode || !sigAlg || !sigValue || rest.length) throw new DerError('CertificateList must have three fields');
  const fields = tbsNode.items('TBSCertList');
  let i = 0;
  if (fields[0]?.isUniversal(TAG.integer)) i++;
  i++; // signature algorithm (the outer one is the one used)
  const issuer = fields[i++];
  const thisUpdate = fields[i++];
  if (!issuer || !thisUpdate) throw new DerError('TBSCertList is incomplete');
  let nextUpdate: Date | null = null;
  const maybeNext = fields[i];
  if (maybeNext && (maybeNext.isUniversal(TAG.utcTime) || maybeNext.isUniversal(TAG.generalizedTime))) {
    nextUpdate = maybeNext.time();
    i++;
  }
  const revoked = new Map<string, { date: Date; reason: number | null }>();
  if (fields[i]?.isUniversal(TAG.sequence)) {
    for (const entry of fields[i++]!.children()) {
      const [serial, date, exts, ...more] = entry.items('revoked certificate');
      if (!serial || !date || more.length) throw new DerError('bad CRL entry');
      let reason: number | null = null;
      for (const ext of exts ? exts.items('crlEntryExtensions') : []) {
        const [oid, ...restParts] = ext.items('Extension');
        const v = restParts[restParts.length - 1];
        if (oid?.oid() === OIDS.crlReason && v) {
          const e = Asn1.parse(v.octets());
          if (e.cls === 0 && e.tag === 10 && e.content.length === 1) reason = e.content[0]!;
        }
      }
      revoked.set(normaliseSerial(serial.integerBytes()), { date: date.time(), reason });
    }
  }
  let crlExts: Asn1 | undefined;
  if (fields[i]?.isContext(0)) crlExts = fields[i++];
  if (i !== fields.length) throw new DerError('unexpected field in TBSCertList');
  const bits = sigValue.bitString();
  let authorityKeyId: Buffer | null = null;
  let unusable: string | null = null;
  let onlyUserCerts = false;
  let onlyCaCerts = false;
  for (const ext of extensions(crlExts)) {
    if (ext.oid === OIDS.authorityKeyIdentifier) {
      for (const n of ext.value.items('AuthorityKeyIdentifier')) if (n.isContext(0)) authorityKeyId = n.content;
    } else if (ext.oid === DELTA_CRL_INDICATOR) unusable = 'delta CRL';
    else if (ext.oid === OIDS.issuingDistributionPoint) {
      for (const f of ext.value.items('IssuingDistributionPoint')) {
        const flag = !f.constructed && f.content.length === 1 && f.content[0] !== 0;
        if (f.isContext(1)) onlyUserCerts = flag;
        else if (f.isContext(2)) onlyCaCerts = flag;
        else if (f.isContext(3)) unusable = 'CRL limited to some revocation reasons';
        else if (f.isContext(4) && flag) unusable = 'indirect CRL';
        else if (f.isContext(5) && flag) unusable = 'attribute-certificate CRL';
      }
    } else if (ext.critical && ext.oid !== OIDS.crlNumber) unusable = `unsupported critical CRL extension ${ext.oid}`;
  }
  return {
    der,
    tbs: tbsNode.raw,
    signatureAlgorithm: sigAlg,
    signature: bits.bytes,
    issuerDer: issuer.expect(TAG.sequence, 'issuer').raw,
    issuerAttributes: parseNameDer(issuer.raw),
    thisUpdate: thisUpdate.time(),
    nextUpdate,
    authorityKeyId,
    revoked,
    unusable,
    onlyUserCerts,
    onlyCaCerts,
  };
}

/** Every CRL of a PEM text (X509 CRL blocks) or the one of a DER input. */
export function parseCrls(data: Buffer): ParsedCrl[] {
  const head = data.subarray(0, 64).toString('latin1');
  if (!head.includes('-----BEGIN')) return [parseCrl(data)];
  const text = data.toString('latin1');
  return [...text.matchAll(/-----BEGIN (?:X509 )?CRL-----([A-Za-z0-9+/=\s]+?)-----END (?:X509 )?CRL-----/g)].map((m) =>
    parseCrl(Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64')),
  );
}

export interface CrlProviderOptions {
  /** CRL files (PEM with one or more CRLs, or DER). */
  files?: readonly string[];
  /** CRL URLs fetched over http(s). */
  urls?: readonly string[];
  /** Also fetch the http(s) CRL distribution points of certificates being checked (default true). */
  distributionPoints?: boolean;
  /** Reload a source at least this often even before nextUpdate (default 1 hour). */
  refreshMs?: number;
  /** Do not retry a failed source more often than this (default 60 s). */
  retryMs?: number;
  /** Per-download timeout (default 10 s) and size limit (default 32 MiB). */
  timeoutMs?: number;
  maxBytes?: number;
  /** The fetch implementation (default: Node's global fetch). */
  fetch?: typeof fetch;
}

interface Source {
  crls: ParsedCrl[];
  loaded: boolean;
  loadedAt: number;
  mtimeMs: number;
  error: string | null;
  lastAttempt: number;
  inflight: Promise<void> | null;
}

export class CrlProvider implements RevocationChecker {
  private readonly sources = new Map<string, Source>();
  private readonly verified = new WeakMap<ParsedCrl, Map<string, boolean>>();
  /** Downloads and file reads done, by source: for monitoring and tests. */
  readonly loads = new Map<string, number>();

  constructor(private readonly options: CrlProviderOptions = {}) {}

  private sourceIds(cert: Certificate): string[] {
    const ids = [...(this.options.files ?? []), ...(this.options.urls ?? [])];
    if (this.options.distributionPoints ?? true) ids.push(...cert.crlUrls);
    return [...new Set(ids)];
  }

  private async load(id: string, src: Source, nowMs: number): Promise<void> {
    this.loads.set(id, (this.loads.get(id) ?? 0) + 1);
    try {
      let data: Buffer;
      if (/^https?:\/\//i.test(id)) data = await this.download(id);
      else {
        const st = await stat(id);
        data = await readFile(id);
        src.mtimeMs = st.mtimeMs;
      }
      src.crls = parseCrls(data);
      src.loaded = true;
      src.loadedAt = nowMs;
      src.error = null;
    } catch (err) {
      // Keep the CRLs loaded before: they stay usable until their own nextUpdate.
      src.error = err instanceof Error ? err.message : String(err);
    }
  }

  private async download(url: string): Promise<Buffer> {
    const fetchImpl = this.options.fetch ?? fetch;
    const max = this.options.maxBytes ?? 32 * 1024 * 1024;
    const res = await fetchImpl(url, { signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000), redirect: 'follow' });
    if (!res.ok) throw new Error(`HTTP ${res.status} from ${url}`);
    if (Number(res.headers.get('content-length') ?? 0) > max) throw new Error(`CRL at ${url} is larger than ${max} bytes`);
    const chunks: Buffer[] = [];
    let size = 0;
    const reader = res.body?.getReader();
    if (!reader) return Buffer.alloc(0);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > max) {
        await reader.cancel();
        throw new Error(`CRL at ${url} is larger than ${max} bytes`);
      }
      chunks.push(Buffer.from(value));
    }
    return Buffer.concat(chunks);
  }

  private async fresh(id: string, now: Date): Promise<Source> {
    let src = this.sources.get(id);
    if (!src) {
      src = { crls: [], loaded: false, loadedAt: 0, mtimeMs: 0, error: null, lastAttempt: -Infinity, inflight: null };
      this.sources.set(id, src);
    }
    if (src.inflight) {
      await src.inflight;
      return src;
    }
    const nowMs = now.getTime();
    const mayRetry = nowMs - src.lastAttempt >= (this.options.retryMs ?? 60_000);
    let due =
      mayRetry &&
      (!src.loaded ||
        nowMs - src.loadedAt >= (this.options.refreshMs ?? 3_600_000) ||
        src.crls.some((c) => c.nextUpdate !== null && c.nextUpdate.getTime() < nowMs));
    if (!due && src.loaded && !/^https?:\/\//i.test(id)) {
      try {
        due = (await stat(id)).mtimeMs !== src.mtimeMs;
      } catch {
        due = mayRetry;
      }
    }
    if (due) {
      const s = src;
      s.lastAttempt = nowMs;
      s.inflight = this.load(id, s, nowMs).finally(() => (s.inflight = null));
      await s.inflight;
    }
    return src;
  }

  /** Forgets every cached CRL: the next check reloads its sources. */
  clear(): void {
    this.sources.clear();
  }

  private signedBy(crl: ParsedCrl, issuer: Certificate): boolean {
    let byIssuer = this.verified.get(crl);
    if (!byIssuer) this.verified.set(crl, (byIssuer = new Map()));
    let ok = byIssuer.get(issuer.fingerprint256);
    if (ok === undefined) {
      try {
        ok = verifySignature(parseSignatureAlgorithm(crl.signatureAlgorithm), issuer.publicKey, crl.tbs, crl.signature);
      } catch {
        ok = false;
      }
      byIssuer.set(issuer.fingerprint256, ok);
    }
    return ok;
  }

  async check(cert: Certificate, issuer: Certificate, now: Date): Promise<RevocationStatus> {
    await this.prepare(cert, now);
    return this.checkLoaded(cert, issuer, now);
  }

  /**
   * Loads or refreshes, as `check` would, the CRL sources for `cert` (the configured files and URLs, and the
   * certificate's distribution points); with `cert` null, the configured ones only.
   */
  async prepare(cert: Certificate | null, now: Date): Promise<void> {
    const ids = cert ? this.sourceIds(cert) : [...new Set([...(this.options.files ?? []), ...(this.options.urls ?? [])])];
    await Promise.all(ids.map((id) => this.fresh(id, now)));
  }

  /**
   * `check` on the CRLs already loaded, without waiting for any source (for a synchronous callback such as a TLS
   * peer's identity check: `prepare` beforehand). A source never loaded counts as one that could not be read.
   */
  checkLoaded(cert: Certificate, issuer: Certificate, now: Date): RevocationStatus {
    const problems: string[] = [];
    const usable: ParsedCrl[] = [];
    for (const id of this.sourceIds(cert)) {
      const src = this.sources.get(id);
      if (!src?.loaded) {
        problems.push(`${id}: ${src?.error ?? 'not loaded yet'}`);
        continue;
      }
      if (src.error) problems.push(`${id}: ${src.error}`);
      for (const crl of src.crls) {
        if (!sameName(crl.issuerDer, crl.issuerAttributes, cert.issuerDer, cert.issuerAttributes)) continue;
        if (crl.authorityKeyId && issuer.subjectKeyId && !crl.authorityKeyId.equals(issuer.subjectKeyId)) continue;
        const isCa = cert.basicConstraints?.ca ?? false;
        if ((crl.onlyCaCerts && !isCa) || (crl.onlyUserCerts && isCa)) continue;
        if (crl.unusable) {
          problems.push(`${id}: ${crl.unusable}`);
          continue;
        }
        if (!this.signedBy(crl, issuer)) {
          problems.push(`${id}: CRL signature does not verify with ${issuer.subject}`);
          continue;
        }
        if (issuer.keyUsage !== null && (issuer.keyUsage & KEY_USAGE.cRLSign) === 0) {
          problems.push(`${id}: ${issuer.subject} may not sign CRLs`);
          continue;
        }
        if (crl.thisUpdate.getTime() > now.getTime() + SKEW_MS) {
          problems.push(`${id}: CRL issued in the future (${crl.thisUpdate.toISOString()})`);
          continue;
        }
        if (crl.nextUpdate && crl.nextUpdate.getTime() < now.getTime()) {
          problems.push(`${id}: CRL expired at its nextUpdate ${crl.nextUpdate.toISOString()}`);
          continue;
        }
        usable.push(crl);
      }
    }
    for (const crl of usable) {
      const entry = crl.revoked.get(cert.serialNumber);
      if (entry) return { status: 'revoked', revokedAt: entry.date, reason: entry.reason };
    }
    if (usable.length > 0) return { status: 'good' };
    return { status: 'unknown', detail: problems.length ? problems.join('; ') : `no CRL for issuer ${cert.issuer}` };
  }
}
