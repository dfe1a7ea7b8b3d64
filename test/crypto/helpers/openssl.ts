/** The openssl CLI, asynchronously (promisified execFile): exit status, stdout bytes, stderr text. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface OpensslResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export async function openssl(args: string[], cwd: string, input?: Buffer): Promise<OpensslResult> {
  const p = run('openssl', args, { cwd, encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 });
  // openssl may exit without reading its input (arguments name the files): a closed pipe is no error here, the
  // exit status and output say what happened.
  p.child.stdin?.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
  p.child.stdin?.end(input ?? Buffer.alloc(0));
  try {
    const { stdout, stderr } = await p;
    return { code: 0, stdout, stderr: stderr.toString('utf8') };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: Buffer; stderr?: Buffer };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? Buffer.alloc(0), stderr: e.stderr?.toString('utf8') ?? String(err) };
  }
}

/** Runs openssl and fails with its output when it exits non-zero. */
export async function opensslOk(args: string[], cwd: string, input?: Buffer): Promise<Buffer> {
  const r = await openssl(args, cwd, input);
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}
