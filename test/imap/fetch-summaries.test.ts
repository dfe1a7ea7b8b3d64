import { describe, expect, it } from 'vitest';
import { ENGINES } from '../helpers/engines.js';
import { sampleMessage, sessionsPerTest, type ImapTestServer } from './harness.js';

/**
 * A FETCH of summary items over many messages (`1:* (FLAGS)`, what a client sends to resynchronise) reads the
 * folder's summaries in one query: the same answers as message by message, in sequence order, with CHANGEDSINCE
 * applied, and nothing about a message another session expunged meanwhile (its removal is reported later).
 */
describe.each(ENGINES)('FETCH of summary items over a large set (%s)', (engine) => {
  const { start, connect } = sessionsPerTest(engine);
  let server: ImapTestServer;

  it('answers every message in order, with CHANGEDSINCE, and skips what another session expunged', async () => {
    server = await start();
    const count = 260;
    for (let i = 1; i <= count; i++) await server.deliver(sampleMessage(`m${i}`));
    const a = await connect();
    const b = await connect();
    await a.command('a1', 'SELECT INBOX');
    await b.command('b1', 'SELECT INBOX');
    await b.command('b2', 'STORE 7 +FLAGS.SILENT (\\Flagged)');

    const all = await a.command('a2', 'FETCH 1:* (UID FLAGS RFC822.SIZE)');
    // b's flag change comes first (reported before the FETCH data), then one line per message in order.
    const lines = all.filter((l) => /^\* \d+ FETCH \(UID/.test(l));
    expect(lines).toHaveLength(count);
    lines.forEach((line, i) => expect(line).toMatch(new RegExp(`^\\* ${i + 1} FETCH \\(UID ${i + 1} FLAGS \\(${i === 6 ? '\\\\Flagged' : ''}\\) RFC822\\.SIZE \\d+\\)$`)));
    expect(all[all.length - 1]).toBe('a2 OK FETCH completed');

    // CHANGEDSINCE: only the message whose MODSEQ moved since the one before the STORE.
    const modseqs = (await a.command('a3', 'UID FETCH 1:* (MODSEQ)')).flatMap((l) => /^\* (\d+) FETCH \(UID \d+ MODSEQ \((\d+)\)\)$/.exec(l) ?? []);
    expect(modseqs.length).toBe(count * 3);
    const highest = Math.max(...modseqs.filter((_, i) => i % 3 === 2).map(Number));
    const changed = await a.command('a4', `FETCH 1:* (FLAGS) (CHANGEDSINCE ${highest - 1})`);
    expect(changed.filter((l) => l.startsWith('* '))).toEqual([expect.stringMatching(/^\* 7 FETCH \(FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)$/)]);

    // b expunges message 3: a, which has not been told yet, keeps its numbers and says nothing about it.
    await b.command('b3', 'STORE 3 +FLAGS.SILENT (\\Deleted)');
    await b.command('b4', 'EXPUNGE');
    const after = await a.command('a5', 'FETCH 1:* (UID)');
    const uids = after.flatMap((l) => /^\* (\d+) FETCH \(UID (\d+)\)$/.exec(l)?.slice(1).map(Number) ?? []);
    expect(uids.length).toBe((count - 1) * 2);
    expect(uids.slice(0, 8)).toEqual([1, 1, 2, 2, 4, 4, 5, 5]);
    expect(await a.command('a6', 'NOOP')).toContain('* 3 EXPUNGE');
  });
});
