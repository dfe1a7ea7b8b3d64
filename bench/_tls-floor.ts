/**
 * What one idle TLS connection costs a bare Node.js server on this machine: the floor under any Node IMAP server's
 * memory per connection (bench/imap.ts, case (c)). A child process serves TLS with a throwaway certificate and
 * answers each line with one short line; this process opens `count` connections, each exchanging a line (as a
 * login would), leaves them idle, and the child reports its RSS growth per connection after a GC.
 *
 * `transport`: `lean` is ours (src/imap/lean-tls.ts, TLS over a JS stream: ADR 0018), `native` Node's TLS on the
 * socket's handle, as `tls.createServer` serves it.
 */
import { execFileSync, fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';

const SERVER = `
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
const [keyFile, certFile, transport, leanModule] = process.argv.slice(2);
const [key, cert] = [keyFile, certFile].map((f) => readFileSync(f));
const { acceptTls } = await import(leanModule);
const secureContext = tls.createSecureContext({ key, cert });
const sockets = [];
const serve = (s) => {
  sockets.push(s);
  s.write('* OK ready\\r\\n');
  s.on('data', () => s.write('a1 OK done\\r\\n'));
};
const server = transport === 'native'
  ? tls.createServer({ key, cert }, serve)
  : net.createServer((raw) => { const s = acceptTls(raw, { secureContext }); s.on('secure', () => serve(s)); });
const settle = async () => { for (let i = 0; i < 3; i++) { global.gc(); await new Promise((r) => setTimeout(r, 300)); } return process.memoryUsage().rss; };
process.on('message', async (m) => {
  if (m === 'before') process.send({ rss: await settle() });
  if (m === 'after') process.send({ rss: await settle(), connections: sockets.length });
});
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
`;

export async function tlsFloorKbPerConnection(count: number, transport: 'lean' | 'native'): Promise<number> {
  const dir = mkdtempSync(path.join(tmpdir(), 'mss-tls-floor-'));
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  const script = path.join(dir, 'server.mjs');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=localhost', '-days', '1'], { stdio: 'ignore' });
  writeFileSync(script, SERVER);
  const leanModule = new URL('../dist/src/imap/lean-tls.js', import.meta.url).href;
  const child = fork(script, [key, cert, transport, leanModule], { execArgv: ['--expose-gc'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const next = () => new Promise<Record<string, number>>((resolve) => child.once('message', (m) => resolve(m as Record<string, number>)));
  const sockets: tls.TLSSocket[] = [];
  try {
    const { port } = await next();
    child.send('before');
    const before = (await next()).rss!;
    for (let i = 0; i < count; i++) {
      await new Promise<void>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: port!, rejectUnauthorized: false, ca: readFileSync(cert) }, () => s.write('a1 LOGIN user password\r\n'));
        let lines = 0;
        s.on('data', () => {
          if (++lines === 2) resolve();
        });
        s.once('error', reject);
        sockets.push(s);
      });
    }
    child.send('after');
    const after = await next();
    if (after.connections !== count) throw new Error(`the TLS floor server holds ${after.connections} connections, not ${count}`);
    return (after.rss! - before) / count / 1024;
  } finally {
    for (const s of sockets) s.destroy();
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
