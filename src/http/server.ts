import { createHmac, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Authenticator } from '../accounts/authenticator.js';
import type { MailboxRow } from '../store/types.js';

/**
 * The HTTPS listener of the JSON API and of the webmail (`app`: pages, forms, static files and the rest of
 * `/api/`, on every path no exact route takes). Requests to the exact routes authenticate with HTTP Basic over
 * TLS against the same accounts, lockouts and audit as SMTP and IMAP; a successful login is remembered for a
 * minute per process (keyed by an HMAC of the credentials under a per-process secret), so address-book
 * completion does not run the password hash on every keystroke.
 */

export type ApiUser = Pick<MailboxRow, 'address' | 'type'>;
export type RouteHandler = (req: IncomingMessage, res: ServerResponse, user: ApiUser | null) => Promise<void>;

/** A web application served beside the exact routes (src/webmail/app.ts). */
export interface WebApp {
  /** The user of a request authenticated by the application itself (its session cookie), or null. */
  sessionUser(req: IncomingMessage): Promise<ApiUser | null>;
  /** Serves a request no exact route takes; `user` is set when it carried valid HTTP Basic credentials. */
  handle(req: IncomingMessage, res: ServerResponse, user: ApiUser | null): Promise<void>;
}

export interface HttpServerDeps {
  tls: { key: string; cert: string };
  auth: Authenticator;
  log: Logger;
  /** Exact paths (query string excluded) to handlers. */
  routes: ReadonlyMap<string, RouteHandler>;
  /** The web application (the webmail) for the other paths; without it they are 404. */
  app?: WebApp;
  maxConnections: number;
  requestTimeoutMs: number;
}

const LOGIN_CACHE_MS = 60_000;
const LOGIN_CACHE_MAX = 10_000;

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(text);
}

export class HttpServer {
  readonly #server: https.Server;
  readonly #secret = randomBytes(32);
  readonly #logins = new Map<string, { user: ApiUser; until: number }>();

  constructor(private readonly deps: HttpServerDeps) {
    this.#server = https.createServer({ key: deps.tls.key, cert: deps.tls.cert, minVersion: 'TLSv1.2' }, (req, res) => {
      void this.#handle(req, res).catch((err: unknown) => {
        deps.log.error({ err }, 'HTTP request failed');
        if (!res.headersSent) json(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    });
    this.#server.maxConnections = deps.maxConnections;
    this.#server.requestTimeout = deps.requestTimeoutMs;
    this.#server.headersTimeout = Math.min(deps.requestTimeoutMs, 60_000);
  }

  async listen(host: string, port: number): Promise<{ address: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const a = this.#server.address() as AddressInfo;
    return { address: a.address, port: a.port };
  }

  async close(): Promise<void> {
    this.#server.closeIdleConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'https://localhost').pathname;
    const route = this.deps.routes.get(path);
    const app = this.deps.app;
    if (!route && !app) {
      json(res, 404, { error: 'not found' });
      return;
    }
    const header = req.headers.authorization;
    if (!header) {
      if (route) await route(req, res, app ? await app.sessionUser(req) : null);
      else await app!.handle(req, res, null);
      return;
    }
    const user = await this.#authenticate(header, req.socket.remoteAddress ?? '?');
    if (!user) {
      json(res, 401, { error: 'bad credentials' }, { 'www-authenticate': 'Basic realm="mss", charset="UTF-8"' });
      return;
    }
    if (route) await route(req, res, user);
    else await app!.handle(req, res, user);
  }

  async #authenticate(header: string, remote: string): Promise<ApiUser | null> {
    const m = /^Basic ([A-Za-z0-9+/=]{1,1024})$/.exec(header.trim());
    if (!m) return null;
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) return null;
    const address = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const key = createHmac('sha256', this.#secret).update(decoded).digest('base64');
    const now = Date.now();
    const cached = this.#logins.get(key);
    if (cached && cached.until > now) return cached.user;
    const result = await this.deps.auth.login(address, password, { protocol: 'https', remote });
    if (!result.ok) return null;
    const user = { address: result.mailbox.address, type: result.mailbox.type };
    if (this.#logins.size >= LOGIN_CACHE_MAX) this.#logins.clear();
    this.#logins.set(key, { user, until: now + LOGIN_CACHE_MS });
    return user;
  }
}
