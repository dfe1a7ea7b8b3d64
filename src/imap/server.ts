import net from 'node:net';
import tls from 'node:tls';
import type { ImapServerDeps } from './command.js';
import { SharedFolders } from './folder-messages.js';
import { status } from './serializer.js';
import { Session } from './session.js';

export type { ImapServerDeps } from './command.js';

export type ImapListenerKind = 'plain' | 'tls';

/** Why a connection is turned away: the server is stopping, a listener is full, or the client's address is. */
export type ConnectionRefusal = 'closing' | 'busy' | 'address';

const REFUSALS: Record<ConnectionRefusal, string> = {
  closing: 'Server shutting down',
  busy: 'Too many connections, try again later',
  address: 'Too many connections from your address, try again later',
};

const peerKey = (kind: ImapListenerKind, socket: net.Socket) => `${kind} ${socket.remoteAddress} ${socket.remotePort}`;

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
  /** The non-listening servers `adopt` hands connections to, by kind and refusal. */
  readonly #adopting = new Map<string, net.Server>();
  /** What `adopt` was asked to call when the session of a connection ends, by listener kind and peer. */
  readonly #endingHooks = new Map<string, () => void>();
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

  /** A server of this kind that hands each connection (after the TLS handshake for `tls`) to `onSocket`. */
  #server(kind: ImapListenerKind, onSocket: (socket: net.Socket) => void): net.Server {
    if (kind === 'plain') return net.createServer(onSocket);
    // A client certificate is asked for, never required: without one, or with one that does not verify,
    // the client logs in with a password (the certificate only matters to AUTHENTICATE EXTERNAL).
    const server = tls.createServer({ ...this.#tlsOptions(), requestCert: this.#deps.clientAuth !== undefined, rejectUnauthorized: false }, onSocket);
    server.on('tlsClientError', (err: Error) => this.#deps.log.debug({ code: (err as NodeJS.ErrnoException).code }, 'IMAP TLS handshake failed'));
    return server;
  }

  listen(kind: ImapListenerKind, host: string, port: number): Promise<net.AddressInfo> {
    if (this.#closing) return Promise.reject(new Error('IMAP server is closed'));
    const active = { count: 0 };
    const server = this.#server(kind, (socket) => this.#accept(socket, kind, active));
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

  /**
   * Serves a connection another process accepted (`processes` > 1: the primary listens and deals connections,
   * src/connection-dispatch.ts), as if one of this server's listeners of `kind` had. With a `refusal` (a limit the
   * primary counts across processes), the client gets the BYE and nothing else. `onEnding` is called when the
   * session is over (`Session.ending`), else when the connection closes.
   */
  adopt(kind: ImapListenerKind, socket: net.Socket, refusal: ConnectionRefusal | null, onEnding?: () => void): void {
    if (onEnding && !refusal) {
      // The session (created after the TLS handshake, on another socket object) finds its hook by its peer.
      const peer = peerKey(kind, socket);
      this.#endingHooks.set(peer, onEnding);
      socket.once('close', () => this.#endingHooks.delete(peer));
    }
    const key = `${kind}:${refusal ?? ''}` as const;
    let server = this.#adopting.get(key);
    if (!server) {
      const active = { count: 0 };
      server = this.#server(kind, (s) => (refusal ? this.#refuse(s, refusal) : this.#accept(s, kind, active)));
      this.#adopting.set(key, server);
    }
    server.emit('connection', socket);
  }

  #refuse(socket: net.Socket, refusal: ConnectionRefusal): void {
    if (refusal === 'address') this.#deps.log.warn({ remote: socket.remoteAddress }, 'too many IMAP connections from one address');
    socket.on('error', () => {});
    socket.end(status(null, 'BYE', REFUSALS[refusal]));
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  #accept(socket: net.Socket, kind: ImapListenerKind, active: { count: number }): void {
    const ip = socket.remoteAddress ?? 'unknown';
    const fromIp = this.#perIp.get(ip) ?? 0;
    const refusal: ConnectionRefusal | null = this.#closing
      ? 'closing'
      : active.count >= this.#deps.limits.maxConnections
        ? 'busy'
        : fromIp >= this.#deps.limits.maxConnectionsPerIp
          ? 'address'
          : null;
    if (refusal) return this.#refuse(socket, refusal);
    active.count++;
    this.#perIp.set(ip, fromIp + 1);
    const session = new Session(socket, kind, this.#deps, this.#context, this.#folders);
    this.#sessions.add(session);
    const onEnding = this.#endingHooks.get(peerKey(kind, socket));
    if (onEnding) void session.ending.then(onEnding);
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
