import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import zlib from 'node:zlib';
import pino, { type Logger } from 'pino';
import { afterEach } from 'vitest';
import { Authenticator } from '../../src/accounts/authenticator.js';
import { createMailbox } from '../../src/accounts/mailboxes.js';
import { configSchema, type Config } from '../../src/config/schema.js';
import { Keyring } from '../../src/crypto/seal.js';
import { ImapServer, type ImapServerDeps } from '../../src/imap/server.js';
import { LocalNotifier } from '../../src/store/notifier.js';
import { SealedMail } from '../../src/store/sealed-mail.js';
import type { MailboxRow, Store } from '../../src/store/types.js';
import { openTestStore, tempDir, type Engine, type TestStore } from '../helpers/engines.js';

/**
 * Test harness for the IMAP server: a real store (per engine), one practitioner mailbox, the server on
 * ephemeral ports with a throw-away self-signed certificate, and a raw line client for conversations.
 */

let material: { key: string; cert: string } | null = null;

/** A self-signed certificate for localhost, made once per test process with openssl. */
export function tlsMaterial(): { key: string; cert: string } {
  if (material) return material;
  const tmp = tempDir('mss-imap-tls-');
  try {
    const key = path.join(tmp.dir, 'k.pem');
    const cert = path.join(tmp.dir, 'c.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=localhost', '-days', '1'], {
      stdio: 'ignore',
    });
    material = { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
    return material;
  } finally {
    tmp.dispose();
  }
}

export const USER = { address: 'claire.martin@hopital-demo.mssante.test', password: 'correct horse battery' };

export interface ImapTestServer {
  ports: { plain: number; tls: number };
  store: Store;
  /** The test store's directory (the SQLite file is `mss.sqlite` there). */
  dir: string;
  mail: SealedMail;
  notifier: LocalNotifier;
  mailbox: MailboxRow;
  limits: Config['imap'];
  keyring: Keyring;
  /** Appends straight through the store (as delivery would) and publishes `exists`; returns the UID. */
  deliver(raw: Buffer, options?: { folder?: string; flags?: string[] }): Promise<number>;
  /** Closes the server and the store, reopens both (same data, new ports). */
  restart(): Promise<void>;
  dispose(): Promise<void>;
}

export interface ImapTestOptions {
  quota?: Partial<Config['quota']>;
  /** Client certificates for AUTHENTICATE EXTERNAL, built over the test's store and keyring. */
  clientAuth?: (store: Store, keyring: Keyring) => ImapServerDeps['clientAuth'];
}

export async function startImapServer(
  engine: Engine,
  limits: Partial<Config['imap']> = {},
  logger?: Logger,
  options: ImapTestOptions = {},
): Promise<ImapTestServer> {
  const testStore: TestStore = await openTestStore(engine);
  const keyring = new Keyring(randomBytes(32));
  const config = configSchema.parse({ imap: limits, quota: options.quota ?? {} });
  const mailbox = await createMailbox(testStore.store, keyring, {
    address: USER.address,
    type: 'PER',
    password: USER.password,
    displayName: 'Claire Martin',
  });
  const log = logger ?? pino({ level: process.env.MSS_TEST_LOG ?? 'silent' });
  let server: ImapServer;
  const handle: ImapTestServer = {
    ports: { plain: 0, tls: 0 },
    store: testStore.store,
    dir: testStore.dir,
    mail: new SealedMail(testStore.store, keyring, { metaCacheBytes: 8 << 20 }),
    notifier: new LocalNotifier(),
    mailbox,
    limits: config.imap,
    keyring,
    async deliver(raw, options = {}) {
      const folder = await handle.store.getFolder(mailbox.id, options.folder ?? 'INBOX');
      if (!folder) throw new Error('no such folder');
      const appended = await handle.store.transaction((tx) => handle.mail.append(tx, mailbox, folder, raw, { flags: options.flags ?? [] }));
      handle.notifier.publish({ kind: 'exists', mailboxId: mailbox.id, folderId: folder.id, uid: appended.uid, modseq: appended.modseq });
      return appended.uid;
    },
    async restart() {
      await server.close();
      handle.store = await testStore.reopen();
      handle.mail = new SealedMail(handle.store, keyring, { metaCacheBytes: 8 << 20 });
      await listen();
    },
    async dispose() {
      await server.close();
      await testStore.dispose();
    },
  };
  async function listen() {
    const clientAuth = options.clientAuth?.(handle.store, keyring);
    server = new ImapServer({
      limits: config.imap,
      quota: config.quota,
      ...(clientAuth ? { clientAuth } : {}),
      hostname: 'imap.test',
      store: handle.store,
      mail: handle.mail,
      notifier: handle.notifier,
      auth: new Authenticator(handle.store, config.auth),
      tls: tlsMaterial(),
      log,
    });
    handle.ports = {
      plain: (await server.listen('plain', '127.0.0.1', 0)).port,
      tls: (await server.listen('tls', '127.0.0.1', 0)).port,
    };
  }
  await listen();
  return handle;
}

/**
 * A raw IMAP client: sends lines, reads response lines (binary-safe, latin1), follows one tagged reply. It can
 * present a client certificate, and turn DEFLATE on after the server's OK to COMPRESS.
 */
export class ImapLineClient {
  #socket: net.Socket;
  #deflate: zlib.DeflateRaw | null = null;
  #buffer = '';
  #waiters: (() => void)[] = [];
  closed = false;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    this.#attach();
  }

  static connect(port: number, options: { tls: boolean; cert?: string; key?: string }): Promise<ImapLineClient> {
    return new Promise((resolve, reject) => {
      const identity = options.cert && options.key ? { cert: options.cert, key: options.key } : {};
      const socket = options.tls
        ? tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, ...identity })
        : net.connect({ host: '127.0.0.1', port });
      socket.once(options.tls ? 'secureConnect' : 'connect', () => resolve(new ImapLineClient(socket)));
      socket.once('error', reject);
    });
  }

  #attach(): void {
    this.#socket.on('data', (d: Buffer) => {
      this.#buffer += d.toString('latin1');
      this.#wake();
    });
    this.#socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    this.#socket.on('error', () => {});
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  async #wait(deadline: number, what: string): Promise<void> {
    if (this.closed) throw new Error(`connection closed while waiting for ${what}; pending: ${JSON.stringify(this.#buffer.slice(0, 300))}`);
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}; pending: ${JSON.stringify(this.#buffer.slice(0, 300))}`);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 100);
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Sends raw bytes, or a string followed by CRLF. */
  send(data: string | Buffer): void {
    const bytes = typeof data === 'string' ? Buffer.from(data + '\r\n', 'utf8') : data;
    if (!this.#deflate) {
      this.#socket.write(bytes);
      return;
    }
    this.#deflate.write(bytes);
    this.#deflate.flush(zlib.constants.Z_SYNC_FLUSH);
  }

  /** Compresses both directions from now on (after the server's OK to COMPRESS DEFLATE). */
  compress(): void {
    const socket = this.#socket;
    socket.removeAllListeners('data');
    socket.removeAllListeners('close');
    const inflate = zlib.createInflateRaw();
    const deflate = zlib.createDeflateRaw();
    socket.pipe(inflate);
    deflate.pipe(socket);
    inflate.on('data', (d: Buffer) => {
      this.#buffer += d.toString('latin1');
      this.#wake();
    });
    // The connection counts as closed once the inflater has handed out what arrived before the close.
    socket.on('close', () => {
      if (!inflate.writableEnded) inflate.end();
    });
    inflate.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    inflate.on('error', () => socket.destroy());
    this.#deflate = deflate;
  }

  /** One response line (without CRLF), latin1. */
  async line(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const at = this.#buffer.indexOf('\r\n');
      if (at >= 0) {
        const line = this.#buffer.slice(0, at);
        this.#buffer = this.#buffer.slice(at + 2);
        return line;
      }
      await this.#wait(deadline, 'a line');
    }
  }

  /** Lines up to and including the tagged response for `tag` (or a BYE when the server hangs up). */
  async until(tag: string, timeoutMs = 10_000): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      const line = await this.line(timeoutMs);
      out.push(line);
      if (line.startsWith(`${tag} `)) return out;
    }
  }

  /** Sends a command and returns its response lines; the last is the tagged one. */
  async command(tag: string, text: string): Promise<string[]> {
    this.send(`${tag} ${text}`);
    return this.until(tag);
  }

  async login(user = USER.address, password = USER.password): Promise<void> {
    const lines = await this.command('L1', `LOGIN "${user}" "${password}"`);
    if (!lines[lines.length - 1]!.startsWith('L1 OK')) throw new Error(`login failed: ${lines.join('\n')}`);
  }

  async startTls(identity: { cert?: string; key?: string } = {}): Promise<void> {
    const plain = this.#socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    this.#socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ socket: plain, servername: 'localhost', rejectUnauthorized: false, ...identity }, () => resolve(s));
      s.once('error', reject);
    });
    this.#attach();
  }

  /** Waits for the server to close the connection; returns whatever it sent meanwhile. */
  async closedByServer(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error(`server did not close; pending: ${JSON.stringify(this.#buffer.slice(0, 300))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const rest = this.#buffer;
    this.#buffer = '';
    return rest;
  }

  /** Stops reading from the socket (a client that no longer reads what the server sends). */
  pauseReading(): void {
    this.#socket.pause();
  }

  resumeReading(): void {
    this.#socket.resume();
  }

  get pending(): string {
    return this.#buffer;
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** A small RFC 5322 message with CRLF line ends. */
export function sampleMessage(subject = 'Compte rendu', body = 'Bonjour,\r\nRésultats normaux.\r\n'): Buffer {
  return Buffer.from(
    [
      'From: Dr Jean Dupont <jean.dupont@hopital-demo.mssante.test>',
      `To: ${USER.address}`,
      `Subject: ${subject}`,
      'Date: Wed, 25 Nov 2026 10:00:00 +0100',
      `Message-ID: <${randomBytes(6).toString('hex')}@hopital-demo.mssante.test>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      body,
    ].join('\r\n'),
  );
}

/**
 * For a `describe` block whose tests each start a server (`start`, the arguments of `startImapServer` after the
 * engine) and open logged-in TLS sessions to it (`connect`: greeting read, LOGIN done); sessions and server are
 * closed after each test.
 */
export function sessionsPerTest(engine: Engine): {
  start: (...rest: StartRest) => Promise<ImapTestServer>;
  connect: () => Promise<ImapLineClient>;
} {
  let server: ImapTestServer | null = null;
  const clients: ImapLineClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await server?.dispose();
    server = null;
  });
  return {
    async start(...rest) {
      server = await startImapServer(engine, ...rest);
      return server;
    },
    async connect() {
      if (!server) throw new Error('start the server first');
      const c = await ImapLineClient.connect(server.ports.tls, { tls: true });
      clients.push(c);
      await c.line(); // greeting
      await c.login();
      return c;
    },
  };
}

type StartRest = Parameters<typeof startImapServer> extends [Engine, ...infer R] ? R : never;
