import net from 'node:net';
import tls from 'node:tls';
import type { ImapServerDeps } from './command.js';
import { SharedFolders } from './folder-messages.js';
import { status } from './serializer.js';
import { acceptTls } from './lean-tls.js';
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
  /** How many sessions `adopt` holds, by listener kind (the primary counts the limits across processes). */
  readonly #adopted = { plain: { count: 0 }, tls: { count: 0 } };
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

  /**
   * TLS for a connection to the implicit-TLS listener or after STARTTLS. A client certificate is asked for, never
   * required: without one, or with one that does not verify, the client logs in with a password (the certificate
   * only matters to AUTHENTICATE EXTERNAL).
   */
  #secure(socket: net.Socket): tls.TLSSocket {
    return acceptTls(socket, { secureContext: this.#context, requestCert: this.#deps.clientAuth !== undefined, rejectUnauthorized: false });
  }

  listen(kind: ImapListenerKind, host: string, port: number): Promise<net.AddressInfo> {
    if (this.#closing) return Promise.reject(new Error('IMAP server is closed'));
    const active = { count: 0 };
    const server = net.createServer((socket) => this.#accept(socket, kind, active));
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
    if (refusal) this.#refuse(socket, kind, refusal);
    else this.#accept(socket, kind, this.#adopted[kind], onEnding);
  }

  #refuse(raw: net.Socket, kind: ImapListenerKind, refusal: ConnectionRefusal): void {
    if (refusal === 'address') this.#deps.log.warn({ remote: raw.remoteAddress }, 'too many IMAP connections from one address');
    raw.on('error', () => {});
    const socket = kind === 'tls' ? this.#secure(raw) : raw;
    socket.on('error', () => {});
    socket.end(status(null, 'BYE', REFUSALS[refusal]));
    // A second for the BYE to leave once it can: on the TLS port after the handshake, which gets no longer than a
    // session has to log in.
    const linger = () => setTimeout(() => socket.destroy(), 1000).unref();
    if (kind === 'plain') {
      linger();
      return;
    }
    socket.once('secure', linger);
    setTimeout(() => socket.destroy(), this.#deps.limits.preauthTimeoutMs).unref();
  }

  #accept(raw: net.Socket, kind: ImapListenerKind, active: { count: number }, onEnding?: () => void): void {
    const ip = raw.remoteAddress ?? 'unknown';
    const fromIp = this.#perIp.get(ip) ?? 0;
    const refusal: ConnectionRefusal | null = this.#closing
      ? 'closing'
      : active.count >= this.#deps.limits.maxConnections
        ? 'busy'
        : fromIp >= this.#deps.limits.maxConnectionsPerIp
          ? 'address'
          : null;
    if (refusal) return this.#refuse(raw, kind, refusal);
    active.count++;
    this.#perIp.set(ip, fromIp + 1);
    const remote = `${ip}:${raw.remotePort ?? 0}`;
    const session = new Session(kind === 'tls' ? this.#secure(raw) : raw, kind, remote, this.#deps, (plain) => this.#secure(plain), this.#folders);
    this.#sessions.add(session);
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
