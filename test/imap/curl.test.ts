import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES, tempDir } from '../helpers/engines.js';
import { sampleMessage, startImapServer, tlsMaterial, USER, type ImapTestServer } from './harness.js';

/**
 * curl's IMAP URLs (RFC 5092) against the server: FETCH by UID, a section, LIST, SEARCH in the URL query, custom
 * commands with -X, APPEND with -T, on the TLS listener and over STARTTLS (--ssl-reqd), verifying the server's
 * certificate. Asynchronous: the server runs in this process and must keep answering while curl talks to it.
 */

const run = promisify(execFile);

describe.each(ENGINES)('curl IMAP URLs against the IMAP server (%s)', (engine) => {
  let server: ImapTestServer;
  const tmp = tempDir('mss-curl-imap-');
  const caFile = path.join(tmp.dir, 'ca.pem');
  const messages = [sampleMessage('Résultat de biologie', 'TSH : 2,1 mUI/L.\r\n'), sampleMessage('Compte rendu opératoire', 'Suites simples.\r\n')];

  beforeAll(async () => {
    server = await startImapServer(engine);
    writeFileSync(caFile, tlsMaterial().cert);
    for (const m of messages) await server.deliver(m);
  });
  afterAll(async () => {
    await server?.dispose();
    tmp.dispose();
  });

  /** curl with the test certificate as the only trust anchor, `localhost` pinned to the loopback address. */
  async function curl(url: string, extra: string[] = []): Promise<Buffer> {
    const port = new URL(url.replace(/;.*$/, '')).port;
    const args = ['--silent', '--show-error', '--max-time', '30', '--cacert', caFile, '--resolve', `localhost:${port}:127.0.0.1`];
    const { stdout } = await run('curl', [...args, '--user', `${USER.address}:${USER.password}`, ...extra, url], { encoding: 'buffer', timeout: 60_000 });
    return stdout;
  }
  const imaps = (rest: string) => `imaps://localhost:${server.ports.tls}/${rest}`;
  const imap = (rest: string) => `imap://localhost:${server.ports.plain}/${rest}`;

  it('fetches a message by UID, byte for byte, on the TLS listener and over STARTTLS', async () => {
    expect(Buffer.compare(await curl(imaps('INBOX;UID=1')), messages[0]!)).toBe(0);
    expect(Buffer.compare(await curl(imap('INBOX;UID=2'), ['--ssl-reqd']), messages[1]!)).toBe(0);
  });

  it('fetches a section', async () => {
    const header = (await curl(imaps('INBOX;UID=1;SECTION=HEADER'))).toString('utf8');
    expect(header).toContain('Subject: Résultat de biologie\r\n');
    expect(header.endsWith('\r\n\r\n')).toBe(true);
  });

  it('lists folders', async () => {
    const lines = (await curl(imaps(''))).toString('utf8').trim().split(/\r?\n/);
    expect(lines).toEqual([
      '* LIST (\\HasNoChildren) "/" "INBOX"',
      '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
      '* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
      '* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
      '* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
    ]);
  });

  it('searches with the URL query and runs custom commands (-X)', async () => {
    expect((await curl(imaps('INBOX?SUBJECT%20biologie'))).toString().trim()).toBe('* SEARCH 1');
    expect((await curl(imaps('INBOX'), ['-X', 'UID SEARCH ALL'])).toString().trim()).toBe('* SEARCH 1 2');
    expect((await curl(imaps('INBOX'), ['-X', 'UID FETCH 1 (PREVIEW)'])).toString().trim()).toBe('* 1 FETCH (UID 1 PREVIEW "TSH : 2,1 mUI/L.")');
    expect((await curl(imaps(''), ['-X', 'STATUS INBOX (MESSAGES UIDNEXT)'])).toString().trim()).toBe('* STATUS "INBOX" (MESSAGES 2 UIDNEXT 3)');
  });

  it('appends with -T', async () => {
    const file = path.join(tmp.dir, 'upload.eml');
    const upload = sampleMessage('Envoyé par curl', 'Pièce jointe à suivre.\r\n');
    writeFileSync(file, upload);
    await curl(imaps('Sent'), ['-T', file]);
    expect(Buffer.compare(await curl(imaps('Sent;UID=1')), upload)).toBe(0);
  });

  it('refuses a login in clear, and a wrong password', async () => {
    await expect(run('curl', ['--silent', '--max-time', '30', '--user', `${USER.address}:${USER.password}`, `imap://127.0.0.1:${server.ports.plain}/INBOX;UID=1`])).rejects.toMatchObject({
      code: 67, // CURLE_LOGIN_DENIED: LOGINDISABLED and no mechanism before TLS
    });
    await expect(curl(imaps('INBOX;UID=1'), ['--user', `${USER.address}:wrong`])).rejects.toMatchObject({ code: 67 });
  });
});
