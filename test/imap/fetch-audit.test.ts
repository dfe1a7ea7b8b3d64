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
