/**
 * A minimal IMAP client for the benches, on a raw TLS socket: it frames responses (lines and `{n}` literals)
 * without parsing them further, so that the time measured is the server's, not a client library's. Commands may
 * be pipelined: each gets its own tag, and the untagged responses that arrive while commands are outstanding
 * are credited to the oldest one. Only what the bench needs is understood: the tagged status, continuation
 * requests (synchronising literals, IDLE) and `[CAPABILITY ...]` / `[APPENDUID v uid]` response codes.
 */
import tls from 'node:tls';

/** A command not answered within this long (unless told otherwise) fails the connection: a stuck server cannot hang the bench. */
export const REPLY_TIMEOUT_MS = 10 * 60_000;
const LF = 0x0a;

export interface Reply {
  status: 'OK' | 'NO' | 'BAD';
  /** The tagged line after the status. */
  text: string;
  /** Untagged responses (without the trailing CRLF), only when `collect` was asked. */
  untagged: string[];
  /** Bytes of the whole response, untagged ones included. */
  bytes: number;
  /** From the command's write to its tagged response. */
  ms: number;
}

interface Pending {
  tag: string;
  started: bigint;
  untagged: string[];
  bytes: number;
  collect: boolean;
  /** A continuation request (`+`) is expected: what to do with it. */
  onContinue: (() => void) | null;
  /** Fails the connection if the reply is late (none for IDLE until DONE). */
  timer: NodeJS.Timeout | null;
  resolve(r: Reply): void;
  reject(err: Error): void;
}

export class ImapError extends Error {}
/** A command was not answered in time (the connection is then closed). */
export class ReplyTimeoutError extends ImapError {}

export interface CommandOptions {
  /** Keep the untagged responses' text in the reply. */
  collect?: boolean;
  literal?: Buffer;
  /** ms; default REPLY_TIMEOUT_MS, 0 for none. */
  timeoutMs?: number;
}

export class ImapClient {
  readonly capabilities = new Set<string>();
  #socket!: tls.TLSSocket;
  #buf: Buffer = Buffer.alloc(0);
  /** Where the response being framed starts, and how far it has been scanned. */
  #start = 0;
  #scan = 0;
  #pending: Pending[] = [];
  #byTag = new Map<string, Pending>();
  #next = 1;
  #failure: Error | null = null;
  #greeting: { resolve(): void; reject(err: Error): void } | null = null;

  /** Connects over implicit TLS and waits for the greeting (its CAPABILITY code is recorded). */
  static async connect(port: number, host = '127.0.0.1'): Promise<ImapClient> {
    const c = new ImapClient();
    // The certificates are self-signed bench ones: not verified, for both servers alike.
    c.#socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ host, port, servername: 'localhost', rejectUnauthorized: false }, () => resolve(s));
      s.once('error', reject);
    });
    c.#socket.setNoDelay(true);
    c.#socket.on('data', (d: Buffer) => c.#onData(d));
    c.#socket.on('error', (err) => c.#fail(err));
    c.#socket.on('close', () => c.#fail(new ImapError('connection closed')));
    await new Promise<void>((resolve, reject) => {
      c.#greeting = { resolve, reject };
      if (c.#failure) reject(c.#failure);
    });
    return c;
  }

  /**
   * Sends `tag text` (and a literal, non-synchronising when LITERAL+ is advertised); resolves on the tagged reply.
   * `timeoutMs` (default REPLY_TIMEOUT_MS; 0 = none) bounds the wait: past it the connection is failed.
   */
  command(text: string, opts: CommandOptions = {}): Promise<Reply> {
    if (this.#failure) return Promise.reject(this.#failure);
    const tag = `a${this.#next++}`;
    return new Promise<Reply>((resolve, reject) => {
      const p: Pending = { tag, started: process.hrtime.bigint(), untagged: [], bytes: 0, collect: opts.collect ?? false, onContinue: null, timer: null, resolve, reject };
      const timeoutMs = opts.timeoutMs ?? REPLY_TIMEOUT_MS;
      if (timeoutMs > 0) p.timer = setTimeout(() => this.#fail(new ReplyTimeoutError(`${text.split(' ').slice(0, 3).join(' ')}: no reply within ${timeoutMs} ms`)), timeoutMs);
      this.#pending.push(p);
      this.#byTag.set(tag, p);
      const literal = opts.literal;
      if (!literal) {
        this.#socket.write(`${tag} ${text}\r\n`);
      } else if (this.capabilities.has('LITERAL+')) {
        this.#socket.write(Buffer.concat([Buffer.from(`${tag} ${text} {${literal.length}+}\r\n`), literal, Buffer.from('\r\n')]));
      } else {
        p.onContinue = () => this.#socket.write(Buffer.concat([literal, Buffer.from('\r\n')]));
        this.#socket.write(`${tag} ${text} {${literal.length}}\r\n`);
      }
    });
  }

  /** Like `command`, but a NO or BAD rejects. */
  async ok(text: string, opts: CommandOptions = {}): Promise<Reply> {
    const r = await this.command(text, opts);
    if (r.status !== 'OK') throw new ImapError(`${text.split(' ').slice(0, 3).join(' ')}: ${r.status} ${r.text}`);
    return r;
  }

  async login(user: string, password: string): Promise<void> {
    await this.ok(`LOGIN ${quote(user)} ${quote(password)}`);
  }

  /**
   * Starts IDLE and resolves once the server has answered with its continuation; `done()` ends it. The reply
   * to the IDLE command itself is what `done()` resolves to.
   */
  idle(): { started: Promise<void>; done: () => Promise<Reply> } {
    let started!: () => void;
    const startedP = new Promise<void>((resolve) => (started = resolve));
    const reply = this.command('IDLE', { timeoutMs: 0 });
    const p = this.#pending[this.#pending.length - 1]!;
    p.onContinue = () => started();
    reply.catch(() => {}); // surfaced by done()
    return {
      started: Promise.race([startedP, reply.then((r) => Promise.reject(new ImapError(`IDLE: ${r.status} ${r.text}`)))]),
      done: () => {
        p.timer = setTimeout(() => this.#fail(new ReplyTimeoutError('IDLE: no reply to DONE')), REPLY_TIMEOUT_MS);
        this.#socket.write('DONE\r\n');
        return reply;
      },
    };
  }

  async logout(): Promise<void> {
    try {
      await this.command('LOGOUT');
    } catch {
      // the server may close before we read its OK
    }
    this.destroy();
  }

  destroy(): void {
    this.#fail(new ImapError('destroyed'));
  }

  #fail(err: Error): void {
    if (!this.#failure) this.#failure = err;
    this.#greeting?.reject(err);
    this.#greeting = null;
    for (const p of this.#pending) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(err);
    }
    this.#pending = [];
    this.#byTag.clear();
    this.#socket?.destroy();
  }

  #onData(chunk: Buffer): void {
    // Keep only the unconsumed part: complete responses are handled as soon as they are framed.
    this.#buf = this.#start < this.#buf.length ? Buffer.concat([this.#buf.subarray(this.#start), chunk]) : chunk;
    this.#scan -= this.#start;
    this.#start = 0;
    if (this.#scan < 0) this.#scan = 0;
    const buf = this.#buf;
    for (;;) {
      const lf = buf.indexOf(LF, this.#scan);
      if (lf < 0) return;
      // `{n}` at the end of the line: n bytes of literal follow, then the response goes on.
      let literal = -1;
      if (lf >= 3 && buf[lf - 1] === 0x0d && buf[lf - 2] === 0x7d /* } */) {
        let k = lf - 3;
        let n = 0;
        let mul = 1;
        while (k >= 0 && buf[k]! >= 0x30 && buf[k]! <= 0x39) {
          n += (buf[k]! - 0x30) * mul;
          mul *= 10;
          k--;
        }
        if (k >= 0 && buf[k] === 0x7b /* { */ && mul > 1) literal = n;
      }
      if (literal >= 0) {
        this.#scan = lf + 1 + literal;
        if (this.#scan > buf.length) return; // the literal is not all here: wait (the scan resumes after it)
        continue;
      }
      this.#handle(buf, this.#start, lf + 1);
      this.#start = this.#scan = lf + 1;
      if (this.#failure) return;
    }
  }

  #handle(buf: Buffer, from: number, to: number): void {
    const first = buf[from];
    if (first === 0x2a /* * */) {
      if (this.#greeting) {
        const line = buf.toString('latin1', from, to);
        this.#capabilitiesFrom(line);
        if (/^\* (OK|PREAUTH)/.test(line)) this.#greeting.resolve();
        else this.#greeting.reject(new ImapError(`greeting: ${line.trim()}`));
        this.#greeting = null;
        return;
      }
      const p = this.#pending[0];
      if (!p) return;
      p.bytes += to - from;
      if (p.collect) p.untagged.push(buf.toString('latin1', from, to - 2));
      else if (to - from > 14 && buf[from + 2] === 0x43 /* C */ && buf.toString('latin1', from, from + 13) === '* CAPABILITY ') this.#capabilitiesFrom(`[${buf.toString('latin1', from + 2, to - 2)}]`);
      return;
    }
    if (first === 0x2b /* + */) {
      const p = this.#pending.find((q) => q.onContinue);
      if (p) {
        const go = p.onContinue!;
        p.onContinue = null;
        go();
      }
      return;
    }
    const line = buf.toString('latin1', from, to - 2);
    const sp = line.indexOf(' ');
    const p = this.#byTag.get(line.slice(0, sp));
    if (!p) return this.#fail(new ImapError(`unexpected response: ${line.slice(0, 200)}`));
    this.#byTag.delete(p.tag);
    this.#pending.splice(this.#pending.indexOf(p), 1);
    const rest = line.slice(sp + 1);
    const sp2 = rest.indexOf(' ');
    const status = (sp2 < 0 ? rest : rest.slice(0, sp2)).toUpperCase();
    const text = sp2 < 0 ? '' : rest.slice(sp2 + 1);
    this.#capabilitiesFrom(text);
    p.bytes += to - from;
    if (p.timer) clearTimeout(p.timer);
    p.resolve({
      status: status === 'OK' || status === 'NO' ? status : 'BAD',
      text,
      untagged: p.untagged,
      bytes: p.bytes,
      ms: Number(process.hrtime.bigint() - p.started) / 1e6,
    });
  }

  #capabilitiesFrom(text: string): void {
    const m = /\[CAPABILITY ([^\]]*)\]/i.exec(text);
    if (!m) return;
    this.capabilities.clear();
    for (const c of m[1]!.trim().split(/\s+/)) this.capabilities.add(c.toUpperCase());
  }
}

export function quote(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** The numbers of `* SEARCH 1 2 3` (or `* ESEARCH ... ALL 1:3,5`) responses. */
export function searchHits(untagged: readonly string[]): number[] {
  const out: number[] = [];
  for (const line of untagged) {
    if (/^\* SEARCH\b/i.test(line)) {
      for (const w of line.slice(8).trim().split(/\s+/)) if (/^\d+$/.test(w)) out.push(Number(w));
    }
  }
  return out;
}

/** `[APPENDUID <validity> <uid>]` in an APPEND reply. */
export function appendUid(reply: Reply): number | null {
  const m = /\[APPENDUID \d+ (\d+)\]/i.exec(reply.text);
  return m ? Number(m[1]) : null;
}
