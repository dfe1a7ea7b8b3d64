import { randomBytes } from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ImapFlow } from 'imapflow';
import { describe, expect, it } from 'vitest';
import { ENGINES } from '../helpers/engines.js';
import { sessionsPerTest, USER } from './harness.js';

/**
 * A message read whole (`BODY[]`, `BODY.PEEK[]`, `RFC822`) is streamed from its sealed blob segment by segment;
 * a body that does not open to its end (a corrupted blob) cuts the connection instead of finishing the literal
 * with bytes that were never authenticated — and the server goes on serving the other sessions.
 */

/** A message of about `size` bytes spread over several 64 KiB segments of the sealed stream. */
function bigMessage(size: number): Buffer {
  const header = 'From: a@b.test\r\nTo: c@d.test\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n';
  const lines: string[] = [];
  let length = header.length;
  while (length < size) {
    const line = randomBytes(38).toString('base64');
    lines.push(line);
    length += line.length + 2;
  }
  return Buffer.from(header + lines.join('\r\n') + '\r\n', 'latin1');
}

describe.each(ENGINES)('FETCH of a whole message, streamed (%s)', (engine) => {
  const { start, connect } = sessionsPerTest(engine);

  it('sends the exact bytes of a message larger than a segment, whole and in part', async () => {
    const server = await start();
    const raw = bigMessage(300_000);
    await server.deliver(raw);
    const client = new ImapFlow({ host: '127.0.0.1', port: server.ports.tls, secure: true, tls: { rejectUnauthorized: false }, auth: { user: USER.address, pass: USER.password }, logger: false });
    await client.connect();
    try {
      await client.mailboxOpen('INBOX');
      const whole = await client.fetchOne('1', { source: true });
      expect(whole && Buffer.compare(whole.source!, raw)).toBe(0);
      const part = await client.fetchOne('1', { bodyParts: ['TEXT'] });
      expect(part && part.bodyParts?.get('text')?.toString('latin1')).toBe(raw.subarray(raw.indexOf('\r\n\r\n') + 4).toString('latin1'));
    } finally {
      await client.logout();
    }
    const c = await connect();
    await c.command('s', 'SELECT INBOX');
    const lines = await c.command('f', 'FETCH 1 (RFC822.SIZE BODY.PEEK[]<0.20>)');
    expect(lines[0]).toBe(`* 1 FETCH (RFC822.SIZE ${raw.length} BODY[]<0> {20}`);
  });

  it.skipIf(engine !== 'sqlite')('cuts the connection when the blob fails to open half-way, and serves the others', async () => {
    const server = await start();
    await server.deliver(bigMessage(300_000));
    // One byte of the last segment changed: every segment before it opens, the last one does not authenticate.
    const db = new Database(path.join(server.dir, 'mss.sqlite'));
    try {
      const last = db.prepare('SELECT id, data FROM blob_chunks ORDER BY blob_id DESC, seq DESC LIMIT 1').get() as { id: number; data: Buffer };
      last.data[last.data.length - 20]! ^= 0xff;
      db.prepare('UPDATE blob_chunks SET data = ? WHERE id = ?').run(last.data, last.id);
    } finally {
      db.close();
    }
    const broken = await connect();
    const other = await connect();
    await broken.command('s', 'SELECT INBOX');
    await expect(broken.command('f', 'FETCH 1 (BODY.PEEK[])')).rejects.toThrow(/connection closed/);
    expect(broken.closed).toBe(true);
    expect((await other.command('n', 'NOOP')).pop()).toBe('n OK NOOP completed');
    expect((await other.command('s', 'SELECT INBOX')).pop()).toMatch(/^s OK/);
  });
});
