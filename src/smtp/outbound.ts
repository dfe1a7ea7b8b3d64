import { resolveMx as dnsResolveMx } from 'node:dns/promises';
import type { DetailedPeerCertificate, PeerCertificate } from 'node:tls';
import nodemailer from 'nodemailer';
import { Certificate } from '../crypto/cms/certificate.js';
import type { CrlProvider } from '../crypto/smime/crl.js';
import { certificateSubjectText, dnMatchesCertificate } from '../policy/dn.js';
import type { QueueSealer } from '../queue/envelope.js';
import type { DeliveryAttempt, DeliveryOutcome, DeliveryReport, QueueTransport } from '../queue/worker.js';
import type { TrustDomainRow } from '../store/trust-types.js';
import type { FederationConfig } from './outbound-config.js';
import { IDEMPOTENCY_KEY_HEADER } from '../pipeline/relay.js';

/**
 * Hands queued messages to other operators over SMTP (the queue worker's transport, ADR 0008): route by the
 * static table or by MX, STARTTLS required, our server certificate presented as client certificate, the peer's
 * certificate verified against the trust space's CA bundle and its subject against the destination domain's
 * `DNCertificatOperateur` — a peer that fails either gets nothing, and the item waits for another attempt with
 * the reason. Connections are pooled per destination and host (nodemailer's pool), and at most
 * `maxPerDestination` deliveries to one domain run at once. Every message carries its item id in
 * `X-MSS-Idempotency-Key`, so a peer running this server drops a repeat after a crash.
 *
 * The peer's host name is not checked against its certificate: the operator's identity in the trust space is
 * the certificate's DN, which is checked instead.
 */

/** The relay of the receiving operator drops a second arrival of the same key (docs/decisions/0008). */
export const IDEMPOTENCY_HEADER = IDEMPOTENCY_KEY_HEADER;

export interface Hop {
  host: string;
  port: number;
}

export interface TransportTrust {
  lookup(domain: string): Promise<TrustDomainRow[]>;
  /** The CA certificates stored with the trust list. */
  anchors(): Promise<Certificate[]>;
}

export interface SmtpQueueTransportOptions {
  config: Pick<
    FederationConfig,
    'routes' | 'mxPort' | 'maxPerDestination' | 'maxMessagesPerConnection' | 'connectTimeoutSeconds' | 'greetingTimeoutSeconds' | 'socketTimeoutSeconds'
  >;
  /** Our name in EHLO. */
  hostname: string;
  /** Our server certificate (PEM chain) and key, presented as TLS client certificate. */
  client: { key: string; cert: string };
  trust: TransportTrust;
  sealer: Pick<QueueSealer, 'openEnvelope' | 'openMessage'>;
  /** DNS MX lookup (tests inject one). */
  resolveMx?: (domain: string) => Promise<{ exchange: string; priority: number }[]>;
  /**
   * Revocation of the peers' server certificates (the CRLs of the trust space's CAs, as for the inbound relay):
   * `require` refuses a certificate whose status cannot be established, `best-effort` only a listed one.
   * Without it, revocation is not checked.
   */
  revocation?: { crls: CrlProvider; mode: 'require' | 'best-effort'; now?: () => Date };
}

interface SmtpError extends Error {
  code?: string;
  response?: string;
  responseCode?: number;
  command?: string;
  recipient?: string;
  rejectedErrors?: SmtpError[];
}

interface Pool {
  transporter: ReturnType<typeof nodemailer.createTransport>;
  anchors: Certificate[];
  /** The destination's trust-space entries, refreshed before each send (read by `checkServerIdentity`). */
  entries: TrustDomainRow[];
  /** Why the last handshake refused the peer's identity. */
  identityFailure: string | null;
}

/** At most `max` holders at once; waiters leave when their signal aborts. */
class Limiter {
  #active = 0;
  readonly #waiting: (() => void)[] = [];
  constructor(private readonly max: number) {}

  async acquire(signal: AbortSignal): Promise<(() => void) | null> {
    if (this.#active >= this.max) {
      const granted = await new Promise<boolean>((resolve) => {
        const go = () => {
          signal.removeEventListener('abort', abort);
          resolve(true);
        };
        const abort = () => {
          this.#waiting.splice(this.#waiting.indexOf(go), 1);
          resolve(false);
        };
        this.#waiting.push(go);
        signal.addEventListener('abort', abort, { once: true });
      });
      if (!granted) return null;
    } else this.#active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next) next();
      else this.#active--;
    };
  }
}

function describe(err: SmtpError): string {
  return (err.response ?? err.message).replace(/[\r\n]+/g, ' ').trim();
}

export class SmtpQueueTransport implements QueueTransport {
  readonly #o: SmtpQueueTransportOptions;
  readonly #routes: Map<string, Hop>;
  readonly #limiters = new Map<string, Limiter>();
  readonly #pools = new Map<string, Pool>();

  constructor(options: SmtpQueueTransportOptions) {
    this.#o = options;
    this.#routes = new Map(
      Object.entries(options.config.routes).map(([domain, route]) => {
        const i = route.lastIndexOf(':');
        return [domain.toLowerCase(), { host: route.slice(0, i), port: Number(route.slice(i + 1)) }];
      }),
    );
  }

  /**
   * Where a domain's mail goes: its static route, else its MX hosts by preference, else the domain itself; none
   * when the domain publishes a null MX (RFC 7505: a single record whose exchange is the root, `.`).
   */
  async hops(domain: string): Promise<Hop[]> {
    const fixed = this.#routes.get(domain.toLowerCase());
    if (fixed) return [fixed];
    let records: { exchange: string; priority: number }[] = [];
    try {
      records = await (this.#o.resolveMx ?? dnsResolveMx)(domain);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENODATA' && code !== 'ENOTFOUND') throw err;
    }
    const port = this.#o.config.mxPort;
    if (records.length === 0) return [{ host: domain, port }];
    if (records.some((r) => r.exchange === '' || r.exchange === '.')) return [];
    return [...records].sort((a, b) => a.priority - b.priority).map((r) => ({ host: r.exchange, port }));
  }

  async deliver({ item, idempotencyKey, signal }: DeliveryAttempt): Promise<DeliveryOutcome> {
    const destination = item.destination;
    const entries = await this.#o.trust.lookup(destination);
    if (entries.length === 0) return { kind: 'retry', reason: `${destination} is not in the trust space (any more): nothing sent` };
    const anchors = await this.#o.trust.anchors();
    if (anchors.length === 0) {
      return { kind: 'retry', reason: 'the trust list has no CA bundle, so no peer certificate can be verified (mss trust import <xml> --ca <pem>)' };
    }
    await this.#o.revocation?.crls.prepare(null, this.#o.revocation.now?.() ?? new Date());
    const hops = await this.hops(destination);
    if (hops.length === 0) return { kind: 'failed', reason: `${destination} publishes a null MX (RFC 7505): it accepts no mail` };
    let limiter = this.#limiters.get(destination);
    if (!limiter) this.#limiters.set(destination, (limiter = new Limiter(this.#o.config.maxPerDestination)));
    const release = await limiter.acquire(signal);
    if (!release) return { kind: 'retry', reason: 'stopped before sending' };
    try {
      const envelope = this.#o.sealer.openEnvelope(item);
      const raw = Buffer.concat([Buffer.from(`${IDEMPOTENCY_HEADER}: ${idempotencyKey}\r\n`), this.#o.sealer.openMessage(item)]);
      let outcome: DeliveryOutcome = { kind: 'retry', reason: `no host for ${destination}` };
      for (const hop of hops) {
        outcome = await this.#send(destination, hop, anchors, entries, { from: envelope.mailFrom, to: envelope.recipients }, raw, signal);
        // Only a host that could not be reached (or proved to be the wrong one) sends us to the next.
        if (outcome.kind !== 'retry' || signal.aborted) break;
      }
      return outcome;
    } finally {
      release();
    }
  }

  async #send(
    destination: string,
    hop: Hop,
    anchors: Certificate[],
    entries: TrustDomainRow[],
    envelope: { from: string; to: string[] },
    raw: Buffer,
    signal: AbortSignal,
  ): Promise<DeliveryOutcome> {
    const key = `${destination}|${hop.host}:${hop.port}`;
    const pool = this.#pool(key, destination, hop, anchors);
    pool.entries = entries;
    const where = `${hop.host}:${hop.port}`;
    const abort = () => this.#drop(key);
    signal.addEventListener('abort', abort, { once: true });
    try {
      const info = await pool.transporter.sendMail({ envelope, raw });
      const rejected = ((info.rejectedErrors ?? []) as SmtpError[]).map((e) => ({
        recipient: e.recipient ?? '',
        response: describe(e),
        permanent: (e.responseCode ?? 0) >= 500,
      }));
      const report: DeliveryReport = { response: String(info.response ?? ''), remoteMta: hop.host, ...(rejected.length ? { rejected } : {}) };
      return { kind: 'delivered', report };
    } catch (caught) {
      const err = caught as SmtpError;
      if (err.code === 'EENVELOPE' && err.command === 'RCPT TO' && err.rejectedErrors?.length) {
        // Every recipient refused: failed when for good, a retry when any refusal is temporary.
        const rejected = err.rejectedErrors.map((e) => ({ recipient: e.recipient ?? '', response: describe(e), permanent: (e.responseCode ?? 0) >= 500 }));
        const reason = `${where}: ${rejected.map((r) => `<${r.recipient}> ${r.response}`).join('; ')}`;
        if (rejected.every((r) => r.permanent)) return { kind: 'failed', reason };
        if (rejected.every((r) => !r.permanent)) return { kind: 'retry', reason };
        return { kind: 'delivered', report: { remoteMta: hop.host, rejected } };
      }
      if (typeof err.responseCode === 'number') {
        return { kind: err.responseCode >= 500 ? 'failed' : 'retry', reason: `${where} answered ${describe(err)}` };
      }
      const identity = pool.identityFailure;
      pool.identityFailure = null;
      return { kind: 'retry', reason: identity ? `${where}: ${identity}` : `${where}: ${err.message.replace(/[\r\n]+/g, ' ')}` };
    } finally {
      signal.removeEventListener('abort', abort);
    }
  }

  #pool(key: string, destination: string, hop: Hop, anchors: Certificate[]): Pool {
    const existing = this.#pools.get(key);
    // A new trust list may bring a new CA bundle: connections verified under the old one are closed.
    if (existing && existing.anchors === anchors) return existing;
    if (existing) this.#drop(key);
    const { config, client, hostname } = this.#o;
    const pool: Pool = {
      anchors,
      entries: [],
      identityFailure: null,
      transporter: undefined as unknown as Pool['transporter'],
    };
    pool.transporter = nodemailer.createTransport({
      pool: true,
      host: hop.host,
      port: hop.port,
      secure: false,
      requireTLS: true,
      name: hostname,
      maxConnections: config.maxPerDestination,
      maxMessages: config.maxMessagesPerConnection,
      connectionTimeout: config.connectTimeoutSeconds * 1000,
      greetingTimeout: config.greetingTimeoutSeconds * 1000,
      socketTimeout: config.socketTimeoutSeconds * 1000,
      logger: false,
      tls: {
        key: client.key,
        cert: client.cert,
        ca: anchors.map((c) => c.pem),
        rejectUnauthorized: true,
        minVersion: 'TLSv1.2',
        checkServerIdentity: (_host: string, cert: PeerCertificate) => {
          const peer = { raw: cert.raw };
          if (!pool.entries.some((e) => dnMatchesCertificate(e.operatorDn, peer))) {
            pool.identityFailure =
              `the peer certificate's subject "${certificateSubjectText(peer)}" is not the DNCertificatOperateur of ${destination} ` +
              `in the trust space (${pool.entries.map((e) => e.operatorDn).join(' | ')}): nothing sent`;
            return new Error(pool.identityFailure);
          }
          pool.identityFailure = this.#revocationFailure(cert);
          return pool.identityFailure ? new Error(pool.identityFailure) : undefined;
        },
      },
    });
    this.#pools.set(key, pool);
    return pool;
  }

  /**
   * Why the peer's verified chain (leaf first, as OpenSSL built it up to one of the anchors) may not be used, as
   * far as revocation goes; null when it may. Runs inside the TLS handshake, so on the CRLs loaded beforehand
   * (`deliver` refreshes the configured ones); a distribution point seen for the first time is fetched for the
   * next attempt.
   */
  #revocationFailure(cert: PeerCertificate): string | null {
    const revocation = this.#o.revocation;
    if (!revocation) return null;
    const chain: Certificate[] = [];
    let at = cert as DetailedPeerCertificate | undefined;
    const seen = new Set<string>();
    try {
      while (at?.raw && !seen.has(at.fingerprint256) && chain.length < 8) {
        seen.add(at.fingerprint256);
        chain.push(Certificate.fromDer(at.raw));
        at = at.issuerCertificate;
      }
    } catch (err) {
      return `the peer's certificate chain cannot be read (${err instanceof Error ? err.message : String(err)}): nothing sent`;
    }
    const now = revocation.now?.() ?? new Date();
    for (let i = 0; i + 1 < chain.length; i++) {
      const [subject, issuer] = [chain[i]!, chain[i + 1]!];
      const status = revocation.crls.checkLoaded(subject, issuer, now);
      if (status.status === 'revoked') {
        return `the peer certificate "${subject.subject}" is revoked (since ${status.revokedAt.toISOString()}): nothing sent`;
      }
      if (status.status === 'unknown' && revocation.mode === 'require') {
        void revocation.crls.prepare(subject, now).catch(() => undefined);
        return `the revocation status of the peer certificate "${subject.subject}" cannot be established (${status.detail}): nothing sent`;
      }
    }
    return null;
  }

  #drop(key: string): void {
    const pool = this.#pools.get(key);
    if (!pool) return;
    this.#pools.delete(key);
    pool.transporter.close();
  }

  /** Closes every pooled connection. */
  async close(): Promise<void> {
    for (const key of [...this.#pools.keys()]) this.#drop(key);
  }
}
