import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { afterEach, describe, expect, it } from 'vitest';
import { ENGINES, tempDir } from '../helpers/engines.js';
import { ImapLineClient, sampleMessage, startImapServer, USER, type ImapTestServer } from './harness.js';

const SCRIPT = fileURLToPath(new URL('./imaplib_compress.py', import.meta.url));

/** Half text that compresses well, half random base64 that does not. */
function bigMessage(bytes: number): Buffer {
  const text = 'Résultats normaux, contrôle dans six mois.\r\n'.repeat(Math.ceil(bytes / 2 / 44));
  const random = (randomBytes(Math.ceil((bytes / 2) * 0.75)).toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
  return Buffer.concat([sampleMessage('Gros compte rendu', ''), Buffer.from(text + random + '\r\n')]);
}

/**
 * COMPRESS=DEFLATE (RFC 4978) with independent clients: imapflow (which turns it on by itself after login) and
 * Python's imaplib wrapped with zlib; changes pushed in IDLE through the compressor; a client that stops
 * reading is disconnected after the idle timeout (back-pressure holds through the deflater).
 */
describe.each(ENGINES)('COMPRESS=DEFLATE (%s)', (engine) => {
  let server: ImapTestServer | null = null;
  const clients: ImapLineClient[] = [];
  const tmp = tempDir('mss-compress-');
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await server?.dispose();
    server = null;
  });

  it('imapflow compresses after login, appends and fetches back a large message byte for byte', async () => {
    server = await startImapServer(engine);
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
      expect((flow as unknown as { _deflate?: object })._deflate).toBeTruthy();
      const raw = bigMessage(3 * 1024 * 1024);
      const appended = await flow.append('INBOX', raw, ['\\Seen']);
      expect(appended && appended.uid).toBe(1);
      await flow.mailboxOpen('INBOX');
      const msg = await flow.fetchOne('1', { source: true, flags: true });
      expect(msg && Buffer.compare(msg.source!, raw)).toBe(0);
      expect(msg && [...msg.flags!]).toEqual(['\\Seen']);
      // No limit configured: GETQUOTAROOT names no root, so there are no resources.
      expect(await flow.getQuota('INBOX')).toEqual({ path: 'INBOX' });
    } finally {
      await flow.logout().catch(() => flow.close());
    }
  });

  it('pushes new mail to a compressed session in IDLE', async () => {
    server = await startImapServer(engine);
    const a = await ImapLineClient.connect(server.ports.tls, { tls: true });
    clients.push(a);
    await a.line();
    await a.login();
    expect(await a.command('a1', 'COMPRESS DEFLATE')).toEqual(['a1 OK DEFLATE active']);
    a.compress();
    expect((await a.command('a2', 'SELECT INBOX')).pop()).toMatch(/^a2 OK/);
    a.send('a3 IDLE');
    expect(await a.line()).toBe('+ idling');
    await server.deliver(sampleMessage('pushed'));
    expect(await a.line()).toBe('* 1 EXISTS');
    a.send('DONE');
    expect(await a.until('a3')).toEqual(['a3 OK IDLE terminated']);
  });

  it('disconnects a compressed client that stops reading a large response, after the idle timeout', async () => {
    server = await startImapServer(engine, { idleTimeoutMs: 1500 });
    // Incompressible: what is sent is as large as the messages, more than the socket buffers hold.
    for (let i = 0; i < 3; i++) await server.deliver(Buffer.concat([sampleMessage(`r${i}`, ''), Buffer.from(randomBytes(6 * 1024 * 1024).toString('base64'))]));
    const a = await ImapLineClient.connect(server.ports.tls, { tls: true });
    clients.push(a);
    await a.line();
    await a.login();
    await a.command('a1', 'COMPRESS DEFLATE');
    a.compress();
    expect((await a.command('a2', 'SELECT INBOX')).pop()).toMatch(/^a2 OK/);
    a.pauseReading();
    a.send('a3 FETCH 1:3 BODY.PEEK[]');
    // Long enough for the server to give up on a client that does not read; then read what was sent.
    await new Promise((r) => setTimeout(r, 4000));
    a.resumeReading();
    const rest = await a.closedByServer(20_000);
    expect(rest).toContain('* 1 FETCH (BODY[] {');
    // The response was cut: had the server buffered it all instead of waiting, it would have completed.
    expect(rest).not.toContain('a3 OK');
  });

  it("Python's imaplib compresses over TLS and after STARTTLS", async () => {
    server = await startImapServer(engine);
    const raw = bigMessage(1024 * 1024);
    const file = path.join(tmp.dir, `big-${engine}.eml`);
    writeFileSync(file, raw);
    const args = [SCRIPT, '127.0.0.1', String(server.ports.plain), String(server.ports.tls), USER.address, USER.password, file];
    const { stdout } = await promisify(execFile)('python3', args, { encoding: 'utf8', timeout: 60_000 });
    const result = JSON.parse(stdout) as Record<string, unknown>;
    expect(result).toMatchObject({
      advertised: true,
      compress: 'OK',
      compress_again: 'NO',
      append: 'OK',
      exists: 1,
      fetched_equals_appended: true,
      quotaroot: [['"INBOX"'], []],
      logout: 'BYE',
      starttls_compress: 'OK',
      starttls_size: `1 (RFC822.SIZE ${raw.length})`,
      starttls_logout: 'BYE',
    });
    // The message went both ways deflated: much less than its size arrived.
    expect(result.compressed_bytes_in).toBeLessThan(raw.length * 0.8);
  });
});
