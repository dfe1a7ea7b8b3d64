import { describe, expect, it } from 'vitest';
import { ENGINES } from '../helpers/engines.js';
import { sampleMessage, sessionsPerTest } from './harness.js';

/**
 * Every body a FETCH hands out is recorded as read: one audit record per command, written in the same unit of
 * work as the \Seen change when the FETCH sets \Seen, on its own otherwise (BODY.PEEK, messages already seen).
 */
describe.each(ENGINES)('FETCH read records (%s)', (engine) => {
  const { start, connect } = sessionsPerTest(engine);

  it('records each FETCH of bodies once, with how many it read, whether or not it set \\Seen', async () => {
    const server = await start();
    for (let i = 1; i <= 3; i++) await server.deliver(sampleMessage(`m${i}`));
    const c = await connect();
    await c.command('a1', 'SELECT INBOX');
    const from = (await server.store.readAudit(0, 10_000)).at(-1)?.seq ?? 0;
    const reads = async () =>
      (await server.store.readAudit(from, 1000))
        .filter((r) => r.action === 'read')
        .map((r) => (JSON.parse(r.detail) as { messages?: number }).messages);

    const first = await c.command('a2', 'FETCH 1:2 BODY[]');
    expect(first.filter((l) => /^\* \d FETCH/.test(l))).toHaveLength(2);
    expect(first.at(-1)).toBe('a2 OK FETCH completed');
    expect(await reads()).toEqual([2]);
    expect(await c.command('a3', 'FETCH 1:3 FLAGS')).toEqual([
      '* 1 FETCH (FLAGS (\\Seen))',
      '* 2 FETCH (FLAGS (\\Seen))',
      '* 3 FETCH (FLAGS ())',
      'a3 OK FETCH completed',
    ]);

    await c.command('a4', 'FETCH 1:3 BODY[]'); // two already seen, one not
    await c.command('a5', 'FETCH 2 BODY.PEEK[]');
    await c.command('a6', 'FETCH 1:3 (FLAGS ENVELOPE)'); // no body: no record
    expect(await reads()).toEqual([2, 3, 1]);
  });
});

/**
 * The metadata kept for the next FETCH is given out only for the message it was opened for: on SQLite a message
 * stored after the newest one was expunged gets that one's row id again, and must not show its envelope.
 */
describe.each(ENGINES)('kept metadata and row ids given again (%s)', (engine) => {
  const { start, connect } = sessionsPerTest(engine);

  it('shows the envelope of the message now under a row id, not of the one expunged', async () => {
    const server = await start();
    await server.deliver(sampleMessage('Premier compte rendu'));
    const c = await connect();
    await c.command('a1', 'SELECT INBOX');
    expect((await c.command('a2', 'FETCH 1 ENVELOPE'))[0]).toContain('"Premier compte rendu"');
    const inbox = (await server.store.getFolder(server.mailbox.id, 'INBOX'))!;
    const [first] = await server.store.getMessages(inbox.id, [1]);
    await c.command('a3', 'STORE 1 +FLAGS.SILENT (\\Deleted)');
    await c.command('a4', 'EXPUNGE');
    await server.deliver(sampleMessage('Second compte rendu'));
    const [second] = await server.store.getMessages(inbox.id, [2]);
    if (engine === 'sqlite') expect(second!.id).toBe(first!.id); // the case this guards against
    await c.command('a5', 'NOOP');
    const envelope = await c.command('a6', 'FETCH 1 (UID ENVELOPE)');
    expect(envelope[0]).toContain('"Second compte rendu"');
    expect(envelope[0]).not.toContain('Premier');
  });
});
