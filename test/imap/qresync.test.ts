import { ImapFlow } from 'imapflow';
import { describe, expect, it } from 'vitest';
import { ENGINES } from '../helpers/engines.js';
import { sampleMessage, sessionsPerTest, USER, type ImapTestServer } from './harness.js';

/**
 * QRESYNC (RFC 7162 §3.2) across connections: what one session removes reaches a QRESYNC session as
 * `* VANISHED` (at its next command, or at once in IDLE) and an older session as `* n EXPUNGE`; a client that
 * reconnects with the UIDVALIDITY and MODSEQ it last saw learns, in its SELECT, what vanished and what changed.
 */
describe.each(ENGINES)('QRESYNC between sessions (%s)', (engine) => {
  const { start, connect } = sessionsPerTest(engine);
  let server: ImapTestServer;
  const last = (lines: string[]) => lines[lines.length - 1]!;

  it('reports another session’s expunges as VANISHED, never during FETCH, and pushes them in IDLE', async () => {
    server = await start();
    for (let i = 1; i <= 5; i++) await server.deliver(sampleMessage(`m${i}`));
    const a = await connect();
    const old = await connect();
    const b = await connect();
    expect(await a.command('a1', 'ENABLE QRESYNC')).toEqual(['* ENABLED QRESYNC', 'a1 OK ENABLE completed']);
    expect(last(await a.command('a2', 'SELECT INBOX'))).toMatch(/^a2 OK/);
    expect(last(await old.command('o1', 'SELECT INBOX'))).toMatch(/^o1 OK/);
    expect(last(await b.command('b1', 'SELECT INBOX'))).toMatch(/^b1 OK/);

    await b.command('b2', 'STORE 2:3 +FLAGS.SILENT (\\Deleted)');
    expect(await b.command('b3', 'EXPUNGE')).toEqual(['* 2 EXPUNGE', '* 2 EXPUNGE', 'b3 OK EXPUNGE completed']);
    // A FETCH by sequence number must not see numbers move: the removal waits for the next command (the
    // flags set before it are reported).
    expect(await a.command('a3', 'FETCH 1 (UID)')).toEqual([
      expect.stringMatching(/^\* 2 FETCH \(FLAGS \(\\Deleted\) UID 2 MODSEQ \(\d+\)\)$/),
      expect.stringMatching(/^\* 3 FETCH \(FLAGS \(\\Deleted\) UID 3 MODSEQ \(\d+\)\)$/),
      '* 1 FETCH (UID 1)',
      'a3 OK FETCH completed',
    ]);
    expect(await a.command('a4', 'NOOP')).toEqual(['* VANISHED 2:3', 'a4 OK NOOP completed']);
    expect(await old.command('o2', 'NOOP')).toEqual(['* 2 EXPUNGE', '* 2 EXPUNGE', 'o2 OK NOOP completed']);
    expect(await a.command('a5', 'FETCH 1:* (UID)')).toEqual(['* 1 FETCH (UID 1)', '* 2 FETCH (UID 4)', '* 3 FETCH (UID 5)', 'a5 OK FETCH completed']);

    a.send('a6 IDLE');
    expect(await a.line()).toBe('+ idling');
    await b.command('b4', 'UID STORE 4 +FLAGS.SILENT (\\Deleted)');
    expect(await a.line()).toMatch(/^\* 2 FETCH \(FLAGS \(\\Deleted\) UID 4 MODSEQ \(\d+\)\)$/);
    await b.command('b5', 'UID EXPUNGE 4');
    expect(await a.line()).toBe('* VANISHED 4');
    await b.command('b6', 'MOVE 1 Trash');
    expect(await a.line()).toBe('* VANISHED 1');
    a.send('DONE');
    expect(await a.until('a6')).toEqual(['a6 OK IDLE terminated']);
    expect(await a.command('a7', 'FETCH 1:* (UID)')).toEqual(['* 1 FETCH (UID 5)', 'a7 OK FETCH completed']);
  });

  it('resynchronises a client that comes back with the UIDVALIDITY and MODSEQ it last saw', async () => {
    server = await start();
    for (let i = 1; i <= 6; i++) await server.deliver(sampleMessage(`m${i}`));
    const a = await connect();
    await a.command('a1', 'ENABLE QRESYNC');
    const selected = await a.command('a2', 'SELECT INBOX');
    const uidValidity = /UIDVALIDITY (\d+)/.exec(selected.join('\n'))![1]!;
    const modseq = Number(/HIGHESTMODSEQ (\d+)/.exec(selected.join('\n'))![1]);
    await a.command('a3', 'LOGOUT');

    // While the client is away: two messages go, one changes, one arrives.
    const b = await connect();
    await b.command('b1', 'SELECT INBOX');
    await b.command('b2', 'STORE 2,5 +FLAGS.SILENT (\\Deleted)');
    await b.command('b3', 'EXPUNGE');
    await b.command('b4', 'UID STORE 6 +FLAGS.SILENT (\\Seen)');
    await server.deliver(sampleMessage('m7'));

    const c = await connect();
    await c.command('c1', 'ENABLE QRESYNC');
    const again = await c.command('c2', `SELECT INBOX (QRESYNC (${uidValidity} ${modseq} 1:6))`);
    expect(again).toContain('* 5 EXISTS');
    const vanished = again.filter((l) => l.startsWith('* VANISHED'));
    expect(vanished).toEqual(['* VANISHED (EARLIER) 2,5']);
    const fetched = again.filter((l) => / FETCH /.test(l));
    expect(fetched).toEqual([expect.stringMatching(/^\* 4 FETCH \(UID 6 FLAGS \(\\Seen\) MODSEQ \(\d+\)\)$/), expect.stringMatching(/^\* 5 FETCH \(UID 7 FLAGS \(\) MODSEQ \(\d+\)\)$/)]);
    // VANISHED (EARLIER) and the FETCHes come after the usual responses, before the tagged OK.
    expect(again.indexOf(vanished[0]!)).toBeGreaterThan(again.findIndex((l) => l.includes('HIGHESTMODSEQ')));
    expect(last(again)).toMatch(/^c2 OK \[READ-WRITE\]/);
  });

  it('works with imapflow’s QRESYNC support: expunges arrive as vanished UIDs', async () => {
    server = await start();
    for (let i = 1; i <= 3; i++) await server.deliver(sampleMessage(`m${i}`));
    const flow = new ImapFlow({
      host: '127.0.0.1',
      port: server.ports.tls,
      secure: true,
      tls: { rejectUnauthorized: false },
      auth: { user: USER.address, pass: USER.password },
      logger: false,
      disableAutoIdle: true,
      qresync: true,
    });
    const events: { uid?: number; seq?: number; vanished: boolean }[] = [];
    flow.on('expunge', (e: { uid?: number; seq?: number; vanished: boolean }) => events.push(e));
    await flow.connect();
    try {
      expect(flow.enabled.has('QRESYNC')).toBe(true);
      await flow.mailboxOpen('INBOX');
      const b = await connect();
      await b.command('b1', 'SELECT INBOX');
      await b.command('b2', 'STORE 2 +FLAGS.SILENT (\\Deleted)');
      await b.command('b3', 'EXPUNGE');
      await flow.noop();
      const deadline = Date.now() + 5000;
      while (events.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(events).toEqual([expect.objectContaining({ uid: 2, vanished: true })]);
      expect(flow.mailbox && flow.mailbox.exists).toBe(2);
    } finally {
      await flow.logout().catch(() => flow.close());
    }
  });
});
