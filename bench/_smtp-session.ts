import tls from 'node:tls';

/**
 * A bench-only SMTP client over implicit TLS: one authenticated session sending messages back to back,
 * timing each from the end of DATA (the final dot) to the server's reply.
 */
export class SmtpSession {
  #socket!: tls.TLSSocket;
  #buffer = '';
  #pending: ((line: string) => void) | null = null;

  static async open(port: number, ca: string, user: string, password: string): Promise<SmtpSession> {
    const s = new SmtpSession();
    s.#socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => resolve(socket));
      socket.once('error', reject);
    });
    s.#socket.setNoDelay(true);
    s.#socket.setEncoding('utf8');
    s.#socket.on('data', (d: string) => {
      s.#buffer += d;
      s.#drain();
    });
    await s.#expect('220');
    await s.#command('EHLO bench.test', '250');
    await s.#command(`AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`).toString('base64')}`, '235');
    return s;
  }

  #drain() {
    for (;;) {
      const i = this.#buffer.indexOf('\r\n');
      if (i < 0 || !this.#pending) return;
      const line = this.#buffer.slice(0, i);
      this.#buffer = this.#buffer.slice(i + 2);
      if (/^\d{3}-/.test(line)) continue;
      const resolve = this.#pending;
      this.#pending = null;
      resolve(line);
    }
  }

  #reply(): Promise<string> {
    return new Promise((resolve) => {
      this.#pending = resolve;
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
    this.#socket.write('QUIT\r\n');
    this.#socket.end();
  }
}
