import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Authenticator } from '../accounts/authenticator.js';
import type { Config } from '../config/schema.js';
import { Pipeline } from '../pipeline/index.js';
import { Refusal } from '../pipeline/refusal.js';
import type { RecipientRoute } from '../pipeline/types.js';
import type { MailboxRow } from '../store/types.js';
import './enhanced-codes.js';
import { refusalError, smtpError, type SmtpError } from './errors.js';

export interface SubmissionDeps {
  limits: Config['smtp'];
  hostname: string;
  tls: { key: string; cert: string };
  auth: Authenticator;
  pipeline: Pipeline;
  log: Logger;
}

function senderOf(session: SMTPServerSession): MailboxRow {
  const user: unknown = session.user;
  if (!user || typeof user !== 'object' || !('address' in user)) throw new Refusal('auth-required');
  return user as MailboxRow;
}

/**
 * The submission role (587 with STARTTLS, 465 with implicit TLS) on smtp-server: turns SMTP into calls to
 * the pipeline and the pipeline's verdict into replies. No AUTH before TLS; every transaction authenticated.
 */
export class SubmissionServer {
  readonly #servers: SMTPServer[] = [];
  /** Open connections per client address, across both listeners. */
  readonly #perIp = new Map<string, number>();
  readonly #counted = new WeakSet<SMTPServerSession>();
  /** Routes resolved at RCPT TO in the current transaction of each session (reset at MAIL FROM). */
  readonly #routes = new WeakMap<SMTPServerSession, Map<string, RecipientRoute>>();
  /** Failed AUTH attempts per connection (the per-address lockout is in the Authenticator). */
  readonly #authFailures = new Map<string, number>();

  constructor(private readonly deps: SubmissionDeps) {}

  listen(kind: 'starttls' | 'tls', host: string, port: number): Promise<AddressInfo> {
    const server = this.#create(kind === 'tls');
    this.#servers.push(server);
    // Replies are small writes; without this, Nagle's algorithm and the client's delayed ACK add ~40 ms to some.
    server.server.on('connection', (socket: import('node:net').Socket) => socket.setNoDelay(true));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        server.on('error', (err) => this.deps.log.warn({ err: { message: err.message } }, 'smtp connection error'));
        resolve(server.server.address() as AddressInfo);
      });
    });
  }

  /** Stops accepting; transactions in flight finish (bounded by the close timeout). */
  async close(): Promise<void> {
    await Promise.all(this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.#servers.length = 0;
  }

  #create(implicitTls: boolean): SMTPServer {
    const { limits, hostname, tls, log } = this.deps;
    return new SMTPServer({
      name: hostname,
      banner: 'mss secure health messaging, submission',
      secure: implicitTls,
      key: tls.key,
      cert: tls.cert,
      minVersion: 'TLSv1.2',
      authMethods: ['PLAIN', 'LOGIN'],
      allowInsecureAuth: false,
      authOptional: false,
      size: limits.maxMessageSize,
      maxClients: limits.maxClients,
      socketTimeout: limits.socketTimeoutMs,
      closeTimeout: limits.shutdownGraceMs,
      maxAllowedUnauthenticatedCommands: limits.maxUnauthenticatedCommands,
      disableReverseLookup: true,
      hideDSN: true,
      hideENHANCEDSTATUSCODES: false,
      logger: false,
      onConnect: (session, callback) => {
        const count = (this.#perIp.get(session.remoteAddress) ?? 0) + 1;
        this.#perIp.set(session.remoteAddress, count);
        this.#counted.add(session);
        if (count > limits.maxConnectionsPerIp) {
          log.warn({ remote: session.remoteAddress, count }, 'too many connections from one address');
          callback(smtpError(421, '4.7.0 Too many connections from your address, try again later'));
          return;
        }
        callback();
      },
      onClose: (session) => {
        this.#authFailures.delete(session.id);
        if (!this.#counted.delete(session)) return;
        const count = (this.#perIp.get(session.remoteAddress) ?? 1) - 1;
        if (count > 0) this.#perIp.set(session.remoteAddress, count);
        else this.#perIp.delete(session.remoteAddress);
      },
      onAuth: (auth, session, callback) => {
        // Only PLAIN and LOGIN reach here (authMethods), and only over TLS (smtp-server answers 538 5.7.0 before).
        this.deps.auth
          .login(auth.username ?? '', auth.password ?? '', { protocol: 'smtp', remote: session.remoteAddress })
          .then((result) => {
            if (result.ok) return callback(null, { user: result.mailbox });
            const failures = (this.#authFailures.get(session.id) ?? 0) + 1;
            this.#authFailures.set(session.id, failures);
            if (failures >= limits.maxAuthFailuresPerConnection)
              callback(smtpError(421, '4.7.0 Too many failed authentication attempts, closing connection'));
            else if (result.reason === 'locked')
              callback(smtpError(454, '4.7.0 Too many failed logins, try again later / Trop d’échecs, réessayez plus tard'));
            else callback(smtpError(535, '5.7.8 Authentication failed / Échec de l’authentification'));
          })
          .catch((err: unknown) => {
            log.error({ err }, 'authentication error');
            callback(smtpError(454, '4.7.0 Temporary authentication failure'));
          });
      },
      onMailFrom: (address, session, callback) => {
        this.#run(callback, async () => {
          await this.deps.pipeline.checkSender(senderOf(session), address.address, { remote: session.remoteAddress });
          this.#routes.set(session, new Map());
        });
      },
      onRcptTo: (address, session, callback) => {
        this.#run(callback, async () => {
          if (session.envelope.rcptTo.length >= limits.maxRecipients) throw new Refusal('too-many-recipients');
          const route = await this.deps.pipeline.checkRecipient(senderOf(session), address.address, { remote: session.remoteAddress });
          this.#routes.get(session)?.set(route.address, route);
        });
      },
      onData: (stream, session, callback) => {
        this.#receive(stream, session)
          .then((queueId) => callback(null, `2.6.0 Message accepted, queued as ${queueId}`))
          .catch((err: unknown) => {
            if (err instanceof Refusal) return callback(refusalError(err));
            log.error({ err }, 'submission failed');
            callback(refusalError(new Refusal('temporary-failure')));
          });
      },
    });
  }

  #run(callback: (err?: SmtpError | null) => void, step: () => Promise<void>): void {
    step()
      .then(() => callback())
      .catch((err: unknown) => {
        if (err instanceof Refusal) return callback(refusalError(err));
        this.deps.log.error({ err }, 'smtp command failed');
        callback(refusalError(new Refusal('temporary-failure')));
      });
  }

  /** Reads DATA (never more than the size limit in memory) and runs the pipeline on it. */
  async #receive(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    const max = this.deps.limits.maxMessageSize;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size <= max) chunks.push(chunk);
    }
    const sender = senderOf(session);
    if (stream.sizeExceeded || size > max) {
      await this.deps.pipeline.report(new Refusal('message-too-large', `${size} bytes`), sender.address, 'message', session.remoteAddress);
      throw new Refusal('message-too-large');
    }
    const accepted = await this.deps.pipeline.submit({
      channel: 'submission',
      sessionId: session.id,
      remoteAddress: session.remoteAddress,
      clientName: session.hostNameAppearsAs || session.clientHostname,
      protocol: session.transmissionType || 'ESMTPSA',
      tls: session.tlsOptions ? { protocol: session.tlsOptions.version, cipher: session.tlsOptions.name } : null,
      sender,
      envelope: {
        mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
        rcptTo: session.envelope.rcptTo.map((r) => r.address),
      },
      raw: Buffer.concat(chunks, size),
      receivedAt: new Date(),
      routes: this.#routes.get(session),
    });
    return accepted.queueId;
  }
}
