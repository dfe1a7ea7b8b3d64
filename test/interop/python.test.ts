import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO, passwordOf, startOperator, type TestOperator } from '../helpers/operator.js';

describe("Python's smtplib and imaplib (independent clients)", () => {
  let op: TestOperator;
  beforeAll(async () => {
    op = await startOperator();
  });
  afterAll(() => op?.dispose());

  it('send with smtplib over STARTTLS, read and flag with imaplib over STARTTLS and TLS', async () => {
    const cfgFile = path.join(op.dir, 'py.json');
    const caFile = path.join(op.config.certsDir, 'ca', 'root.pem');
    writeFileSync(
      cfgFile,
      JSON.stringify({
        submission: op.ports.submission,
        imap: op.ports.imap,
        imaps: op.ports.imaps,
        ca: caFile,
        sender: DEMO.claire,
        sender_password: passwordOf(op, DEMO.claire),
        recipient: DEMO.jean,
        recipient_password: passwordOf(op, DEMO.jean),
        subject: 'Résultat de biologie — TSH',
        body: 'TSH : 2,1 mUI/L (normale).\n',
      }),
    );
    // Asynchronous: the server runs in this process and must keep answering while Python talks to it.
    const { stdout: out } = await promisify(execFile)('python3', [path.join(__dirname, 'python_exchange.py'), cfgFile], { encoding: 'utf8', timeout: 60_000 });
    const result = JSON.parse(out) as Record<string, unknown>;
    expect(result).toMatchObject({
      auth_before_tls: false,
      refused: {},
      logindisabled_before_tls: true,
      starttls_login: 'OK',
      exists: 1,
      size_matches: true,
      ends_with_submitted: true,
      subject: 'Résultat de biologie — TSH',
      store: 'OK',
    });
    expect(result.flags).toMatch(/\\Seen/);
    expect(result.flags).toMatch(/\\Answered/);
  });
});
