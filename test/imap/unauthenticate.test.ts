import { describe, expect, it } from 'vitest';
import type { MailboxEvent } from '../../src/store/types.js';
import { ENGINES } from '../helpers/engines.js';
import { sampleMessage, sessionsPerTest, type ImapTestServer } from './harness.js';

/**
 * UNAUTHENTICATE (RFC 8437) and MULTIAPPEND (RFC 3502) seen from a second connection: after UNAUTHENTICATE the
 * session no longer listens to the mailbox's changes and has no folder; one MULTIAPPEND reaches another session
 * as one EXISTS.
 */
describe.each(ENGINES)('UNAUTHENTICATE and MULTIAPPEND between sessions (%s)', (engine) => {
  const { start, connect } = sessionsPerTest(engine);
  let server: ImapTestServer;

  it('drops the notifier subscription and the selected folder; a new login starts afresh', async () => {
    server = await start();
    await server.deliver(sampleMessage('one'));
    const notifier = server.notifier;
    const listening = new Set<(event: MailboxEvent) => void>();
    const subscribe = notifier.subscribe.bind(notifier);
    notifier.subscribe = (mailboxId, listener) => {
      listening.add(listener);
      const unsubscribe = subscribe(mailboxId, listener);
      return () => {
        listening.delete(listener);
        unsubscribe();
      };
    };

    const a = await connect();
    const b = await connect();
    expect(listening.size).toBe(2);
    await a.command('a1', 'SELECT INBOX');
    // The folder's shared message state listens too, and stays a while after the last session leaves it.
    expect(listening.size).toBe(3);
    expect(await a.command('a2', 'UNAUTHENTICATE')).toEqual(['a2 OK UNAUTHENTICATE completed']);
    expect(listening.size).toBe(2);

    await b.command('b1', 'APPEND INBOX {5+}\r\nhello');
    expect(await a.command('a3', 'NOOP')).toEqual(['a3 OK NOOP completed']);
    expect(await a.command('a4', 'FETCH 1 FLAGS')).toEqual(['a4 BAD Log in first']);

    await a.login();
    expect(listening.size).toBe(3);
    expect(await a.command('a5', 'STATUS INBOX (MESSAGES)')).toEqual(['* STATUS "INBOX" (MESSAGES 2)', 'a5 OK STATUS completed']);
    a.close();
    await a.closedByServer().catch(() => undefined);
    const deadline = Date.now() + 5000;
    while (listening.size > 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(listening.size).toBe(2);
  });

  it('reports one MULTIAPPEND to another session as one EXISTS, and its messages in order', async () => {
    server = await start();
    const a = await connect();
    const b = await connect();
    await b.command('b1', 'SELECT INBOX');
    const appended = await a.command('a1', 'APPEND INBOX (\\Seen) {5+}\r\none\r\n {5+}\r\ntwo\r\n (\\Flagged) {7+}\r\nthree\r\n');
    expect(appended).toEqual([expect.stringMatching(/^a1 OK \[APPENDUID \d+ 1:3\] APPEND completed$/)]);
    expect(await b.command('b2', 'NOOP')).toEqual(['* 3 EXISTS', 'b2 OK NOOP completed']);
    expect(await b.command('b3', 'FETCH 1:* (UID FLAGS BODY.PEEK[])')).toEqual([
      '* 1 FETCH (UID 1 FLAGS (\\Seen) BODY[] {5}',
      'one',
      ')',
      '* 2 FETCH (UID 2 FLAGS () BODY[] {5}',
      'two',
      ')',
      '* 3 FETCH (UID 3 FLAGS (\\Flagged) BODY[] {7}',
      'three',
      ')',
      'b3 OK FETCH completed',
    ]);
  });
});
