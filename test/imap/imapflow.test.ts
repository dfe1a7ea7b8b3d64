import { readFileSync } from 'node:fs';
import { ImapFlow } from 'imapflow';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyJournal } from '../../src/audit/journal.js';
import { ENGINES } from '../helpers/engines.js';
import { sampleMessage, startImapServer, USER, type ImapTestServer } from './harness.js';

/** An independent client (imapflow, unmodified) against the real server on both listeners. */

function client(port: number, secure = true): ImapFlow {
  return new ImapFlow({
    host: '127.0.0.1',
    port,
    secure,
    doSTARTTLS: secure ? undefined : true,
    tls: { rejectUnauthorized: false },
    auth: { user: USER.address, pass: USER.password },
    logger: false,
    disableAutoIdle: true,
  });
}

async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.each(ENGINES)('imapflow against the IMAP server (%s)', (engine) => {
  let server: ImapTestServer;
  const open: ImapFlow[] = [];
  const connect = async (c: ImapFlow) => {
    open.push(c);
    await c.connect();
    return c;
  };

  beforeEach(async () => {
    server = await startImapServer(engine);
  });
  afterEach(async () => {
    for (const c of open.splice(0)) await c.logout().catch(() => c.close());
    await server.dispose();
  });

  it('logs in, lists, appends, fetches back byte for byte, sets flags; a second session sees them; they survive a restart', async () => {
    const a = await connect(client(server.ports.tls));
    const folders = await a.list();
    expect(folders.map((f) => f.path).sort()).toEqual(['Drafts', 'INBOX', 'Junk', 'Sent', 'Trash']);
    expect(folders.find((f) => f.path === 'Sent')?.specialUse).toBe('\\Sent');

    const raw = sampleMessage('Résultats – échographie', 'Bonjour,\r\nLe compte rendu est joint.\r\n');
    const appended = await a.append('INBOX', raw, ['\\Draft'], new Date('2026-01-02T03:04:05Z'));
    expect(appended && appended.uid).toBe(1);

    const mailbox = await a.mailboxOpen('INBOX');
    expect(mailbox.exists).toBe(1);
    const msg = await a.fetchOne('1', { source: true, envelope: true, bodyStructure: true, flags: true, uid: true, internalDate: true, size: true });
    if (!msg) throw new Error('no message');
    expect(msg.uid).toBe(1);
    expect(Buffer.compare(msg.source!, raw)).toBe(0);
    expect(msg.size).toBe(raw.length);
    expect(msg.envelope?.from?.[0]).toMatchObject({ name: 'Dr Jean Dupont', address: 'jean.dupont@hopital-demo.mssante.test' });
    expect(msg.envelope?.subject).toBe('Résultats – échographie');
    expect(msg.bodyStructure).toMatchObject({ type: 'text/plain', parameters: { charset: 'utf-8' }, encoding: '8bit' });
    expect([...msg.flags!]).toEqual(['\\Draft']);
    expect((msg.internalDate as Date).toISOString()).toBe('2026-01-02T03:04:05.000Z');

    expect(await a.messageFlagsAdd('1', ['\\Seen', '\\Flagged'])).toBe(true);

    const b = await connect(client(server.ports.tls));
    await b.mailboxOpen('INBOX');
    const seenByB = await b.fetchOne('1', { flags: true });
    expect(seenByB && [...seenByB.flags!].sort()).toEqual(['\\Draft', '\\Flagged', '\\Seen']);

    // Changes made by A reach B at its next command: new flags and a new message.
    const flagEvents: { uid?: number; flags: Set<string> }[] = [];
    const existsEvents: number[] = [];
    b.on('flags', (e: { uid?: number; flags: Set<string> }) => flagEvents.push(e));
    b.on('exists', (e: { count: number }) => existsEvents.push(e.count));
    await a.messageFlagsRemove('1', ['\\Flagged']);
    await a.append('INBOX', sampleMessage('second'));
    await b.noop();
    await until(() => flagEvents.length > 0 && existsEvents.length > 0, 'untagged updates');
    expect([...flagEvents[0]!.flags].sort()).toEqual(['\\Draft', '\\Seen']);
    expect(existsEvents).toEqual([2]);

    for (const c of open.splice(0)) await c.logout();
    await server.restart();
    const c = await connect(client(server.ports.tls));
    await c.mailboxOpen('INBOX');
    const afterRestart = await c.fetchOne('1', { flags: true, source: true });
    if (!afterRestart) throw new Error('message lost in the restart');
    expect([...afterRestart.flags!].sort()).toEqual(['\\Draft', '\\Seen']);
    expect(Buffer.compare(afterRestart.source!, raw)).toBe(0);

    const journal = await verifyJournal(server.store);
    expect(journal.ok).toBe(true);
    const audit = await server.store.readAudit(0, 1000);
    expect(audit.filter((r) => r.action === 'read').length).toBeGreaterThan(0);
    expect(audit.filter((r) => r.action === 'flag').length).toBe(2);
    expect(JSON.stringify(audit)).not.toContain('compte rendu');
  });

  it('works over STARTTLS on the plain listener and reads a multipart message part by part', async () => {
    const fixture = readFileSync(new URL('../fixtures/email/MessageWithAttachment.txt', import.meta.url));
    const uid = await server.deliver(fixture);
    const c = await connect(client(server.ports.plain, false));
    expect(c.secureConnection).toBe(true); // upgraded by STARTTLS: LOGIN is refused in clear
    await c.mailboxOpen('INBOX');
    const msg = await c.fetchOne(String(uid), { bodyStructure: true, headers: ['subject'], bodyParts: ['1', '2.mime'] }, { uid: true });
    if (!msg) throw new Error('no message');
    expect(msg.bodyStructure?.childNodes?.map((n) => n.type)).toEqual(['text/plain', 'image/png']);
    expect(msg.bodyStructure?.childNodes?.[1]).toMatchObject({ part: '2', disposition: 'attachment', dispositionParameters: { filename: 'iMac-icon.png' } });
    expect(msg.headers?.toString()).toBe('Subject: test pic\r\n\r\n');
    expect(msg.bodyParts?.get('1')?.toString()).toBe('test pic\r\n');
    const download = await c.download(String(uid), '2', { uid: true });
    const chunks: Buffer[] = [];
    for await (const chunk of download.content!) chunks.push(chunk as Buffer);
    const png = Buffer.concat(chunks);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(download.meta?.contentType).toBe('image/png');
    // imapflow reads with BODY.PEEK, so the message stays unseen.
    const flags = await c.fetchOne(String(uid), { flags: true }, { uid: true });
    expect(flags && [...flags.flags!]).toEqual([]);
  });

  it('deletes messages in one session; the other sees EXPUNGE and EXISTS with the right numbers', async () => {
    for (let i = 1; i <= 4; i++) await server.deliver(sampleMessage(`m${i}`));
    const a = await connect(client(server.ports.tls));
    const b = await connect(client(server.ports.tls));
    await a.mailboxOpen('INBOX');
    await b.mailboxOpen('INBOX');
    const expunged: number[] = [];
    const exists: number[] = [];
    b.on('expunge', (e: { seq: number }) => expunged.push(e.seq));
    b.on('exists', (e: { count: number }) => exists.push(e.count));

    expect(await a.messageDelete('2:3')).toBe(true);
    expect(a.mailbox && a.mailbox.exists).toBe(2);
    await a.append('INBOX', sampleMessage('m5'));
    await b.noop();
    await until(() => expunged.length === 2 && exists.length === 1, 'EXPUNGE and EXISTS in the second session');
    expect(expunged).toEqual([2, 2]);
    expect(exists).toEqual([3]);
    expect(b.mailbox && b.mailbox.exists).toBe(3);
    const uids: number[] = [];
    for await (const msg of b.fetch('1:*', { uid: true })) uids.push(msg.uid);
    expect(uids).toEqual([1, 4, 5]);

    // UID EXPUNGE (UIDPLUS) removes only the message asked for.
    await b.messageFlagsAdd('1', ['\\Deleted']);
    expect(await a.messageDelete('4', { uid: true })).toBe(true);
    const remaining: number[] = [];
    for await (const msg of a.fetch('1:*', { uid: true, flags: true })) remaining.push(msg.uid);
    expect(remaining).toEqual([1, 5]);
    const audit = await server.store.readAudit(0, 100);
    expect(audit.filter((r) => r.action === 'delete')).toHaveLength(2);
  });

  it('receives new mail while in IDLE', async () => {
    const a = await connect(client(server.ports.tls));
    const b = await connect(client(server.ports.tls));
    await a.mailboxOpen('INBOX');
    const exists: number[] = [];
    a.on('exists', (e: { count: number }) => exists.push(e.count));
    const idling = a.idle();
    await new Promise((r) => setTimeout(r, 100));
    await b.append('INBOX', sampleMessage('pushed'));
    await until(() => exists.length > 0, 'an exists event during IDLE');
    expect(exists).toEqual([1]);
    await a.noop(); // imapflow ends IDLE (DONE) before running the next command
    await idling;
    expect(a.usable).toBe(true);
  });

  it('creates, renames, subscribes and deletes folders; copies and moves with COPYUID', async () => {
    const c = await connect(client(server.ports.tls));
    expect(await c.mailboxCreate(['Patients', 'Dupont'])).toMatchObject({ path: 'Patients/Dupont', created: true });
    expect(await c.mailboxRename('Patients/Dupont', 'Patients/Durand')).toMatchObject({ newPath: 'Patients/Durand' });
    await c.mailboxCreate('Échanges');
    const listed = (await c.list()).map((f) => f.path);
    expect(listed).toEqual(expect.arrayContaining(['Patients', 'Patients/Durand', 'Échanges']));
    expect(listed).not.toContain('Patients/Dupont');
    expect(await c.mailboxUnsubscribe('Échanges')).toBe(true);
    expect((await c.listTree()).folders?.map((f) => f.path)).toContain('Patients');
    const lsub = (await c.list({ statusQuery: {} })).filter((f) => f.subscribed).map((f) => f.path);
    expect(lsub).not.toContain('Échanges');
    expect(lsub).toContain('Patients/Durand');

    for (let i = 1; i <= 3; i++) await server.deliver(sampleMessage(`m${i}`));
    await c.mailboxOpen('INBOX');
    const copied = await c.messageCopy('1:2', 'Patients/Durand');
    expect(copied && copied.uidMap && [...copied.uidMap]).toEqual([
      [1, 1],
      [2, 2],
    ]);
    const moved = await c.messageMove('3', 'Échanges', { uid: true });
    expect(moved && moved.uidMap && [...moved.uidMap]).toEqual([[3, 1]]);
    expect(c.mailbox && c.mailbox.exists).toBe(2);
    const status = await c.status('Échanges', { messages: true, uidNext: true });
    expect(status).toMatchObject({ messages: 1, uidNext: 2 });
    const moved2 = await c.mailboxOpen('Échanges');
    const msg = await c.fetchOne('1', { source: true });
    expect(msg && msg.source?.toString()).toContain('Subject: m3');
    expect(moved2.exists).toBe(1);

    await c.mailboxClose();
    expect(await c.mailboxDelete('Patients/Durand')).toMatchObject({ path: 'Patients/Durand' });
    await expect(c.mailboxDelete('INBOX')).rejects.toThrow();
    expect((await c.list()).map((f) => f.path)).not.toContain('Patients/Durand');
    const actions = (await server.store.readAudit(0, 100)).map((r) => r.action);
    expect(actions).toEqual(expect.arrayContaining(['folder-create', 'folder-rename', 'folder-delete', 'copy', 'move']));
    expect((await verifyJournal(server.store)).ok).toBe(true);
  });

  it('runs as an IMAP4rev2 session with UTF-8 names (ESEARCH, STATUS SIZE); an IMAP4rev1 session sees the same folders', async () => {
    const rev2 = await connect(client(server.ports.tls));
    expect([...rev2.enabled]).toEqual(expect.arrayContaining(['IMAP4REV2', 'UTF8=ACCEPT', 'CONDSTORE']));
    const rev1 = await connect(new ImapFlow({ ...client(server.ports.tls).options, disableAutoEnable: true }));
    expect(rev1.enabled.size).toBe(0);

    expect(await rev2.mailboxCreate(['Réunions', 'Février'])).toMatchObject({ path: 'Réunions/Février', created: true });
    expect(await server.store.getFolder(server.mailbox.id, 'Réunions/Février')).not.toBeNull();
    for (const c of [rev1, rev2]) expect((await c.list()).map((f) => f.path)).toEqual(expect.arrayContaining(['Réunions', 'Réunions/Février']));

    for (let i = 1; i <= 3; i++) await server.deliver(sampleMessage(`m${i}`));
    await rev2.mailboxOpen('INBOX');
    expect(await rev2.search({ subject: 'm2' })).toEqual([2]);
    expect(await rev2.search({ all: true }, { uid: true })).toEqual([1, 2, 3]);
    expect(await rev2.search({ deleted: true })).toEqual([]);
    const status = await rev2.status('INBOX', { messages: true, size: true });
    expect(status).toMatchObject({ messages: 3 });
    expect(status && status.size).toBeGreaterThan(300);

    const moved = await rev2.messageMove('2', 'Réunions/Février');
    expect(moved && moved.uidMap && [...moved.uidMap]).toEqual([[2, 1]]);
    expect(await rev1.status('Réunions/Février', { messages: true })).toMatchObject({ messages: 1 });
    await rev1.mailboxOpen('Réunions/Février');
    const msg = await rev1.fetchOne('1', { envelope: true });
    expect(msg && msg.envelope?.subject).toBe('m2');
  });

  it('refuses an APPEND beyond the advertised APPENDLIMIT', async () => {
    await server.dispose();
    server = await startImapServer(engine, { maxLiteralSize: 1000 });
    const c = await connect(client(server.ports.tls));
    await expect(c.append('INBOX', Buffer.alloc(5000, 0x61))).rejects.toThrow(/APPENDLIMIT|TOOBIG|too/i);
    const status = await c.mailboxOpen('INBOX');
    expect(status.exists).toBe(0);
  });
});
