import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Certificate } from '../crypto/cms/certificate.js';
import type { RevocationChecker } from '../crypto/smime/trust.js';
import type { Pipeline } from '../pipeline/index.js';
import { Refusal } from '../pipeline/refusal.js';
import { IDEMPOTENCY_KEY_HEADER, type RelayPipeline } from '../pipeline/relay.js';
import type { LocalRoute } from '../pipeline/types.js';
import { certificateSubjectText } from '../policy/dn.js';
import type { TrustSpace } from '../policy/trust-store.js';
import './enhanced-codes.js';
import { refuseAuth } from './refuse-auth.js';
import type { RelayConfig } from './relay-config.js';
import { checkPeerCertificate, peerCheckRefusal, presentedChain } from './relay-peer.js';
import { refusalError, smtpError, type SmtpError } from './errors.js';

export { IDEMPOTENCY_KEY_HEADER };

export interface RelayDeps {
  config: RelayConfig;
  hostname: string;
  /** Our server certificate, presented in STARTTLS. */
  tls: { key: string; cert: string };
  /** The trust space: the CA bundle peers chain to, and the domain entries naming their certificates. */
  trust: Pick<TrustSpace, 'anchors' | 'checkPeer'>;
  /** Revocation of peer certificates (CRL files and URLs of `relay`, and the certificates' distribution points). */
  revocation: RevocationChecker | null;
  /** Where refusals decided here are logged and audited. */
  pipeline: Pick<Pipeline, 'report'>;
  relay: RelayPipeline;
  log: Logger;
}

/** How often accepted idempotency keys past their retention are forgotten. */
const PRUNE_EVERY_MS = 60 * 60_000;
const DAY_MS = 86_400_000;

interface PeerSession {
  /** The certificates the peer presented in STARTTLS, leaf first. */
  chain: Certificate[];
  /** The leaf, checked at each MAIL FROM (or the refusal). */
  verified?: Promise<Certificate>;
  /** MAIL FROM of the current transaction ('' for a null sender) and the routes resolved at RCPT TO. */
  mailFrom?: string;
  routes?: Map<string, LocalRoute>;
}

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

/**
 * The inbound relay between operators (the port-25 role) on smtp-server: STARTTLS before MAIL, a TLS client
 * certificate that chains to the trust space's CAs, is valid and not revoked, and that the MAIL FROM domain's
 * trust entry names; no AUTH; local recipients only. Then the relay pipeline (src/pipeline/relay.ts). Every
 * refusal is a precise reply and an audit record.
 */
export class RelayServer {
  #server: SMTPServer | null = null;
  readonly #sessions = new Map<string, PeerSession>();
  readonly #perIp = new Map<string, number>();
  readonly #counted = new Set<string>();
  #pruner: NodeJS.Timeout | null = null;

  constructor(private readonly deps: RelayDeps) {}

  listen(host: string, port: number): Promise<AddressInfo> {
    const server = this.#create();
    this.#server = server;
    server.server.on('connection', (socket: Socket) => socket.setNoDelay(true));
    this.#pruner = setInterval(() => {
      this.pruneKeys().catch((err: unknown) => this.deps.log.warn({ err }, 'pruning relay idempotency keys failed; the next run tries again'));
    }, PRUNE_EVERY_MS).unref();
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        server.on('error', (err) => this.deps.log.warn({ err: { message: err.message } }, 'relay connection error'));
        resolve(server.server.address() as AddressInfo);
      });
    });
  }

  /** Stops accepting; transactions in flight finish (bounded by the close timeout). */
  async close(): Promise<void> {
    if (this.#pruner) clearInterval(this.#pruner);
    this.#pruner = null;
    const server = this.#server;
    this.#server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Forgets the idempotency keys accepted longer ago than the retention; returns how many went. */
  pruneKeys(now = Date.now()): Promise<number> {
    return this.deps.relay.pruneKeys(now - this.deps.config.idempotencyRetentionDays * DAY_MS);
  }

  #create(): SMTPServer {
    const { config, hostname, tls, log } = this.deps;
    const server = new SMTPServer({
      name: hostname,
      banner: 'mss secure health messaging, relay between operators',
      secure: false,
      key: tls.key,
      cert: tls.cert,
      minVersion: 'TLSv1.2',
      // Ask for the peer's certificate but judge it ourselves, so that a refusal is an SMTP reply and an audit record.
      requestCert: true,
      rejectUnauthorized: false,
      authOptional: true,
      size: config.maxMessageSize,
      maxClients: config.maxClients,
      socketTimeout: config.socketTimeoutMs,
      closeTimeout: config.shutdownGraceMs,
      disableReverseLookup: true,
      hideDSN: true,
      hideENHANCEDSTATUSCODES: false,
      logger: false,
      onConnect: (session, callback) => {
        const count = (this.#perIp.get(session.remoteAddress) ?? 0) + 1;
        this.#perIp.set(session.remoteAddress, count);
        this.#counted.add(session.id);
        if (count > config.maxConnectionsPerIp) {
          log.warn({ remote: session.remoteAddress, count }, 'too many relay connections from one address');
          callback(smtpError(421, '4.7.0 Too many connections from your address, try again later'));
          return;
        }
        callback();
      },
      onSecure: (socket, session, callback) => {
        this.#sessions.set(session.id, { chain: presentedChain(socket as TLSSocket) });
        callback();
      },
      onClose: (session) => {
        this.#sessions.delete(session.id);
        if (!this.#counted.delete(session.id)) return;
        const count = (this.#perIp.get(session.remoteAddress) ?? 1) - 1;
        if (count > 0) this.#perIp.set(session.remoteAddress, count);
        else this.#perIp.delete(session.remoteAddress);
      },
      onMailFrom: (address, session, callback) => {
        const mailFrom = address.address.trim().toLowerCase();
        this.#run(callback, session, mailFrom || '<>', this.#peerName(session), async () => {
          const peer = this.#sessions.get(session.id);
          if (!session.secure || !peer) throw new Refusal('relay-tls-required');
          // Checked again for each transaction: senders keep connections open for many messages, and a CRL
          // published (or an expiry reached) meanwhile must apply from the next message on.
          peer.verified = undefined;
          const leaf = await this.#verified(peer);
          if (mailFrom) {
            if (!/^[^@\s]+@[^@\s]+$/.test(mailFrom)) throw new Refusal('bad-address');
            await this.#authorize(domainOf(mailFrom), leaf, 'MAIL FROM');
          }
          peer.mailFrom = mailFrom;
          peer.routes = new Map();
        });
      },
      onRcptTo: (address, session, callback) => {
        const peer = this.#sessions.get(session.id);
        this.#run(callback, session, peer?.mailFrom || '<>', address.address, async () => {
          if (session.envelope.rcptTo.length >= config.maxRecipients) throw new Refusal('too-many-recipients');
          const route = await this.deps.relay.routeRecipient(address.address);
          peer?.routes?.set(route.address, route);
        });
      },
      onData: (stream, session, callback) => {
        this.#receive(stream, session)
          .then((reply) => callback(null, reply))
          .catch((err: unknown) => {
            if (err instanceof Refusal) return callback(refusalError(err));
            log.error({ err }, 'relay failed');
            callback(refusalError(new Refusal('temporary-failure')));
          });
      },
    });
    refuseAuth(server, async (session) => {
      const refusal = new Refusal('relay-auth-not-offered');
      await this.deps.pipeline.report(refusal, this.#sessions.get(session.id)?.mailFrom || '<>', 'AUTH', session.remoteAddress);
      return { code: refusal.smtpCode, text: refusal.smtpText };
    });
    return server;
  }

  /** The peer's certificate checked against the trust space's CAs, once per transaction. */
  #verified(peer: PeerSession): Promise<Certificate> {
    peer.verified ??= checkPeerCertificate(peer.chain, {
      anchors: () => this.deps.trust.anchors(),
      revocation: this.deps.revocation,
      revocationMode: this.deps.config.revocation,
    });
    return peer.verified;
  }

  /** `domain` must be in the trust space with an entry naming the peer's certificate. */
  async #authorize(domain: string, leaf: Certificate, what: string): Promise<void> {
    const refusal = peerCheckRefusal(await this.deps.trust.checkPeer(domain, leaf), domain, what);
    if (refusal) throw refusal;
  }

  /** Runs a command's step; a `Refusal` is audited (actor: the MAIL FROM) and answered. */
  #run(callback: (err?: SmtpError | null) => void, session: SMTPServerSession, actor: string, object: string, step: () => Promise<void>): void {
    step()
      .then(() => callback())
      .catch(async (err: unknown) => {
        if (err instanceof Refusal) {
          await this.deps.pipeline.report(err, actor, object, session.remoteAddress);
          callback(refusalError(err));
        } else {
          this.deps.log.error({ err }, 'relay command failed');
          callback(refusalError(new Refusal('temporary-failure')));
        }
      });
  }

  /** The audit object of a session-level refusal: the peer's certificate subject. */
  #peerName(session: SMTPServerSession): string {
    const leaf = this.#sessions.get(session.id)?.chain[0];
    return leaf ? certificateSubjectText(leaf) : 'no client certificate';
  }

  /** Reads DATA (never more than the size limit in memory) and runs the relay pipeline on it. */
  async #receive(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    const max = this.deps.config.maxMessageSize;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size <= max) chunks.push(chunk);
    }
    const peer = this.#sessions.get(session.id);
    const mailFrom = peer?.mailFrom ?? '';
    if (stream.sizeExceeded || size > max) {
      await this.deps.pipeline.report(new Refusal('message-too-large', `${size} bytes`), mailFrom || '<>', 'message', session.remoteAddress);
      throw new Refusal('message-too-large');
    }
    if (!peer || !session.tlsOptions) throw new Refusal('relay-tls-required');
    const leaf = await this.#verified(peer);
    const outcome = await this.deps.relay.accept({
      sessionId: session.id,
      remoteAddress: session.remoteAddress,
      clientName: session.hostNameAppearsAs || session.clientHostname,
      tls: { protocol: session.tlsOptions.version, cipher: session.tlsOptions.name },
      peerDn: certificateSubjectText(leaf),
      envelope: { mailFrom, rcptTo: session.envelope.rcptTo.map((r) => r.address) },
      raw: Buffer.concat(chunks, size),
      receivedAt: new Date(),
      routes: peer.routes,
      authorizeDomain: (domain) => this.#authorize(domain, leaf, 'From'),
    });
    switch (outcome.kind) {
      case 'duplicate':
        return `2.6.0 Message already accepted (same ${IDEMPOTENCY_KEY_HEADER}), not delivered again, id ${outcome.queueId}`;
      case 'not-integrated':
        // Transport succeeded; the integration failure goes back as an error MDN (RFC 8098), not as a bounce too.
        return `2.6.0 Message accepted, queued as ${outcome.queueId}; document not integrated, error MDN sent [${outcome.refusal.code}]`;
      case 'delivered':
        return `2.6.0 Message accepted, queued as ${outcome.accepted.queueId}`;
    }
  }
}
