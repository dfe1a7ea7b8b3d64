import tls from 'node:tls';

/** No reply within this long fails the session, so a stuck server cannot hang the bench. */
const REPLY_TIMEOUT_MS = 30_000;

/**
 * A bench-only SMTP client over implicit TLS: one session (authenticated unless `auth` is omitted, for a peer
 * without SASL) sending messages back to back, timing each from the end of DATA (the final dot) to the server's reply.
 */
export class SmtpSession {
  #socket!: tls.TLSSocket;
  #buffer = '';
  #pending: { resolve: (line: string) => void; reject: (err: Error) => void } | null = null;
  #failure: Error | null = null;

  static async open(port: number, ca: string, auth?: { user: string; password: string }): Promise<SmtpSession> {
    const s = new SmtpSession();
    s.#socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost', timeout: REPLY_TIMEOUT_MS }, () => resolve(socket));
      socket.once('error', reject);
      socket.once('timeout', () => socket.destroy(new Error(`TLS connect to 127.0.0.1:${port} timed out`)));
    });
    s.#socket.setTimeout(0); // the timeout above bounds the handshake only; replies have their own timer
    s.#socket.setNoDelay(true);
    s.#socket.setEncoding('utf8');
    s.#socket.on('data', (d: string) => {
      s.#buffer += d;
      s.#drain();
    });
    // Fail the waiting command (instead of waiting forever) if the connection breaks.
    s.#socket.on('error', (err) => s.#fail(err));
    s.#socket.on('close', () => s.#fail(new Error('connection closed')));
    await s.#expect('220');
    await s.#command('EHLO bench.test', '250');
    if (auth) await s.#command(`AUTH PLAIN ${Buffer.from(`\0${auth.user}\0${auth.password}`).toString('base64')}`, '235');
    return s;
  }

  #fail(err: Error) {
    this.#failure ??= err;
    const p = this.#pending;
    this.#pending = null;
    p?.reject(err);
  }

  #drain() {
    for (;;) {
      const i = this.#buffer.indexOf('\r\n');
      if (i < 0 || !this.#pending) return;
      const line = this.#buffer.slice(0, i);
      this.#buffer = this.#buffer.slice(i + 2);
      if (/^\d{3}-/.test(line)) continue;
      const { resolve } = this.#pending;
      this.#pending = null;
      resolve(line);
    }
  }

  #reply(): Promise<string> {
    return new Promise((resolve, reject) => {
      if (this.#failure && !this.#buffer.includes('\r\n')) return reject(this.#failure);
      const timer = setTimeout(() => this.#fail(new Error(`no SMTP reply within ${REPLY_TIMEOUT_MS} ms`)), REPLY_TIMEOUT_MS);
      this.#pending = {
        resolve: (line) => (clearTimeout(timer), resolve(line)),
        reject: (err) => (clearTimeout(timer), reject(err)),
      };
      this.#drain();
    });
  }

  async #expect(code: string): Promise<string> {
    const line = await this.#reply();
    if (!line.startsWith(code)) throw new Error(`expected ${code}, got ${line}`);
    return line;
  }

  async #command(line: string, code: string): Promise<string> {
    this.#socket.write(line + '\r\n');
    return this.#expect(code);
  }

  /** Sends one message; returns milliseconds from the end of DATA to the 250. */
  async send(from: string, to: string, dotStuffedBody: Buffer): Promise<number> {
    await this.#command(`MAIL FROM:<${from}>`, '250');
    await this.#command(`RCPT TO:<${to}>`, '250');
    await this.#command('DATA', '354');
    this.#socket.write(dotStuffedBody);
    const start = process.hrtime.bigint();
    const reply = this.#reply();
    this.#socket.write('\r\n.\r\n');
    const line = await reply;
    if (!line.startsWith('250')) throw new Error(`DATA refused: ${line}`);
    return Number(process.hrtime.bigint() - start) / 1e6;
  }

  async close(): Promise<void> {
    if (this.#failure) return void this.#socket.destroy();
    this.#socket.write('QUIT\r\n');
    this.#socket.end();
  }

  /** Drops the connection at once (error paths). */
  destroy(): void {
    this.#socket.destroy();
  }
}
