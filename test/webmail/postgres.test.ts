import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO, passwordOf, startOperator, type TestOperator } from '../helpers/operator.js';
import { csrfOf, folderIdOf, loginByWeb, WebClient } from './helpers.js';

/**
 * The webmail on the PostgreSQL engine: sessions in the shared database (a second server process on the same
 * database would know them), compose with an attachment, read, download, and the isolation between users.
 */
describe('webmail on PostgreSQL', () => {
  let op: TestOperator;
  beforeAll(async () => {
    op = await startOperator({}, 'postgres');
  }, 60_000);
  afterAll(() => op?.dispose());

  it('sends, reads and downloads; a session survives a server restart; another user gets 404', async () => {
    const jean = new WebClient(op.ports.https, op.ca);
    expect((await loginByWeb(jean, DEMO.jean, passwordOf(op, DEMO.jean))).status).toBe(303);
    const form = new FormData();
    form.set('_csrf', csrfOf((await jean.get('/compose')).body));
    form.set('to', DEMO.claire);
    form.set('subject', 'Avis de cardiologie');
    form.set('body', 'Bonjour, voici mon avis.');
    form.set('files', new Blob([Buffer.from('contenu du compte rendu')], { type: 'text/plain' }), 'avis.txt');
    expect((await jean.postMultipart('/send', form)).status).toBe(303);

    const claire = new WebClient(op.ports.https, op.ca);
    expect((await loginByWeb(claire, DEMO.claire, passwordOf(op, DEMO.claire))).status).toBe(303);
    // Sessions live in the database: a restarted server (another process, for the cookie) still knows them.
    await op.restart();
    const inbox = folderIdOf((await claire.get('/history')).body, /Boîte de réception/);
    const list = await claire.get(`/folder/${inbox}`);
    expect(list.body).toContain('Avis de cardiologie');
    expect(list.body).toContain('<tr class="unread">');
    const page = await claire.get(`/folder/${inbox}/1`);
    expect(page.body).toContain('Bonjour, voici mon avis.');
    const file = await claire.get(`/folder/${inbox}/1/attachment/0`);
    expect(file.body).toBe('contenu du compte rendu');
    expect((await jean.get(`/folder/${inbox}/1`)).status).toBe(404);
    expect((await jean.get(`/api/folders/${inbox}/messages/1/attachments/0`)).status).toBe(404);
    expect((await claire.get('/history')).body).toContain('Lecture');
  });
});
