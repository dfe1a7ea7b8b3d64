import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acceptTls } from '../../src/imap/lean-tls.js';
import { openssl } from '../helpers/openssl-certs.js';

/**
 * TLS over a JS stream on an accepted socket (src/imap/lean-tls.ts): what a native TLS socket does, it must do —
 * deliver both ways with backpressure, pass each side's end and reset to the other, send the alert of a refused
 * handshake — and never leave the socket open behind it.
 */
describe('TLS over a JS stream on an accepted socket', () => {
  let server: net.Server;
  let port: number;
  let ca: string;
  const accepted: { raw: net.Socket; secure: tls.TLSSocket; errors: string[] }[] = [];
  /** What the server does with each line it reads. */
  let onLine: (secure: tls.TLSSocket, line: string) => void = () => {};

  const dir = mkdtempSync(path.join(tmpdir(), 'mss-lean-tls-'));

  beforeAll(async () => {
    await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-days', '1'], dir);
    ca = readFileSync(path.join(dir, 'cert.pem'), 'utf8');
    const secureContext = tls.createSecureContext({ key: readFileSync(path.join(dir, 'key.pem')), cert: ca, minVersion: 'TLSv1.2' });
    server = net.createServer((raw) => {
      const secure = acceptTls(raw, { secureContext });
      const entry = { raw, secure, errors: [] as string[] };
      accepted.push(entry);
      secure.on('error', (err: NodeJS.ErrnoException) => entry.errors.push(err.code ?? err.message));
      secure.on('secure', () => secure.write('* OK ready\r\n'));
      secure.on('data', (chunk: Buffer) => onLine(secure, chunk.toString().trim()));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A client on its own TCP socket (so that the test can reset it), once the greeting arrived. */
  async function client(): Promise<{ tcp: net.Socket; secure: tls.TLSSocket; served: (typeof accepted)[number] }> {
    const tcp = net.connect(port, '127.0.0.1');
    tcp.on('error', () => {});
    const secure = tls.connect({ socket: tcp, ca, servername: 'localhost' });
    secure.on('error', () => {});
    await once(secure, 'data');
    return { tcp, secure, served: accepted.at(-1)! };
  }

  /** Resolves at 'close' (an 'error' before it is expected here, and does not reject). */
  const closed = (socket: net.Socket) => new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));

  it('carries 16 MB to a slow reader and lines back, then closes both sockets at the server’s end', async () => {
    const chunk = Buffer.alloc(1 << 20, 'x');
    onLine = (secure, line) => {
      if (line !== 'SEND') return secure.end('* BYE\r\n');
      let sent = 0;
      const more = () => {
        while (sent < 16) {
          sent++;
          if (!secure.write(chunk)) return void secure.once('drain', more);
        }
        secure.write('DONE\r\n');
      };
      more();
    };
    const { secure, served } = await client();
    let received = 0;
    let tail = '';
    const done = new Promise<void>((resolve) => {
      secure.on('data', (data: Buffer) => {
        received += data.length;
        tail = (tail + data.toString('latin1')).slice(-8);
        if (tail.endsWith('DONE\r\n')) resolve();
        // A reader slower than the writer: the server's writes must wait for it.
        secure.pause();
        setTimeout(() => secure.resume(), 1);
      });
    });
    secure.write('SEND\r\n');
    await done;
    expect(received).toBe(16 * (1 << 20) + 'DONE\r\n'.length);
    expect(served.secure.writableLength).toBe(0);
    const bye = once(secure, 'data');
    secure.write('QUIT\r\n');
    expect(String((await bye)[0])).toBe('* BYE\r\n');
    await Promise.all([closed(secure), closed(served.raw)]);
    expect(served.secure.destroyed).toBe(true);
  });

  it('closes the socket when the client ends, resets, or the server destroys', async () => {
    onLine = (secure) => secure.destroy();
    const ended = await client();
    ended.secure.end();
    await Promise.all([closed(ended.served.raw), closed(ended.served.secure)]);

    const reset = await client();
    reset.tcp.resetAndDestroy();
    await Promise.all([closed(reset.served.raw), closed(reset.served.secure)]);

    const destroyed = await client();
    destroyed.secure.write('anything\r\n');
    await Promise.all([closed(destroyed.served.raw), closed(destroyed.secure)]);
  });

  it('sends the protocol-version alert to a TLS 1.1 client and closes', async () => {
    const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    await once(child, 'exit');
    expect(out).toMatch(/alert protocol version/);
    const served = accepted.at(-1)!;
    await closed(served.raw);
    expect(served.errors.join(' ')).toMatch(/ERR_SSL_UNSUPPORTED_PROTOCOL|unsupported protocol/i);
  });

  it('drops bytes that are not TLS with an error, and the socket', async () => {
    const tcp = net.connect(port, '127.0.0.1');
    tcp.on('error', () => {});
    await once(tcp, 'connect');
    tcp.write('a1 LOGIN someone secret\r\n\r\n');
    await closed(tcp);
    const served = accepted.at(-1)!;
    await closed(served.raw);
    expect(served.errors.length).toBe(1);
  });
});
