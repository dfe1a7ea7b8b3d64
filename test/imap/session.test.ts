import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ENGINES } from '../helpers/engines.js';
import { ImapLineClient, sampleMessage, startImapServer, USER, type ImapTestServer } from './harness.js';

/** Connection-level behaviour: STARTTLS hygiene, limits, two sessions, pipelining, shutdown, logging. */

describe.each(ENGINES)('IMAP sessions (%s)', (engine) => {
  let server: ImapTestServer | null = null;
  const clients: ImapLineClient[] = [];
  const connect = async (tls = true) => {
    const c = await ImapLineClient.connect(tls ? server!.ports.tls : server!.ports.plain, { tls });
    clients.push(c);
    await c.line(); // greeting
    return c;
  };
  /** A server holding these messages, and two sessions A and B logged in with INBOX selected. */
  const twoSessionsOnInbox = async (messages: string[]) => {
    server = await startImapServer(engine);
    for (const name of messages) await server.deliver(sampleMessage(name));
    const a = await connect();
    const b = await connect();
    await a.login();
    await b.login();
    await a.command('a1', 'SELECT INBOX');
    await b.command('b1', 'SELECT INBOX');
    return { srv: server, a, b };
  };
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await server?.dispose();
    server = null;
  });

  it('discards commands sent in clear after STARTTLS (no injection)', async () => {
    server = await startImapServer(engine);
    const c = await connect(false);
    c.send('a1 STARTTLS\r\na2 LOGIN "x" "y"');
    expect(await c.line()).toBe('a1 OK Begin TLS negotiation now');
    await c.startTls();
    expect(await c.command('a3', 'NOOP')).toEqual(['a3 OK NOOP completed']);
  });

  it('answers pipelined commands in order', async () => {
    server = await startImapServer(engine);
    const c = await connect();
    c.send(`p1 LOGIN "${USER.address}" "${USER.password}"\r\np2 SELECT INBOX\r\np3 NOOP\r\np4 FOO`);
    const lines = await c.until('p4');
    const tagged = lines.filter((l) => /^p\d /.test(l)).map((l) => l.slice(0, 5));
    expect(tagged).toEqual(['p1 OK', 'p2 OK', 'p3 OK', 'p4 BA']);
  });

  it('tells a second session about new messages and flag changes between commands, never inside a FETCH', async () => {
    const { srv, a, b } = await twoSessionsOnInbox(['one']);

    expect(await a.command('a2', 'STORE 1 +FLAGS (\\Flagged)')).toEqual(['* 1 FETCH (FLAGS (\\Flagged))', 'a2 OK STORE completed']);
    await srv.deliver(sampleMessage('two'));
    expect(await b.command('b2', 'FETCH 1:* (UID)')).toEqual(['* 2 EXISTS', '* 1 FETCH (FLAGS (\\Flagged) UID 1)', '* 1 FETCH (UID 1)', '* 2 FETCH (UID 2)', 'b2 OK FETCH completed']);
    expect(await b.command('b3', 'NOOP')).toEqual(['b3 OK NOOP completed']);
    // A's own change is not echoed back to A; A hears only of the new message.
    expect(await a.command('a3', 'NOOP')).toEqual(['* 2 EXISTS', 'a3 OK NOOP completed']);
    // APPEND into the selected folder is reported to the appending session too.
    a.send('a4 APPEND INBOX {5+}\r\nx: y\r\n');
    expect(await a.until('a4')).toEqual(['* 3 EXISTS', expect.stringMatching(/^a4 OK \[APPENDUID \d+ 3\] APPEND completed$/)]);
    expect(await b.command('b4', 'UID FETCH 3 FLAGS')).toEqual(['* 3 EXISTS', '* 3 FETCH (UID 3 FLAGS ())', 'b4 OK UID FETCH completed']);
    // A change arriving while B's FETCH runs is reported after its FETCH responses, not between them.
    for (let i = 0; i < 150; i++) await srv.deliver(sampleMessage(`bulk ${i}`));
    await b.command('b5', 'NOOP');
    b.send('b6 FETCH 1:* (UID BODY.PEEK[HEADER])');
    const first = await b.line();
    expect(first).toMatch(/^\* 1 FETCH/);
    await srv.deliver(sampleMessage('during'));
    const rest = (await b.until('b6')).filter((l) => l.startsWith('* '));
    const exists = rest.indexOf('* 154 EXISTS');
    const lastFetch = rest.findLastIndex((l) => /^\* \d+ FETCH/.test(l));
    expect(rest.filter((l) => /^\* \d+ FETCH/.test(l))).toHaveLength(152);
    if (exists >= 0) expect(exists).toBeGreaterThan(lastFetch);
  });

  it('SEARCH answers with the messages the session knows, numbered as it knows them', async () => {
    const { srv, a, b } = await twoSessionsOnInbox(['one', 'two', 'three']);
    expect(await a.command('a2', 'SEARCH ALL')).toEqual(['* SEARCH 1 2 3', 'a2 OK SEARCH completed']);
    // Delivered since A's last command: announced before the search runs, and found by it.
    await srv.deliver(sampleMessage('four'));
    expect(await a.command('a3', 'UID SEARCH ALL')).toEqual(['* 4 EXISTS', '* SEARCH 1 2 3 4', 'a3 OK UID SEARCH completed']);
    // Expunged by B: gone from the answer, the others keep A's numbers until A is told (not during SEARCH).
    await b.command('b2', 'STORE 2 +FLAGS.SILENT (\\Deleted)');
    await b.command('b3', 'EXPUNGE');
    expect(await a.command('a4', 'SEARCH ALL')).toEqual(['* 2 FETCH (FLAGS (\\Deleted) UID 2)', '* SEARCH 1 3 4', 'a4 OK SEARCH completed']);
    expect(await a.command('a5', 'NOOP')).toEqual(['* 2 EXPUNGE', 'a5 OK NOOP completed']);
    expect(await a.command('a6', 'SEARCH ALL')).toEqual(['* SEARCH 1 2 3', 'a6 OK SEARCH completed']);
  });

  it("reports another session's EXPUNGE only when allowed (not during FETCH or STORE), numbered after each other", async () => {
    const { srv, a, b } = await twoSessionsOnInbox(['m1', 'm2', 'm3', 'm4']);
    await a.command('a2', 'STORE 2,3 +FLAGS.SILENT (\\Deleted)');
    expect(await a.command('a3', 'EXPUNGE')).toEqual(['* 2 EXPUNGE', '* 2 EXPUNGE', 'a3 OK EXPUNGE completed']);
    // B still counts four messages during FETCH and STORE: the expunged ones are simply absent.
    expect(await b.command('b2', 'FETCH 1:4 (UID)')).toEqual([
      '* 2 FETCH (FLAGS (\\Deleted) UID 2)',
      '* 3 FETCH (FLAGS (\\Deleted) UID 3)',
      '* 1 FETCH (UID 1)',
      '* 4 FETCH (UID 4)',
      'b2 OK FETCH completed',
    ]);
    expect(await b.command('b3', 'STORE 4 +FLAGS (\\Seen)')).toEqual(['* 4 FETCH (FLAGS (\\Seen))', 'b3 OK STORE completed']);
    await srv.deliver(sampleMessage('m5'));
    // A new message arriving meanwhile is counted from the numbers B still has (5, not 3).
    expect(await b.command('b4', 'FETCH 4 (UID)')).toEqual(['* 5 EXISTS', '* 4 FETCH (UID 4)', 'b4 OK FETCH completed']);
    expect(await b.command('b5', 'NOOP')).toEqual(['* 2 EXPUNGE', '* 2 EXPUNGE', 'b5 OK NOOP completed']);
    expect(await b.command('b6', 'FETCH 1:* (UID)')).toEqual(['* 1 FETCH (UID 1)', '* 2 FETCH (UID 4)', '* 3 FETCH (UID 5)', 'b6 OK FETCH completed']);
    // A sees B's flag change and the new message.
    expect(await a.command('a4', 'NOOP')).toEqual(['* 3 EXISTS', '* 2 FETCH (FLAGS (\\Seen) UID 4)', 'a4 OK NOOP completed']);
    // A MOVE by B reaches A as EXPUNGE; the copy in Trash as EXISTS to a session that has Trash selected.
    const c = await connect();
    await c.login();
    await c.command('c1', 'SELECT Trash');
    expect(await b.command('b7', 'UID MOVE 1 Trash')).toEqual([
      expect.stringMatching(/^\* OK \[COPYUID \d+ 1 1\] Moved$/),
      '* 1 EXPUNGE',
      'b7 OK UID MOVE completed',
    ]);
    expect(await a.command('a5', 'NOOP')).toEqual(['* 1 EXPUNGE', 'a5 OK NOOP completed']);
    expect(await c.command('c2', 'NOOP')).toEqual(['* 1 EXISTS', 'c2 OK NOOP completed']);
    const audit = await srv.store.readAudit(0, 100);
    expect(audit.filter((r) => r.action === 'delete')).toHaveLength(1);
    expect(audit.filter((r) => r.action === 'move')).toHaveLength(1);
  });

  it('pushes EXISTS, FETCH FLAGS and EXPUNGE to a session in IDLE as they happen; DONE ends it', async () => {
    const { srv, a, b } = await twoSessionsOnInbox(['one', 'two']);
    b.send('b2 IDLE');
    expect(await b.line()).toBe('+ idling');
    await srv.deliver(sampleMessage('three'));
    expect(await b.line()).toBe('* 3 EXISTS');
    await a.command('a2', 'STORE 1 +FLAGS.SILENT (\\Deleted)');
    expect(await b.line()).toBe('* 1 FETCH (FLAGS (\\Deleted) UID 1)');
    await a.command('a3', 'EXPUNGE');
    expect(await b.line()).toBe('* 1 EXPUNGE');
    b.send('DONE');
    expect(await b.until('b2')).toEqual(['b2 OK IDLE terminated']);
    expect(await b.command('b3', 'FETCH 1:* (UID)')).toEqual(['* 1 FETCH (UID 2)', '* 2 FETCH (UID 3)', 'b3 OK FETCH completed']);
    // IDLE in the authenticated state waits for DONE too.
    await b.command('b4', 'UNSELECT');
    b.send('b5 IDLE');
    expect(await b.line()).toBe('+ idling');
    await srv.deliver(sampleMessage('four'));
    b.send('DONE');
    expect(await b.until('b5')).toEqual(['b5 OK IDLE terminated']);
  });

  it('ends IDLE with BYE on shutdown', async () => {
    server = await startImapServer(engine);
    const a = await connect();
    await a.login();
    a.send('a1 IDLE');
    expect(await a.line()).toBe('+ idling');
    const closing = server.dispose();
    server = null;
    expect(await a.line()).toBe('* BYE Server shutting down');
    await a.closedByServer();
    await closing;
  });

  it('streams a large message in and out through LITERAL+ (many chunks), byte for byte', async () => {
    server = await startImapServer(engine);
    const c = await connect();
    await c.login();
    const body = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = i % 79 === 78 ? 0x0a : 0x41 + (i % 26);
    const raw = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), body]);
    c.send(Buffer.from(`b1 APPEND INBOX {${raw.length}+}\r\n`));
    for (let i = 0; i < raw.length; i += 10_000) c.send(raw.subarray(i, i + 10_000));
    c.send('');
    expect((await c.until('b1')).pop()).toMatch(/^b1 OK \[APPENDUID/);
    await c.command('b2', 'SELECT INBOX');
    c.send('b3 FETCH 1 BODY.PEEK[]');
    const head = await c.line();
    expect(head).toBe(`* 1 FETCH (BODY[] {${raw.length}}`);
    // Read the literal: the line reader splits it at CRLF; the whole response is checked by length here.
    const deadline = Date.now() + 20_000;
    while (!c.pending.includes('b3 OK') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const rest = Buffer.from(c.pending, 'latin1');
    expect(rest.subarray(0, raw.length).equals(raw)).toBe(true);
    expect(rest.subarray(raw.length).toString()).toBe(')\r\nb3 OK FETCH completed\r\n');
  });

  it('refuses connections beyond maxConnections with BYE', async () => {
    server = await startImapServer(engine, { maxConnections: 2 });
    await connect();
    await connect();
    const third = await ImapLineClient.connect(server.ports.tls, { tls: true });
    clients.push(third);
    expect(await third.line()).toBe('* BYE Too many connections, try again later');
    await third.closedByServer();
    // The plain listener counts separately.
    await connect(false);
  });

  it('refuses connections beyond maxConnectionsPerIp across both listeners, and frees the slot on logout', async () => {
    server = await startImapServer(engine, { maxConnectionsPerIp: 2 });
    const first = await connect();
    await connect(false);
    const third = await ImapLineClient.connect(server.ports.tls, { tls: true });
    clients.push(third);
    expect(await third.line()).toBe('* BYE Too many connections from your address, try again later');
    await third.closedByServer();
    await first.command('z1', 'LOGOUT');
    await first.closedByServer();
    await new Promise((r) => setTimeout(r, 50));
    await connect();
  });

  it('says BYE to idle sessions on shutdown and lets a running command finish', async () => {
    server = await startImapServer(engine);
    const idle = await connect();
    await idle.login();
    const busy = await connect();
    await busy.login();
    await busy.command('s1', 'SELECT INBOX');
    const closing = server.dispose();
    server = null;
    expect(await idle.line()).toBe('* BYE Server shutting down');
    await idle.closedByServer();
    await busy.closedByServer();
    await closing;
  });

  it('never logs passwords, SASL payloads or message content', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    server = await startImapServer(engine, {}, pino({ level: 'trace' }, sink));
    const c = await connect();
    const plain = Buffer.from(`\0${USER.address}\0${USER.password}`).toString('base64');
    await c.command('l1', `AUTHENTICATE PLAIN ${plain}`);
    await c.command('l2', `LOGIN "${USER.address}" "${USER.password}"`);
    c.send('l3 APPEND INBOX {30+}\r\nSubject: secret-diagnosis-xyz\r\n\r\n');
    await c.until('l3');
    await c.command('l4', 'SELECT INBOX');
    await c.command('l5', 'FETCH 1 BODY[]');
    const log = lines.join('');
    expect(log).toContain('"command":"APPEND"');
    expect(log).not.toContain(USER.password);
    expect(log).not.toContain(plain);
    expect(log).not.toContain('secret-diagnosis');
  });
});
