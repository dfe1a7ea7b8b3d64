/**
 * SMTP submission throughput: N messages of each size over K concurrent TLS-authenticated sessions, reused
 * (smtp-server waits 100 ms before each greeting), into local mailboxes. The server runs as the real CLI in
 * its own process. Durability: every 250 follows an fsync'd SQLite WAL commit (synchronous=FULL).
 *
 *   npm run bench -- smtp-submit [--n=2000] [--k=8] [--runs=3]
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SmtpSession } from './_smtp-session.js';

const arg = (name: string, dflt: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt);
const N = arg('n', 2000);
const K = arg('k', 8);
const RUNS = arg('runs', 3);
const repo = path.resolve(import.meta.dirname, '..');

function message(size: number, i: number): Buffer {
  const head = [
    'From: Dr Jean DUPONT <jean.dupont@hopital-demo.mssante.test>',
    'To: <claire.martin@hopital-demo.mssante.test>',
    `Subject: Compte rendu ${i}`,
    `Message-ID: <bench-${i}-${size}@hopital-demo.mssante.test>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    '',
  ].join('\r\n');
  const line = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n';
  let body = '';
  while (head.length + body.length < size) body += line;
  return Buffer.from(head + body.slice(0, size - head.length));
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function startServer(dir: string): Promise<{ port: number; ca: string; password: string; stop(): Promise<void> }> {
  const any = { host: '127.0.0.1', port: 0 };
  writeFileSync(
    path.join(dir, 'config.json'),
    JSON.stringify({ smtp: { submission: any, submissionTls: any }, imap: { plain: any, tls: any }, log: { level: 'warn' } }),
  );
  const init = execFileSync(process.execPath, [path.join(repo, 'dist/src/cli.js'), 'init'], { cwd: dir, encoding: 'utf8' });
  const password = /^jean\.dupont@\S+\s+password: (\S+)$/m.exec(init)![1]!;
  const child = spawn(process.execPath, [path.join(repo, 'dist/src/cli.js'), 'start'], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('ready\n')) resolve();
    });
    child.on('exit', () => reject(new Error(`server exited: ${out}`)));
  });
  const port = Number(/smtp-submission \(TLS\)\s+127\.0\.0\.1:(\d+)/.exec(out)![1]);
  return {
    port,
    password,
    ca: readFileSync(path.join(dir, 'certs/ca/root.pem'), 'utf8'),
    stop: () =>
      new Promise((resolve) => {
        child.on('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function runCase(size: number, count: number): Promise<{ msgsPerS: number; p50: number; p99: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'mss-bench-'));
  const server = await startServer(dir);
  try {
    const sessions = await Promise.all(
      Array.from({ length: K }, () => SmtpSession.open(server.port, server.ca, 'jean.dupont@hopital-demo.mssante.test', server.password)),
    );
    const bodies = Array.from({ length: 16 }, (_, i) => message(size, i));
    const latencies: number[] = [];
    let next = 0;
    const start = process.hrtime.bigint();
    await Promise.all(
      sessions.map(async (s) => {
        while (next < count) {
          const i = next++;
          latencies.push(await s.send('jean.dupont@hopital-demo.mssante.test', 'claire.martin@hopital-demo.mssante.test', bodies[i % bodies.length]!));
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    await Promise.all(sessions.map((s) => s.close()));
    latencies.sort((a, b) => a - b);
    return { msgsPerS: count / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

execFileSync(process.execPath, [path.join(repo, 'scripts/build-if-needed.mjs')], { stdio: 'inherit' });
const cases = [
  { name: '5KB', size: 5 * 1024, count: N },
  { name: '100KB', size: 100 * 1024, count: Math.max(1, Math.floor(N / 4)) },
];
const results: string[] = [];
for (const c of cases) {
  const runs = [];
  for (let r = 0; r < RUNS; r++) {
    const res = await runCase(c.size, c.count);
    console.log(`run ${r + 1}/${RUNS} ${c.name}: ${res.msgsPerS.toFixed(0)} msg/s, p50 ${res.p50.toFixed(1)} ms, p99 ${res.p99.toFixed(1)} ms`);
    runs.push(res);
  }
  results.push(
    `RESULT smtp-submit-${c.name} msgs_per_s=${median(runs.map((r) => r.msgsPerS)).toFixed(0)} p50_ms=${median(runs.map((r) => r.p50)).toFixed(1)} ` +
      `p99_ms=${median(runs.map((r) => r.p99)).toFixed(1)} messages=${c.count} sessions=${K} runs=${RUNS} ` +
      `durable=fsync-per-commit(sqlite-wal-synchronous-full) tls=yes peer=none`,
  );
}
for (const line of results) console.log(line);
