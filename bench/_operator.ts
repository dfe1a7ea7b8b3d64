/**
 * Our server as the benches run it: an operator directory (config.json, `mss init` once), then any number of
 * `mss start` processes on it, each the real CLI (dist/src/cli.js) in its own process. Every process started here
 * is tracked, so that `stopAllServersSync()` (from a process 'exit' handler) leaves none behind, nor its directory.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { serverEnvironment } from '../src/malloc-env.js';

export const repo = path.resolve(import.meta.dirname, '..');
const cli = path.join(repo, 'dist/src/cli.js');

/** Bounds for everything that waits on a server, so the bench always ends by itself. */
export const SERVER_START_TIMEOUT_MS = 60_000;
export const SERVER_STOP_TIMEOUT_MS = 15_000;
const CLI_TIMEOUT_MS = 60_000;

export const DOMAIN = 'hopital-demo.mssante.test';
/** The demo practitioner every bench session authenticates as. */
export const FROM = `jean.dupont@${DOMAIN}`;

/** Builds dist/ if a source is newer (the benches run the real CLI). */
export function buildIfNeeded(): void {
  execFileSync(process.execPath, [path.join(repo, 'scripts/build-if-needed.mjs')], { stdio: 'inherit' });
}

export interface Operator {
  dir: string;
  /** Password of FROM, as printed by `mss init`. */
  password: string;
  /** PEM of the dev CA the server certificates chain to. */
  ca: string;
  /** Runs `mss <args>` in the operator directory (stdin optional, bounded in time); resolves to its standard output. */
  cli(args: string[], input?: string): Promise<string>;
  /** Removes the directory (every server started on it must be stopped first). */
  remove(): void;
}

/** Operator directories not yet removed, for the exit handler. */
const liveDirs = new Set<string>();

/**
 * A fresh directory with a config.json (all listeners on 127.0.0.1, port 0; `extra` merged at the top level),
 * initialised once with `mss init`.
 */
export function createOperator(extra: Record<string, unknown> = {}): Operator {
  const dir = mkdtempSync(path.join(tmpdir(), 'mss-bench-'));
  liveDirs.add(dir);
  const cliAsync = (args: string[], input?: string) =>
    new Promise<string>((resolve, reject) => {
      const child = execFile(process.execPath, [cli, ...args], { cwd: dir, encoding: 'utf8', timeout: CLI_TIMEOUT_MS }, (err, stdout, stderr) =>
        err ? reject(new Error(`mss ${args.join(' ')}: ${err.message} ${stderr}`)) : resolve(stdout),
      );
      child.stdin!.end(input ?? '');
    });
  const remove = () => {
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  };
  try {
    const any = { host: '127.0.0.1', port: 0 };
    writeFileSync(
      path.join(dir, 'config.json'),
      JSON.stringify({ smtp: { submission: any, submissionTls: any }, relay: { listener: any }, imap: { plain: any, tls: any }, http: { listener: any }, log: { level: 'warn' }, ...extra }),
    );
    const init = execFileSync(process.execPath, [cli, 'init'], { cwd: dir, encoding: 'utf8', timeout: CLI_TIMEOUT_MS });
    const password = /^jean\.dupont@\S+\s+password: (\S+)$/m.exec(init)![1]!;
    return { dir, password, ca: readFileSync(path.join(dir, 'certs/ca/root.pem'), 'utf8'), cli: cliAsync, remove };
  } catch (err) {
    remove();
    throw err;
  }
}

export interface Server {
  pid: number;
  /** The implicit-TLS submission port. */
  port: number;
  stop(): Promise<void>;
}

/** `mss start` processes still running, for the exit handler. */
const liveServers = new Set<ChildProcess>();

/** Starts `mss start` in the operator directory and waits (bounded) for "ready". */
export async function startServer(dir: string): Promise<Server> {
  // With the environment `npm start` gives it (src/malloc-env.ts).
  const env = { ...process.env, ...serverEnvironment(process.env) };
  const child = spawn(process.execPath, [...(process.env.MSS_BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean), cli, 'start'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'inherit'] });
  liveServers.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), SERVER_STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    liveServers.delete(child);
  };
  let out = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server not ready after ${SERVER_START_TIMEOUT_MS} ms: ${out}`)), SERVER_START_TIMEOUT_MS);
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (out.includes('ready\n')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', () => {
        clearTimeout(timer);
        reject(new Error(`server exited: ${out}`));
      });
    });
    return { pid: child.pid!, port: Number(/smtp-submission \(TLS\)\s+127\.0\.0\.1:(\d+)/.exec(out)![1]), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Kills every server and removes every operator directory this process created; synchronous, for 'exit'. */
export function stopAllServersSync(): void {
  for (const child of liveServers) child.kill('SIGKILL');
  liveServers.clear();
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  liveDirs.clear();
}

/** The benches' message: headers of a real report from FROM, then Lorem ipsum lines up to `size` bytes. */
export function message(size: number, i: number): Buffer {
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

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
