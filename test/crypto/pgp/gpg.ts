import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * GnuPG (2.2) driven through its CLI in a throwaway GNUPGHOME, asynchronously (never execFileSync: the
 * suite shares two cores). Status lines (`--status-fd 2`) are collected from standard error.
 */

export interface GpgRun {
  code: number;
  stdout: Buffer;
  stderr: string;
  /** `[GNUPG:]` status lines without the prefix, e.g. `GOODSIG 0123... Name <addr>`. */
  status: string[];
}

function run(command: string, args: string[], input?: Buffer | string): Promise<GpgRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      const stderr = Buffer.concat(err).toString('utf8');
      const status = stderr
        .split('\n')
        .filter((l) => l.startsWith('[GNUPG:] '))
        .map((l) => l.slice('[GNUPG:] '.length));
      resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr, status });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

export class Gpg {
  private constructor(readonly home: string) {}

  static async create(): Promise<Gpg> {
    return new Gpg(await mkdtemp(path.join(tmpdir(), 'mss-gpg-')));
  }

  /** gpg with the batch, loopback and trust options every call needs. */
  run(args: string[], input?: Buffer | string): Promise<GpgRun> {
    return run('gpg', [
      '--batch',
      '--no-tty',
      '--homedir',
      this.home,
      '--pinentry-mode',
      'loopback',
      '--passphrase',
      '',
      '--trust-model',
      'always',
      '--status-fd',
      '2',
      ...args,
    ], input);
  }

  async mustRun(args: string[], input?: Buffer | string): Promise<GpgRun> {
    const result = await this.run(args, input);
    if (result.code !== 0) throw new Error(`gpg ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
    return result;
  }

  /**
   * A key pair with an encryption subkey: `rsa3072`/`rsa1024` (RSA primary and subkey) or `ed25519`
   * (EdDSA primary, cv25519 subkey). Returns the primary fingerprint (upper-case hex, as gpg prints it).
   */
  async generate(userId: string, kind: 'rsa3072' | 'rsa1024' | 'ed25519'): Promise<string> {
    const created = await this.mustRun(['--quick-gen-key', userId, kind, 'sign,cert', 'never']);
    const line = created.status.find((l) => l.startsWith('KEY_CREATED '));
    const fpr = line?.split(' ')[2];
    if (!fpr) throw new Error(`no KEY_CREATED in ${created.stderr}`);
    await this.mustRun(['--quick-add-key', fpr, kind === 'ed25519' ? 'cv25519' : kind, 'encr', 'never']);
    return fpr;
  }

  async exportPublic(id: string): Promise<string> {
    return (await this.mustRun(['--armor', '--export', id])).stdout.toString('utf8');
  }

  async exportSecret(id: string): Promise<string> {
    return (await this.mustRun(['--armor', '--export-secret-keys', id])).stdout.toString('utf8');
  }

  async importKey(armored: string, passphrase = ''): Promise<GpgRun> {
    return run('gpg', [
      '--batch',
      '--no-tty',
      '--homedir',
      this.home,
      '--pinentry-mode',
      'loopback',
      '--passphrase',
      passphrase,
      '--status-fd',
      '2',
      '--import',
    ], armored);
  }

  /** Fingerprints of the keys in the public (or secret) keyring, upper-case. */
  async fingerprints(secret = false): Promise<string[]> {
    const listed = await this.mustRun(['--with-colons', secret ? '--list-secret-keys' : '--list-keys']);
    const lines = listed.stdout.toString('utf8').split('\n');
    const out: string[] = [];
    lines.forEach((line, i) => {
      if ((line.startsWith('pub:') || line.startsWith('sec:')) && lines[i + 1]?.startsWith('fpr:')) {
        out.push(lines[i + 1]!.split(':')[9]!);
      }
    });
    return out;
  }

  /** Stops the agent this home started and removes the home. */
  async close(): Promise<void> {
    await run('gpgconf', ['--homedir', this.home, '--kill', 'gpg-agent']).catch(() => undefined);
    await rm(this.home, { recursive: true, force: true });
  }
}
