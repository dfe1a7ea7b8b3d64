import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import tls from 'node:tls';
import zlib from 'node:zlib';
import type { Logger } from 'pino';
import type { MailboxRow } from '../store/types.js';
import { capabilities } from './capabilities.js';
import { type ClientCertificate, ConnectionClosedError, type ImapServerDeps, ResponseBrokenError, type SessionApi, type SessionState } from './command.js';
import { dispatch, findCommand, stateText } from './dispatcher.js';
import { CommandReader, type LiteralRequest, type ReaderEvent, type Refusal } from './parser.js';
import type { FolderMessages, SharedFolders } from './folder-messages.js';
import type { SelectedFolder } from './selected.js';
import { continuation, status } from './serializer.js';

/** Unconsumed input above which the socket is paused until the pending commands have run. */
const HIGH_WATER = 256 * 1024;
/** After BYE, how long the peer has to close before the socket is destroyed. */
const LINGER_MS = 2000;

/**
 * One IMAP connection: reads bytes into the command reader, runs one command at a time through the
 * dispatcher, writes with back-pressure, and owns the timers (pre-authentication deadline, idle timeout),
 * the BAD counter, the STARTTLS upgrade, the DEFLATE layer (COMPRESS) and the notifier subscription. Commands
 * see it as `SessionApi`.
 *
 * With COMPRESS the socket is piped into an inflater, whose output feeds the reader (pausing the inflater
 * bounds what a small compressed input can expand to), and responses go through a deflater piped into the
 * socket, sync-flushed once per turn of the event loop so each batch of responses reaches the client whole.
 */
export class Session implements SessionApi {
  readonly id = randomBytes(6).toString('hex');
  log: Logger;
  state: SessionState = 'not-authenticated';
  user: MailboxRow | null = null;
  selected: SelectedFolder | null = null;
  readonly enabled = new Set<string>();
  readonly closed: Promise<void>;
  /**
   * Resolves as soon as the session is over from the server's side: at LOGOUT (before its replies go out), or when
   * the connection is being closed. A client may connect again as soon as it reads the LOGOUT reply.
   */
  readonly ending: Promise<void>;
  #resolveEnding!: () => void;

  #socket: net.Socket;
  #secure: boolean;
  readonly #baseLog: Logger;
  #inflate: zlib.InflateRaw | null = null;
  #deflate: zlib.DeflateRaw | null = null;
  #flushScheduled = false;
  #corked = false;
  #peer: { socket: net.Socket; certificate: ClientCertificate | null } | null = null;
  #reader: CommandReader;
  #pumping = false;
  #executing = false;
  /** A running command waits for the client (SASL response): timeouts and shutdown need not wait for it. */
  #awaitingInput = false;
  #ended = false;
  #byeAfterCommand: string | null = null;
  #bad = 0;
  #unsubscribe: (() => void) | null = null;
  /** The shared message state of the selected folder, held until another is selected or the session ends. */
  #held: FolderMessages | null = null;
  #preauthTimer: NodeJS.Timeout | null = null;
  #idleTimer: NodeJS.Timeout | null = null;
  #wake: (() => void) | null = null;
  /** The notifier reported a change since IDLE last pushed updates. */
  #changed = false;
  #resolveClosed!: () => void;

  constructor(
    socket: net.Socket,
    readonly listener: 'plain' | 'tls',
    /** The client's address and port (a TLS socket does not know them: src/imap/lean-tls.ts). */
    readonly remote: string,
    readonly deps: ImapServerDeps,
    /** Starts TLS on the plain connection (STARTTLS). */
    private readonly secureSocket: (plain: net.Socket) => tls.TLSSocket,
    readonly folders: SharedFolders,
  ) {
    this.#socket = socket;
    this.#secure = listener === 'tls';
    this.log = deps.log.child({ session: this.id, remote: this.remote, listener });
    this.#baseLog = this.log;
    this.#reader = new CommandReader(deps.limits.maxLineLength, (request) => this.#literalPolicy(request));
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.ending = new Promise((resolve) => (this.#resolveEnding = resolve));
  }

  get secure(): boolean {
    return this.#secure;
  }

  get compressed(): boolean {
    return this.#deflate !== null;
  }

  get clientCertificate(): ClientCertificate | null {
    const socket = this.#socket;
    if (this.#peer?.socket === socket) return this.#peer.certificate;
    let certificate: ClientCertificate | null = null;
    if (socket instanceof tls.TLSSocket && this.deps.clientAuth) {
      const peer = socket.getPeerCertificate(true);
      if (peer && Buffer.isBuffer(peer.raw) && peer.raw.length > 0) {
        const chain: Buffer[] = [];
        for (let c = peer.issuerCertificate; c && c !== peer && chain.length < 8 && !chain.some((d) => d.equals(c.raw)); c = c.issuerCertificate) {
          chain.push(c.raw);
        }
        certificate = { der: peer.raw, chain };
      }
    }
    this.#peer = { socket, certificate };
    return certificate;
  }

  /** Where plaintext input comes from: the socket, or the inflater once COMPRESS is on. */
  get #input(): Readable {
    return this.#inflate ?? this.#socket;
  }

  start(): void {
    this.#attach(this.#socket);
    this.#socket.setNoDelay(true);
    this.#armPreauth();
    this.log.info('IMAP connection');
    // On the implicit-TLS listener the greeting waits for the handshake: the capabilities it lists depend on
    // the client certificate (AUTH=EXTERNAL).
    if (this.listener === 'tls') this.#socket.once('secure', () => this.#greet());
    else this.#greet();
  }

  #greet(): void {
    void this.send(status(null, 'OK', `${this.deps.hostname} IMAP ready`, `CAPABILITY ${this.capabilities().join(' ')}`)).catch(() => {});
  }

  capabilities(): string[] {
    return capabilities({
      secure: this.#secure,
      state: this.state,
      maxLiteralSize: this.deps.limits.maxLiteralSize,
      clientCertificate: this.state === 'not-authenticated' && this.clientCertificate !== null,
    });
  }

  async send(data: Buffer | readonly Buffer[]): Promise<void> {
    const socket = this.#socket;
    if (this.#ended || socket.destroyed) throw new ConnectionClosedError();
    const out: Writable = this.#deflate ?? socket;
    // The responses written in one turn of the event loop leave together: one TLS record, one system call.
    if (!this.#deflate && !this.#corked) {
      this.#corked = true;
      socket.cork();
      process.nextTick(() => {
        this.#corked = false;
        socket.uncork();
      });
    }
    let flowing = true;
    for (const part of Buffer.isBuffer(data) ? [data] : data) flowing = out.write(part);
    if (this.#deflate) this.#scheduleFlush();
    if (flowing) return;
    // A client that stops reading holds nothing for long: after the idle timeout the connection goes. (The
    // deflater drains only as fast as the socket does: its output is piped with back-pressure.)
    await new Promise<void>((resolve) => {
      const stalled = setTimeout(() => socket.destroy(), this.deps.limits.idleTimeoutMs);
      const done = () => {
        clearTimeout(stalled);
        out.off('drain', done);
        socket.off('close', done);
        resolve();
      };
      out.on('drain', done);
      socket.on('close', done);
    });
    if (socket.destroyed) throw new ConnectionClosedError();
  }

  async readLine(prompt: string): Promise<Buffer | null> {
    this.#reader.expectLine();
    await this.send(continuation(prompt));
    for (;;) {
      const event = this.#reader.next();
      if (event?.kind === 'line') return event.line;
      if (event?.kind === 'refused') return null;
      if (event?.kind === 'fatal') throw new ConnectionClosedError();
      if (this.#ended) throw new ConnectionClosedError();
      if (!event) await this.#awaitInput();
    }
  }

  async idle(prompt: string, push: () => Promise<void>): Promise<Buffer | null> {
    this.#reader.expectLine();
    await this.send(continuation(prompt));
    this.#armIdle();
    this.#changed = true;
    for (;;) {
      const event = this.#reader.next();
      if (event?.kind === 'line') return event.line;
      if (event?.kind === 'refused') return null;
      if (event?.kind === 'fatal') throw new ConnectionClosedError();
      if (this.#ended) throw new ConnectionClosedError();
      if (this.#byeAfterCommand) {
        // Shutdown or timeout while updates were being pushed: no DONE to wait for.
        this.close(this.#byeAfterCommand);
        throw new ConnectionClosedError();
      }
      if (event) continue;
      if (this.#changed) {
        this.#changed = false;
        await push();
        continue;
      }
      await this.#awaitInput();
    }
  }

  /** Sync-flushes the deflater once the responses written in this turn of the event loop are in it. */
  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      const deflate = this.#deflate;
      if (deflate && !deflate.destroyed && !deflate.writableEnded) deflate.flush(zlib.constants.Z_SYNC_FLUSH);
    });
  }

  /** Lets the input flow and waits until the reader has something (or the connection ends). */
  async #awaitInput(): Promise<void> {
    this.#input.resume();
    this.#awaitingInput = true;
    try {
      await new Promise<void>((resolve) => (this.#wake = resolve));
    } finally {
      this.#awaitingInput = false;
    }
  }

  #loginFailures = 0;

  loginFailed(): void {
    if (++this.#loginFailures >= this.deps.limits.maxAuthFailuresPerConnection) {
      this.#byeAfterCommand = 'Too many failed login attempts';
    }
  }

  authenticated(mailbox: MailboxRow): void {
    this.user = mailbox;
    this.state = 'authenticated';
    if (this.#preauthTimer) clearTimeout(this.#preauthTimer);
    this.#preauthTimer = null;
    this.log = this.log.child({ user: mailbox.address });
    this.#unsubscribe = this.deps.notifier.subscribe(mailbox.id, (event) => {
      this.selected?.onEvent(event);
      // Wakes an IDLE command (harmless anywhere else: a woken wait checks its condition again).
      this.#changed = true;
      const wake = this.#wake;
      this.#wake = null;
      wake?.();
    });
    this.log.info('IMAP login');
  }

  select(folder: SelectedFolder | null): void {
    const next = folder?.messages ?? null;
    if (this.#held !== next) {
      this.#releaseFolder();
      this.#held = next;
      // A SELECT that finishes after the connection ended holds nothing.
      if (this.#ended) this.#releaseFolder();
    }
    this.selected = folder;
    this.state = folder ? 'selected' : 'authenticated';
  }

  #releaseFolder(): void {
    if (this.#held) this.folders.release(this.#held);
    this.#held = null;
  }

  unauthenticate(): void {
    const address = this.user?.address;
    this.select(null);
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    this.user = null;
    this.state = 'not-authenticated';
    this.enabled.clear();
    this.log = this.#baseLog;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    this.#armPreauth();
    this.log.info({ user: address }, 'IMAP unauthenticate');
  }

  logout(): void {
    this.state = 'logout';
    this.#resolveEnding();
  }

  async startTls(): Promise<void> {
    const plain = this.#socket;
    this.#detach(plain);
    plain.on('error', () => {});
    this.#reader.reset(); // nothing sent before the handshake may be acted on
    const secure = this.secureSocket(plain);
    this.#socket = secure;
    this.#secure = true;
    this.#attach(secure);
    await new Promise<void>((resolve) => {
      secure.once('secure', resolve);
      secure.once('close', resolve);
    });
    this.log.debug('STARTTLS done');
  }

  startCompression(): void {
    const socket = this.#socket;
    // The client compresses from the command after COMPRESS on, once it has seen the OK: bytes already
    // buffered were sent before that, in clear, by a client that did not wait.
    this.#reader.reset();
    socket.off('data', this.#onData);
    socket.off('end', this.#onEnd);
    const inflate = zlib.createInflateRaw();
    const deflate = zlib.createDeflateRaw();
    inflate.on('data', this.#onData);
    inflate.on('end', this.#onEnd);
    inflate.on('error', (err) => {
      this.log.debug({ err: err.message }, 'IMAP compressed input is invalid');
      this.close('Invalid compressed data');
    });
    deflate.on('error', (err) => {
      this.log.debug({ err: err.message }, 'IMAP compression failed');
      socket.destroy();
    });
    this.#inflate = inflate;
    this.#deflate = deflate;
    socket.pipe(inflate);
    deflate.pipe(socket);
    this.log.debug('COMPRESS=DEFLATE active');
  }

  /** Server shutdown: BYE now when idle, else once the running command has answered. */
  shutdown(text = 'Server shutting down'): void {
    this.#timeout(text);
  }

  /** Sends BYE (when given), ends the connection, and destroys it if the peer lingers. */
  close(bye: string | null): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#resolveEnding();
    this.#clearTimers();
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    this.#releaseFolder();
    const socket = this.#socket;
    if (!socket.destroyed) {
      const byeLine = bye ? status(null, 'BYE', bye) : undefined;
      // The deflater's end flushes what it holds (BYE included), and the pipe then ends the socket.
      if (this.#deflate && !this.#deflate.destroyed) this.#deflate.end(byeLine);
      else if (byeLine) socket.end(byeLine);
      else socket.end();
      setTimeout(() => socket.destroy(), LINGER_MS).unref();
    }
    this.#wake?.();
  }

  // --- input ------------------------------------------------------------------------------------------

  #onData = (chunk: Buffer) => {
    this.#reader.push(chunk);
    if (this.state !== 'not-authenticated' && !this.#executing) this.#armIdle();
    if (this.#reader.buffered > HIGH_WATER) this.#input.pause();
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
    void this.#pump();
  };

  #onError = (err: Error) => {
    this.log.debug({ code: (err as NodeJS.ErrnoException).code }, 'IMAP socket error');
  };

  #onClose = () => {
    this.#inflate?.destroy();
    this.#deflate?.destroy();
    if (!this.#ended) {
      this.#ended = true;
      this.#clearTimers();
      this.#unsubscribe?.();
      this.#unsubscribe = null;
      this.#releaseFolder();
    }
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
    this.log.info('IMAP connection closed');
    this.#resolveEnding();
    this.#resolveClosed();
  };

  #onEnd = () => this.close(null);

  #attach(socket: net.Socket): void {
    socket.on('data', this.#onData);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
    socket.on('end', this.#onEnd);
  }

  #detach(socket: net.Socket): void {
    socket.off('data', this.#onData);
    socket.off('error', this.#onError);
    socket.off('close', this.#onClose);
    socket.off('end', this.#onEnd);
  }

  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (!this.#ended) {
        const event = this.#reader.next();
        if (!event) break;
        await this.#handle(event);
      }
    } catch (err) {
      if (err instanceof ResponseBrokenError) {
        this.log.error({ err }, 'IMAP response broken off: connection cut');
        this.close(null);
        this.#socket.destroy();
      } else if (!(err instanceof ConnectionClosedError)) {
        this.log.error({ err }, 'IMAP session failed');
        this.close('Internal server error');
      }
    } finally {
      this.#pumping = false;
      this.#executing = false;
    }
    if (!this.#ended && this.#reader.buffered <= HIGH_WATER) this.#input.resume();
  }

  async #handle(event: ReaderEvent): Promise<void> {
    switch (event.kind) {
      case 'command': {
        const { tag, command } = event.frame;
        this.log.debug({ tag, command }, 'IMAP command');
        this.#executing = true;
        if (this.#idleTimer) clearTimeout(this.#idleTimer);
        let outcome: 'OK' | 'NO' | 'BAD';
        try {
          outcome = await dispatch(this, event.frame);
        } finally {
          this.#executing = false;
        }
        this.#countBad(outcome === 'BAD');
        if (this.state === 'logout') this.close(null);
        else if (this.#byeAfterCommand) this.close(this.#byeAfterCommand);
        else if (this.state !== 'not-authenticated') this.#armIdle();
        return;
      }
      case 'continue':
        await this.send(continuation('Ready for literal data'));
        return;
      case 'refused':
        this.log.debug({ tag: event.tag, command: event.command, status: event.refusal.status }, 'IMAP command refused');
        await this.send(status(event.tag, event.refusal.status, event.refusal.text, event.refusal.code));
        this.#countBad(event.refusal.status === 'BAD');
        return;
      case 'fatal':
        this.close(event.text);
        return;
      case 'line':
        return; // only expected inside readLine
    }
  }

  /** Literal sizes are decided before the bytes are read: the message limit for APPEND, the line limit otherwise. */
  #literalPolicy(request: LiteralRequest): Refusal | null {
    const { maxLineLength, maxLiteralSize } = this.deps.limits;
    const spec = findCommand(request.command);
    if (!spec) return { status: 'BAD', text: 'Unknown command' };
    if (!spec.states.includes(this.state)) return { status: 'BAD', text: stateText(spec, this.state) };
    if (spec.literal === 'message') {
      if (request.size > maxLiteralSize || request.received + request.size > maxLiteralSize + maxLineLength) {
        return { status: 'NO', code: 'TOOBIG', text: `Message too large (limit ${maxLiteralSize} bytes)` };
      }
      return null;
    }
    if (request.received + request.size > maxLineLength) return { status: 'BAD', text: 'Literal too large for this command' };
    return null;
  }

  #countBad(bad: boolean): void {
    if (!bad) {
      this.#bad = 0;
      return;
    }
    if (++this.#bad >= this.deps.limits.maxBadCommands) this.close('Too many invalid commands');
  }

  // --- timers -----------------------------------------------------------------------------------------

  #armPreauth(): void {
    if (this.#preauthTimer) clearTimeout(this.#preauthTimer);
    this.#preauthTimer = setTimeout(() => this.#timeout('Autologout; authentication took too long'), this.deps.limits.preauthTimeoutMs);
    this.#preauthTimer.unref();
  }

  #armIdle(): void {
    if (this.#ended) return;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => this.#timeout('Autologout; idle for too long'), this.deps.limits.idleTimeoutMs);
    this.#idleTimer.unref();
  }

  #timeout(text: string): void {
    if (this.#executing && !this.#awaitingInput) this.#byeAfterCommand = text;
    else this.close(text);
  }

  #clearTimers(): void {
    if (this.#preauthTimer) clearTimeout(this.#preauthTimer);
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#preauthTimer = null;
    this.#idleTimer = null;
  }
}
