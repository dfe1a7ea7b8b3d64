import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO, passwordOf, startOperator, type TestOperator } from '../helpers/operator.js';

/** Runs a command without blocking the event loop (the server under test lives in this process). */
function run(cmd: string, args: string[], input = ''): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill(), 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
    // Keep stdin open briefly so s_client finishes the handshake and prints the server's first reply.
    child.stdin.write(input);
    setTimeout(() => child.stdin.end(), 1500);
  });
}

describe('openssl s_client and curl against the listeners', () => {
  let op: TestOperator;
  let caFile: string;
  beforeAll(async () => {
    op = await startOperator();
    caFile = path.join(op.config.certsDir, 'ca', 'root.pem');
  });
  afterAll(() => op?.dispose());

  const verifyArgs = () => ['-CAfile', caFile, '-verify_hostname', 'localhost', '-verify_return_error', '-servername', 'localhost'];

  it('serves a certificate chain that verifies against the dev root, for localhost, on all four listeners', async () => {
    const cases: [number, string[], RegExp][] = [
      [op.ports.imaps, [], /\* OK /],
      [op.ports.submissionTls, [], /220 /],
      [op.ports.imap, ['-starttls', 'imap'], /OK/],
      [op.ports.submission, ['-starttls', 'smtp'], /250/],
    ];
    for (const [port, extra, greeting] of cases) {
      const { out } = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...verifyArgs(), ...extra]);
      expect(out, `port ${port}`).toMatch(/Verify return code: 0 \(ok\)/);
      expect(out).toMatch(/Protocol\s*: TLSv1\.[23]|New, TLSv1\.[23]/);
      expect(out).toMatch(greeting);
    }
  });

  it('refuses TLS 1.1', async () => {
    const { out } = await run('openssl', ['s_client', '-connect', `127.0.0.1:${op.ports.imaps}`, '-tls1_1', '-CAfile', caFile]);
    expect(out).toMatch(/no peer certificate available/);
    expect(out).toMatch(/alert protocol version|no protocols available/i);
  });

  it('curl submits over STARTTLS with AUTH and gets 250 2.6.0', async () => {
    const file = path.join(op.dir, 'curl-msg.eml');
    writeFileSync(file, `From: ${DEMO.jean}\r\nTo: ${DEMO.claire}\r\nSubject: curl\r\n\r\nEnvoyé par curl.\r\n`);
    const { stdout, stderr } = await promisify(execFile)('curl', [
      '-sS', '-v', '--ssl-reqd', '--cacert', caFile,
      '--url', `smtp://localhost:${op.ports.submission}`,
      '--user', `${DEMO.jean}:${passwordOf(op, DEMO.jean)}`,
      '--mail-from', DEMO.jean, '--mail-rcpt', DEMO.claire, '-T', file,
    ]);
    expect(stdout + stderr).toMatch(/< 250 2\.6\.0 Message accepted/);
  });
});
