import { describe, expect, it } from 'vitest';
import { ENGINES } from '../helpers/engines.js';
import { sampleMessage, sessionsPerTest, type ImapTestServer } from './harness.js';

/**
 * A `resync` event (a cross-process notifier lost notifications) makes a selected session re-read its folder:
 * changes made without any event (as if their notifications were lost) are then reported like the others.
 */
describe.each(ENGINES)('IMAP resync (%s)', (engine) => {
  const { start, connect } = sessionsPerTest(engine);
  let server: ImapTestServer;

  /** Changes straight through the store, publishing nothing. */
  const silently = {
    async append(subject: string): Promise<number> {
      const s = server!;
      const folder = (await s.store.getFolder(s.mailbox.id, 'INBOX'))!;
      return (await s.store.transaction((tx) => s.mail.append(tx, s.mailbox, folder, sampleMessage(subject), { flags: [] }))).uid;
    },
    async setFlags(uid: number, flags: string[]): Promise<void> {
      const s = server!;
      const folder = (await s.store.getFolder(s.mailbox.id, 'INBOX'))!;
      await s.store.transaction((tx) => tx.setFlags(folder.id, uid, flags));
    },
    async expunge(uid: number): Promise<void> {
      const s = server!;
      const folder = (await s.store.getFolder(s.mailbox.id, 'INBOX'))!;
      await s.store.transaction((tx) => tx.expunge(folder.id, [uid]));
    },
  };

  it('reports messages appended, flags changed and messages expunged without events, at the next NOOP', async () => {
    server = await start();
    for (let i = 1; i <= 3; i++) await server.deliver(sampleMessage(`m${i}`));
    const c = await connect();
    await c.command('a1', 'SELECT INBOX');

    await silently.append('lost');
    await silently.setFlags(3, ['\\Flagged']);
    await silently.expunge(1);
    // Without an event the session knows nothing.
    expect(await c.command('a2', 'NOOP')).toEqual(['a2 OK NOOP completed']);

    server.notifier.publish({ kind: 'resync', mailboxId: server.mailbox.id });
    expect(await c.command('a3', 'NOOP')).toEqual(['* 1 EXPUNGE', '* 3 EXISTS', '* 2 FETCH (FLAGS (\\Flagged) UID 3)', 'a3 OK NOOP completed']);
    expect(await c.command('a4', 'FETCH 1:* (UID FLAGS)')).toEqual([
      '* 1 FETCH (UID 2 FLAGS ())',
      '* 2 FETCH (UID 3 FLAGS (\\Flagged))',
      '* 3 FETCH (UID 4 FLAGS ())',
      'a4 OK FETCH completed',
    ]);
    // A second resync with nothing new reports nothing.
    server.notifier.publish({ kind: 'resync', mailboxId: server.mailbox.id });
    expect(await c.command('a5', 'NOOP')).toEqual(['a5 OK NOOP completed']);
  });

  it('keeps expunges pending during FETCH, like an expunge event', async () => {
    server = await start();
    for (let i = 1; i <= 2; i++) await server.deliver(sampleMessage(`m${i}`));
    const c = await connect();
    await c.command('a1', 'SELECT INBOX');
    await silently.expunge(1);
    server.notifier.publish({ kind: 'resync', mailboxId: server.mailbox.id });
    expect(await c.command('a2', 'FETCH 2 (UID)')).toEqual(['* 2 FETCH (UID 2)', 'a2 OK FETCH completed']);
    expect(await c.command('a3', 'NOOP')).toEqual(['* 1 EXPUNGE', 'a3 OK NOOP completed']);
  });

  it('pushes the missed EXISTS to a session in IDLE', async () => {
    server = await start();
    await server.deliver(sampleMessage('one'));
    const c = await connect();
    await c.command('a1', 'SELECT INBOX');
    c.send('a2 IDLE');
    expect(await c.line()).toBe('+ idling');
    await silently.append('lost');
    server.notifier.publish({ kind: 'resync', mailboxId: server.mailbox.id });
    expect(await c.line()).toBe('* 2 EXISTS');
    c.send('DONE');
    expect(await c.until('a2')).toEqual(['a2 OK IDLE terminated']);
  });
});
