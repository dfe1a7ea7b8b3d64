/**
 * A plain SMTP client for the relay tests, speaking as a peer operator does: EHLO, STARTTLS with (or without)
 * a client certificate, then MAIL/RCPT/DATA one command at a time, keeping every reply, including the refusals
 * that client libraries turn into exceptions.
 */
import net from 'node:net';
import tls from 'node:tls';

export interface ClientCertificate {
  cert: string;
  key: string;
}

export class RelayClient {
  #socket: net.Socket;
  #buffer = '';
  #waiters: (() => void)[] = [];
  #closed = false;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    this.#attach();
  }

  /** Connects and reads the greeting. */
  static async connect(port: number): Promise<{ client: RelayClient; greeting: string }> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
      s.once('error', reject);
    });
    const client = new RelayClient(socket);
    return { client, greeting: await client.reply() };
  }

  #attach(): void {
    this.#socket.setEncoding('utf8');
    this.#socket.on('data', (d: string) => {
      this.#buffer += d;
      this.#wake();
    });
    this.#socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
    this.#socket.on('error', () => undefined);
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** The next complete reply (all its lines, joined by LF). */
  async reply(): Promise<string> {
    for (;;) {
      const lines = this.#buffer.split('\r\n');
      for (let i = 0; i < lines.length - 1; i++) {
        if (/^\d{3}(?: |$)/.test(lines[i]!)) {
          this.#buffer = lines.slice(i + 1).join('\r\n');
          return lines.slice(0, i + 1).join('\n');
        }
      }
      if (this.#closed) throw new Error(`connection closed; pending: ${JSON.stringify(this.#buffer)}`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  async command(line: string): Promise<string> {
    this.#socket.write(`${line}\r\n`);
    return this.reply();
  }

  /** STARTTLS, then the TLS handshake presenting `certificate` when given; returns the STARTTLS reply. */
  async startTls(ca: string, certificate?: ClientCertificate): Promise<string> {
    const answer = await this.command('STARTTLS');
    if (!answer.startsWith('220')) return answer;
    const plain = this.#socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    this.#socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ socket: plain, servername: 'localhost', ca, ...(certificate ?? {}) }, () => resolve(s));
      s.once('error', reject);
    });
    this.#attach();
    return answer;
  }

  /** DATA, then the message (dot-stuffed) and the final dot; returns the reply to DATA when it is not 354, else the final one. */
  async data(message: string | Buffer): Promise<string> {
    const go = await this.command('DATA');
    if (!go.startsWith('354')) return go;
    const text = (typeof message === 'string' ? message : message.toString('latin1')).replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    this.#socket.write(Buffer.from(text.endsWith('\r\n') ? text : `${text}\r\n`, 'latin1'));
    this.#socket.write('.\r\n');
    return this.reply();
  }

  close(): void {
    this.#socket.destroy();
  }
}

export interface Exchange {
  ehlo: string;
  starttls?: string;
  mail: string;
  rcpt: string[];
  data?: string;
}

/**
 * One whole relay transaction: EHLO, STARTTLS (unless `plain`), EHLO, MAIL FROM, each RCPT TO, and DATA when
 * some recipient was accepted. Stops at the first refused step after MAIL FROM.
 */
export async function relay(
  port: number,
  o: { ca: string; certificate?: ClientCertificate; plain?: boolean; mailFrom: string; rcptTo: string[]; message?: string | Buffer },
): Promise<Exchange> {
  const { client } = await RelayClient.connect(port);
  try {
    let ehlo = await client.command('EHLO mx.peer.test');
    const exchange: Exchange = { ehlo, mail: '', rcpt: [] };
    if (!o.plain) {
      exchange.starttls = await client.startTls(o.ca, o.certificate);
      ehlo = exchange.ehlo = await client.command('EHLO mx.peer.test');
    }
    exchange.mail = await client.command(`MAIL FROM:<${o.mailFrom}>`);
    if (!exchange.mail.startsWith('250')) return exchange;
    for (const rcpt of o.rcptTo) exchange.rcpt.push(await client.command(`RCPT TO:<${rcpt}>`));
    if (o.message !== undefined && exchange.rcpt.some((r) => r.startsWith('250'))) exchange.data = await client.data(o.message);
    await client.command('QUIT').catch(() => '');
    return exchange;
  } finally {
    client.close();
  }
}
