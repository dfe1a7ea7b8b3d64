import { ImapFlow } from 'imapflow';
import { describe, expect, it } from 'vitest';
import { ENGINES } from '../helpers/engines.js';
import { sampleMessage, sessionsPerTest, USER, type ImapTestServer } from './harness.js';

/**
 * QUOTA (RFC 9208) across connections: two sessions appending at once into a mailbox with room for one more
 * message store exactly one; imapflow reads the root and its resources.
 */
describe.each(ENGINES)('QUOTA between sessions (%s)', (engine) => {
  const { start, connect } = sessionsPerTest(engine);
  let server: ImapTestServer;

  it('lets only one of two concurrent APPENDs take the last place', async () => {
    server = await start({}, undefined, { quota: { messages: 3 } });
    for (let i = 1; i <= 2; i++) await server.deliver(sampleMessage(`m${i}`));
    const [a, b] = await Promise.all([connect(), connect()]);
    const appends = await Promise.all(
      [a, b].map((c, i) => c.command(`p${i}`, `APPEND Drafts {12+}\r\nSubject: ${i}\r\n`)),
    );
    const outcomes = appends.map((lines) => lines[lines.length - 1]!.replace(/^p\d /, '')).sort();
    expect(outcomes).toEqual([expect.stringMatching(/^NO \[OVERQUOTA\] /), expect.stringMatching(/^OK \[APPENDUID \d+ 1\] /)]);
    expect(await server.store.mailboxUsage(server.mailbox.id)).toMatchObject({ messages: 3 });
  });

  it('reports usage and limits to imapflow', async () => {
    server = await start({}, undefined, { quota: { storageKiB: 1024, messages: 100 } });
    const raw = sampleMessage('quota');
    await server.deliver(raw);
    const flow = new ImapFlow({
      host: '127.0.0.1',
      port: server.ports.tls,
      secure: true,
      tls: { rejectUnauthorized: false },
      auth: { user: USER.address, pass: USER.password },
      logger: false,
      disableAutoIdle: true,
    });
    await flow.connect();
    try {
      expect(await flow.getQuota('INBOX')).toMatchObject({
        path: 'INBOX',
        storage: { usage: Math.ceil(raw.length / 1024) * 1024, limit: 1024 * 1024 },
        message: { usage: 1, limit: 100 },
      });
    } finally {
      await flow.logout().catch(() => flow.close());
    }
  });
});
