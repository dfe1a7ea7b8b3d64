import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES, tempDir } from '../helpers/engines.js';
import { sampleMessage, startImapServer, USER, type ImapTestServer } from './harness.js';

const SCRIPT = fileURLToPath(new URL('./imaplib_client.py', import.meta.url));

describe.each(ENGINES)("Python's imaplib against the IMAP server (%s)", (engine) => {
  let server: ImapTestServer;
  const tmp = tempDir('mss-imaplib-');
  beforeAll(async () => {
    server = await startImapServer(engine);
  });
  afterAll(async () => {
    await server?.dispose();
    tmp.dispose();
  });

  it('logs in over STARTTLS and TLS; LIST, APPEND, SELECT, FETCH (BODY[], BODYSTRUCTURE, PREVIEW), STORE, COPY, MOVE, EXPUNGE, IDLE, SEARCH, UTF8=ACCEPT', async () => {
    const raw = sampleMessage('Résultat de biologie', 'TSH : 2,1 mUI/L.\r\n');
    const file = path.join(tmp.dir, 'message.eml');
    writeFileSync(file, raw);
    const args = [SCRIPT, '127.0.0.1', String(server.ports.plain), String(server.ports.tls), USER.address, USER.password, file];
    // Asynchronous: the server runs in this process and must keep answering while Python talks to it.
    const { stdout } = await promisify(execFile)('python3', args, { encoding: 'utf8', timeout: 60_000 });
    const result = JSON.parse(stdout) as Record<string, unknown>;
    expect(result).toMatchObject({
      logindisabled_before_tls: true,
      login_in_clear: expect.stringMatching(/PRIVACYREQUIRED|LOGINDISABLED|disabled/i),
      starttls_login: 'OK',
      login: 'OK',
      append: 'OK',
      exists: 1,
      fetched_equals_appended: true,
      store: 'OK',
      subject_header: 'Subject: Résultat de biologie\r\n\r\n',
      logout: 'BYE',
    });
    expect(result.append_code).toMatch(/^\[APPENDUID \d+ 1\] APPEND completed$/);
    expect(result.list).toContain('(\\HasNoChildren \\Sent) "/" "Sent"');
    expect(result.flags).toMatch(/^1 \(FLAGS \((?=.*\\Flagged)(?=.*\\Answered).*\)\)$/);
    expect(result).toMatchObject({
      create: 'OK',
      rename: 'OK',
      unsubscribe: 'OK',
      copy: 'OK',
      move: 'OK',
      expunge: ['2', '1'], // imaplib keeps the MOVE's EXPUNGE with those of EXPUNGE
      exists_after_expunge: 0,
      delete: 'OK',
      list_after_delete: ['(\\HasNoChildren) "/" "Dossiers"'], // CREATE made the parent a real folder
    });
    expect(result.lsub).toContain('() "/" "Dossiers/Durand"');
    expect(result.lsub).not.toContain('() "/" "Junk"');
    expect(result.copy_code).toMatch(/^\[COPYUID \d+ 1 1\] COPY completed$/);
    expect(result.move_untagged).toEqual([expect.stringMatching(/^\[COPYUID \d+ 2 1\] Moved$/)]);
    expect(result).toMatchObject({
      idle_continuation: '+ idling',
      idle_pushed: '* 1 EXISTS',
      idle_done: 'Z1 OK IDLE terminated',
      search_all: '1',
      search_flagged: '1',
      search_unflagged: '',
      uid_search_subject: '3',
      preview: '1 (PREVIEW "TSH : 2,1 mUI/L.")',
      enable_utf8: 'OK',
      create_utf8: 'OK',
      list_utf8: ['(\\HasNoChildren) "/" "Réunions"'],
      list_mutf7: ['(\\HasNoChildren) "/" "R&AOk-unions"'],
    });
    expect(result.bodystructure).toMatch(/^1 \(UID 1 BODYSTRUCTURE \("TEXT" "PLAIN" \("charset" "utf-8"\) NIL NIL "8BIT" \d+ 1 NIL NIL NIL NIL\) RFC822\.SIZE \d+\)$/);
  });
});
