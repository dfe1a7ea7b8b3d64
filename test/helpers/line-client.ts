import net from 'node:net';
import tls from 'node:tls';

/**
 * A minimal line-oriented client for speaking raw SMTP to the server in tests (what a broken or hostile
 * client would send, which real client libraries refuse to produce).
 */
export class LineClient {
  #socket: net.Socket;
  #buffer = '';
  #waiters: (() => void)[] = [];
  closed = false;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    this.#attach();
  }

  static connect(port: number, options: { tls?: boolean; ca?: string } = {}): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const socket = options.tls
        ? tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: options.ca, rejectUnauthorized: !!options.ca })
        : net.connect({ host: '127.0.0.1', port });
      socket.once(options.tls ? 'secureConnect' : 'connect', () => resolve(new LineClient(socket)));
      socket.once('error', reject);
    });
  }

  #attach() {
    this.#socket.setEncoding('utf8');
    this.#socket.on('data', (d: string) => {
      this.#buffer += d;
      this.#wake();
    });
    this.#socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    this.#socket.on('error', () => undefined);
  }

  #wake() {
    for (const w of this.#waiters.splice(0)) w();
  }

  send(line: string | Buffer): void {
    this.#socket.write(typeof line === 'string' ? line + '\r\n' : line);
  }

  /** Reads one SMTP reply (all its lines); resolves with the lines. */
  async reply(timeoutMs = 10_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines = this.#buffer.split('\r\n');
      for (let i = 0; i < lines.length - 1; i++) {
        if (/^\d{3} /.test(lines[i]!) || /^\d{3}$/.test(lines[i]!)) {
          const reply = lines.slice(0, i + 1);
          this.#buffer = lines.slice(i + 1).join('\r\n');
          return reply;
        }
      }
      if (this.closed) throw new Error(`connection closed; pending: ${JSON.stringify(this.#buffer)}`);
      if (Date.now() > deadline) throw new Error(`timeout waiting for reply; pending: ${JSON.stringify(this.#buffer)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async command(line: string): Promise<string> {
    this.send(line);
    return (await this.reply()).join('\n');
  }

  /** Upgrades the connection after a `220` to STARTTLS. */
  async startTls(ca?: string): Promise<void> {
    const plain = this.#socket;
    plain.removeAllListeners('data');
    this.#socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ socket: plain, servername: 'localhost', ca, rejectUnauthorized: !!ca }, () => resolve(s));
      s.once('error', reject);
    });
    this.#attach();
  }

  close(): void {
    this.#socket.destroy();
  }
}
