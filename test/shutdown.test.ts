import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/store/open.js';
import { LineClient } from './helpers/line-client.js';
import { DEMO, passwordOf, startOperator, type TestOperator } from './helpers/operator.js';

describe('graceful shutdown', () => {
  let op: TestOperator;
  beforeAll(async () => {
    op = await startOperator({ smtp: { shutdownGraceMs: 5_000 } });
  });
  afterAll(() => op?.dispose());

  it('stops accepting connections but lets a transaction in flight finish and commit', async () => {
    const c = await LineClient.connect(op.ports.submissionTls, { tls: true, ca: op.ca });
    await c.reply();
    await c.command('EHLO client.test');
    expect(await c.command(`AUTH PLAIN ${Buffer.from(`\0${DEMO.jean}\0${passwordOf(op, DEMO.jean)}`).toString('base64')}`)).toMatch(/^235/);
    await c.command(`MAIL FROM:<${DEMO.jean}>`);
    await c.command(`RCPT TO:<${DEMO.claire}>`);
    expect(await c.command('DATA')).toMatch(/^354/);
    c.send(`From: ${DEMO.jean}\r\nTo: ${DEMO.claire}\r\nSubject: in flight\r\n\r\nLe message part pendant l'arrêt.`);

    const closing = op.stop();
    // New connections are refused as soon as shutdown begins...
    await new Promise((r) => setTimeout(r, 100));
    await expect(
      new Promise((resolve, reject) => net.connect(op.ports.submission, '127.0.0.1').on('connect', resolve).on('error', reject)),
    ).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    // ...while the session in flight completes its message.
    expect(await c.command('.')).toMatch(/^250 2\.6\.0 /);
    c.send('QUIT');
    await closing;

    const store = await openStore(op.config);
    try {
      const claire = (await store.getMailbox(DEMO.claire))!;
      const inbox = (await store.getFolder(claire.id, 'INBOX'))!;
      expect(await store.listMessages(inbox.id)).toHaveLength(1);
    } finally {
      await store.close();
    }
  });
});
