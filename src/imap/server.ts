import net from 'node:net';
import tls from 'node:tls';
import type { ImapServerDeps } from './command.js';
import { SharedFolders } from './folder-messages.js';
import { status } from './serializer.js';
import { Session } from './session.js';

export type { ImapServerDeps } from './command.js';

/** How long `close()` waits for running commands before cutting the remaining connections. */
const CLOSE_GRACE_MS = 10_000;

/**
 * The IMAP listeners: `plain` (STARTTLS, the 143 role) and `tls` (implicit TLS, the 993 role), both asking for
 * a client certificate when `clientAuth` is configured. Each
 * listener admits at most `maxConnections` sessions, and one client address at most `maxConnectionsPerIp`
 * across both; beyond that a connection gets BYE and is closed.
 */
export class ImapServer {
  readonly #deps: ImapServerDeps;
  readonly #context: tls.SecureContext;
  readonly #servers: net.Server[] = [];
  readonly #sessions = new Set<Session>();
  readonly #perIp = new Map<string, number>();
  readonly #folders: SharedFolders;
  #closing: Promise<void> | null = null;

  constructor(deps: ImapServerDeps) {
    this.#deps = deps;
    this.#folders = new SharedFolders(deps.store, deps.notifier);
    this.#context = tls.createSecureContext(this.#tlsOptions());
  }

  /** The server's key and certificate, and the CAs a client certificate must chain to (AUTHENTICATE EXTERNAL). */
  #tlsOptions(): tls.SecureContextOptions {
    const { key, cert } = this.#deps.tls;
    const ca = this.#deps.clientAuth?.ca;
    return { key, cert, minVersion: 'TLSv1.2', ...(ca ? { ca } : {}) };
  }

  listen(kind: 'plain' | 'tls', host: string, port: number): Promise<net.AddressInfo> {
    if (this.#closing) return Promise.reject(new Error('IMAP server is closed'));
    const active = { count: 0 };
    const server =
      kind === 'tls'
        ? tls.createServer(
            // A client certificate is asked for, never required: without one, or with one that does not verify,
            // the client logs in with a password (the certificate only matters to AUTHENTICATE EXTERNAL).
            { ...this.#tlsOptions(), requestCert: this.#deps.clientAuth !== undefined, rejectUnauthorized: false },
            (socket) => this.#accept(socket, kind, active),
          )
        : net.createServer((socket) => this.#accept(socket, kind, active));
    if (kind === 'tls') {
      server.on('tlsClientError', (err: Error) => this.#deps.log.debug({ code: (err as NodeJS.ErrnoException).code }, 'IMAP TLS handshake failed'));
    }
    this.#servers.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        server.on('error', (err) => this.#deps.log.error({ err }, 'IMAP listener error'));
        resolve(server.address() as net.AddressInfo);
      });
    });
  }

  #accept(socket: net.Socket, kind: 'plain' | 'tls', active: { count: number }): void {
    const ip = socket.remoteAddress ?? 'unknown';
    const fromIp = this.#perIp.get(ip) ?? 0;
    const refusal = this.#closing
      ? 'Server shutting down'
      : active.count >= this.#deps.limits.maxConnections
        ? 'Too many connections, try again later'
        : fromIp >= this.#deps.limits.maxConnectionsPerIp
          ? 'Too many connections from your address, try again later'
          : null;
    if (refusal) {
      if (fromIp >= this.#deps.limits.maxConnectionsPerIp) this.#deps.log.warn({ remote: ip }, 'too many IMAP connections from one address');
      socket.on('error', () => {});
      socket.end(status(null, 'BYE', refusal));
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    active.count++;
    this.#perIp.set(ip, fromIp + 1);
    const session = new Session(socket, kind, this.#deps, this.#context, this.#folders);
    this.#sessions.add(session);
    void session.closed.then(() => {
      active.count--;
      const left = (this.#perIp.get(ip) ?? 1) - 1;
      if (left > 0) this.#perIp.set(ip, left);
      else this.#perIp.delete(ip);
      this.#sessions.delete(session);
    });
    session.start();
  }

  /** Stops accepting, lets running commands finish (BYE to idle sessions), then resolves. */
  close(): Promise<void> {
    return (this.#closing ??= (async () => {
      const stopped = Promise.all(this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
      for (const session of this.#sessions) session.shutdown();
      const all = Promise.all([...this.#sessions].map((s) => s.closed));
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), CLOSE_GRACE_MS)));
      if ((await Promise.race([all, grace])) === 'timeout') {
        for (const session of this.#sessions) session.close('Server shutting down');
      }
      clearTimeout(timer);
      await Promise.race([all, new Promise((resolve) => setTimeout(resolve, 3000).unref())]);
      await stopped;
      this.#folders.close();
    })());
  }
}
