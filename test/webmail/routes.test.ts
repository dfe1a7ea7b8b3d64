import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildXdm } from '../../src/mime/xdm/build.js';
import { CSP } from '../../src/webmail/http-io.js';
import { withOperatorStore } from '../helpers/federation.js';
import { DEMO, passwordOf, startOperator, type TestOperator } from '../helpers/operator.js';
import { mimeMessage } from '../mime/xdm-test-message.js';
import { activateByWeb, activationCode, csrfOf, folderIdOf, ins, loginByWeb, smtpSend, totpAt, WebClient } from './helpers.js';

/**
 * The webmail over HTTPS with a cookie jar: security headers, cookies, CSRF, the patient rules as the webmail
 * explains them, audit, and — for every route — that one user cannot reach another's message, attachment or
 * document by changing an id.
 */

const CDA = readFileSync(path.join(import.meta.dirname, '../fixtures/cda/fr/LDL-SES_2022.01.xml'));
/** The discharge letter with the patient's INS in place of the fixture's (the pipeline checks they match). */
const cdaFor = (to: string) => Buffer.from(CDA.toString('utf8').replaceAll('279035121518989', to.split('@')[0]!), 'utf8');
const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');
const PATIENT_B = `${ins('2800175123456')}@patient.mssante.test`;
const PASSWORD_A = 'mot de passe du patient A';
const PASSWORD_B = 'mot de passe du patient B';

function report(to: string, extra = ''): Buffer {
  const zip = buildXdm({ documents: [{ content: cdaFor(to) }] });
  return mimeMessage(
    [
      { filename: 'IHE_XDM.ZIP', type: 'application/zip', content: zip },
      { filename: 'compte-rendu.pdf', type: 'application/pdf', content: PDF },
    ],
    `Message-ID: <${Math.random().toString(36).slice(2)}@hopital-demo.mssante.test>\r\n${extra}`,
    { from: DEMO.dpi, to, subject: 'XDM/1.0/DDM+Lettre de liaison de sortie DUPONT Jeanne 01/01/1970' },
  );
}

describe('webmail routes (HTTPS, cookies, CSRF, isolation)', () => {
  let op: TestOperator;
  const a = () => new WebClient(op.ports.https, op.ca);
  let patientA: WebClient;
  let patientB: WebClient;
  let secretA: Buffer;
  let secretB: Buffer;
  let inboxA: number;

  beforeAll(async () => {
    op = await startOperator({ webmail: { maxFormBytes: 4096, maxUploadBytes: 200_000, maxFailuresPerIp: 12 } });
    await smtpSend(op, DEMO.dpi, [DEMO.patient], report(DEMO.patient, `Disposition-Notification-To: ${DEMO.dpi}\r\n`));
    await smtpSend(op, DEMO.dpi, [PATIENT_B], report(PATIENT_B));
    patientA = a();
    patientB = a();
    secretA = await activateByWeb(patientA, await activationCode(op, DEMO.patient), DEMO.patient.split('@')[0]!, PASSWORD_A);
    secretB = await activateByWeb(patientB, await activationCode(op, PATIENT_B), PATIENT_B, PASSWORD_B);
    inboxA = folderIdOf((await patientA.get('/history')).body, /Boîte de réception/);
  }, 60_000);
  afterAll(() => op?.dispose());

  it('sends the strict CSP and the other security headers, and pages carry no inline script or style', async () => {
    const r = await a().get('/login');
    expect(r.status).toBe(200);
    expect(r.headers['content-security-policy']).toBe(CSP);
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['x-frame-options']).toBe('DENY');
    expect(r.headers['referrer-policy']).toBe('no-referrer');
    for (const page of [r.body, (await patientA.get(`/folder/${inboxA}`)).body, (await patientA.get(`/folder/${inboxA}/1`)).body]) {
      expect(page).toMatch(/^<!DOCTYPE html>\n<html lang="fr">/);
      expect(page).not.toMatch(/<script(?![^>]*\ssrc="\/static\/)/);
      expect(page).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    }
    const js = await a().get(/src="(\/static\/app\.js\?v=[0-9a-f]+)"/.exec(r.body)![1]!);
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    expect(js.headers['cache-control']).toMatch(/immutable/);
    expect((await a().get('/static/nothing.js')).status).toBe(404);
  });

  it('sets the session cookie HttpOnly, Secure, SameSite=Strict, and rotates it after the second factor', async () => {
    const web = a();
    const first = await web.submit('/login', '/login', { address: DEMO.patient, password: PASSWORD_A });
    expect(first.status).toBe(303);
    expect(first.headers.location).toBe('/login/totp');
    const cookie = (first.headers['set-cookie'] ?? []).find((c) => c.startsWith('__Host-mss-session='))!;
    expect(cookie).toMatch(/; Path=\/; Secure; SameSite=Strict; HttpOnly/);
    const passwordOnly = web.cookies.get('__Host-mss-session');
    // The password alone opens nothing.
    expect((await web.get(`/folder/${inboxA}`)).status).toBe(303);
    expect((await web.get('/api/folders')).status).toBe(401);
    const second = await web.submit('/login/totp', '/login/totp', { totp: totpAt(secretA, 1) });
    expect(second.status).toBe(303);
    expect(web.cookies.get('__Host-mss-session')).not.toBe(passwordOnly);
    expect((await web.get(`/folder/${inboxA}`)).status).toBe(200);
    // The old cookie is dead.
    const replay = a();
    replay.cookies.set('__Host-mss-session', passwordOnly!);
    expect((await replay.get('/login/totp')).headers.location).toBe('/login?expired=1');
    // Logging out ends the session on the server.
    const token = web.cookies.get('__Host-mss-session')!;
    expect((await web.submit(`/folder/${inboxA}`, '/logout', {})).status).toBe(303);
    const after = a();
    after.cookies.set('__Host-mss-session', token);
    expect((await after.get(`/folder/${inboxA}`)).status).toBe(303);
  });

  it('refuses forms without the right CSRF token (403), logged in or not', async () => {
    expect((await patientA.post('/logout', {})).status).toBe(403);
    expect((await patientA.post('/logout', { _csrf: 'x'.repeat(43) })).status).toBe(403);
    expect((await patientA.post(`/folder/${inboxA}/1/delete`, {})).status).toBe(403);
    expect((await a().post('/login', { address: DEMO.jean, password: passwordOf(op, DEMO.jean) })).status).toBe(403);
    // Patient A is still logged in and the message still in the inbox.
    expect((await patientA.get(`/folder/${inboxA}/1`)).status).toBe(200);
  });

  it('redirects anonymous pages to the login, answers 401 on the API, and keeps patients off HTTP Basic', async () => {
    const anon = a();
    const page = await anon.get(`/folder/${inboxA}/1`);
    expect(page.status).toBe(303);
    expect(page.headers.location).toBe('/login');
    expect((await anon.get('/api/folders')).status).toBe(401);
    const basic = (user: string, pass: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` });
    expect((await anon.get('/api/folders', basic(DEMO.patient, PASSWORD_A))).status).toBe(403);
    const jean = await anon.get('/api/folders', basic(DEMO.jean, passwordOf(op, DEMO.jean)));
    expect(jean.status).toBe(200);
    expect(JSON.parse(jean.body)).toMatchObject({ folders: [{ name: 'INBOX' }, { name: 'Sent' }, { name: 'Trash' }] });
    expect((await anon.get('/nothing')).status).toBe(404);
  });

  it('shows the inbox with unread counts, the message with its attachments, and audits the read', async () => {
    const inbox = await patientA.get(`/folder/${inboxA}`);
    expect(inbox.body).toContain('Lettre de liaison de sortie DUPONT Jeanne');
    expect(inbox.body).not.toContain('XDM/1.0/DDM+');
    const message = await patientA.get(`/folder/${inboxA}/1`);
    expect(message.body).toContain('IHE_XDM.ZIP');
    expect(message.body).toContain('compte-rendu.pdf');
    expect(message.body).toContain(`/folder/${inboxA}/1/attachment/0/xdm`);
    const pdf = await patientA.get(`/folder/${inboxA}/1/attachment/1`);
    expect(pdf.status).toBe(200);
    expect(pdf.bytes.equals(PDF)).toBe(true);
    expect(pdf.headers['content-disposition']).toMatch(/^attachment; filename="compte-rendu.pdf"/);
    const history = await patientA.get('/history');
    expect(history.body).toContain('Lecture');
    expect(history.body).toContain('webmail');
    expect((await patientB.get('/history')).body).not.toContain(DEMO.patient);
  });

  it('opens the CDA viewer of the XDM attachment and saves the document to the patient space', async () => {
    const list = await patientA.get(`/folder/${inboxA}/1/attachment/0/xdm`);
    expect(list.status).toBe(200);
    const doc = /name="doc" value="([^"]+)"/.exec(list.body)![1]!;
    const view = await patientA.get(`/folder/${inboxA}/1/attachment/0/xdm?doc=${encodeURIComponent(doc)}`);
    expect(view.status).toBe(200);
    expect(view.body).toMatch(/<article class="cda"/);
    const saved = await patientA.post(`/folder/${inboxA}/1/attachment/0/xdm/save`, { _csrf: csrfOf(list.body), doc });
    expect(saved.status).toBe(303);
    const docUrl = saved.headers.location!.replace(/\?.*$/, '');
    expect(docUrl).toMatch(/^\/documents\/\d+$/);
    expect((await patientA.get(docUrl)).status).toBe(200);
    expect((await patientA.get('/documents')).body).toContain(`href="${docUrl}"`);
    expect((await patientA.get(`/api${docUrl}`)).status).toBe(200);
    const saves = await withOperatorStore(op, async (store) => (await store.readAudit(0, 100_000)).filter((r) => r.action === 'document-save'));
    expect(saves.map((r) => [r.actor, r.object])).toEqual([[DEMO.patient, `${DEMO.patient}${docUrl}`]]);
  });

  it('lets no user reach another user’s message, attachment, document or folder by changing an id (every route)', async () => {
    const docId = /href="\/documents\/(\d+)"/.exec((await patientA.get('/documents')).body)![1]!;
    const csrfB = csrfOf((await patientB.get('/history')).body);
    const base = `/folder/${inboxA}/1`;
    const gets = [
      `/folder/${inboxA}`,
      base,
      `${base}/attachment/0`,
      `${base}/attachment/1`,
      `${base}/attachment/0/xdm`,
      `${base}/reply`,
      `/documents/${docId}`,
      `/api/folders/${inboxA}/messages`,
      `/api${base.replace('/folder/', '/folders/').replace(/\/1$/, '/messages/1')}`,
      `/api/folders/${inboxA}/messages/1/attachments/1`,
      `/api/documents/${docId}`,
    ];
    for (const url of gets) expect((await patientB.get(url)).status, url).toBe(404);
    for (const action of ['delete', 'restore', 'receipt', 'attachment/0/xdm/save']) {
      expect((await patientB.post(`${base}/${action}`, { _csrf: csrfB, doc: 'SUBSET01/x' })).status, action).toBe(404);
    }
    const form = new FormData();
    form.set('_csrf', csrfB);
    form.set('folder', String(inboxA));
    form.set('uid', '1');
    form.set('to', DEMO.dpi);
    form.set('body', 'réponse volée');
    expect((await patientB.postMultipart('/send', form)).status).toBe(404);
    // Clinicians are held to the same: Jean cannot read the patient's folder either.
    const jean = a();
    await loginByWeb(jean, DEMO.jean, passwordOf(op, DEMO.jean));
    expect((await jean.get(base)).status).toBe(404);
    expect((await jean.get(`/documents/${docId}`)).status).toBe(404);
    // The webmail session also opens the address book (the compose page's completion), to professionals only.
    const book = await jean.get('/api/directory/search?q=mart');
    expect(book.status).toBe(200);
    expect((JSON.parse(book.body) as { results: { address: string }[] }).results.map((r) => r.address)).toContain(DEMO.claire);
    expect((await patientA.get('/api/directory/search?q=mart')).status).toBe(403);
    // Nothing moved: A still has the message, unread state aside.
    expect((await patientA.get(base)).status).toBe(200);
  });

  it('asks before sending a read receipt, sends it once, and the sender receives it', async () => {
    const page = await patientA.get(`/folder/${inboxA}/1`);
    expect(page.body).toContain('accusé de lecture');
    const sent = await patientA.post(`/folder/${inboxA}/1/receipt`, { _csrf: csrfOf(page.body) });
    expect(sent.status).toBe(303);
    const again = await patientA.get(`/folder/${inboxA}/1`);
    expect(again.body).not.toContain(`action="/folder/${inboxA}/1/receipt"`);
    const client = new ImapFlow({ host: '127.0.0.1', port: op.ports.imaps, secure: true, auth: { user: DEMO.dpi, pass: passwordOf(op, DEMO.dpi) }, tls: { ca: op.ca, servername: 'localhost' }, logger: false });
    await client.connect();
    try {
      const box = await client.mailboxOpen('INBOX');
      const last = await client.fetchOne(String(box.exists), { source: true });
      expect(last && last.source!.toString()).toMatch(/Disposition: manual-action\/MDN-sent-manually; displayed/);
    } finally {
      await client.logout();
    }
  });

  it('lets the patient reply to the professional only, and explains why not otherwise', async () => {
    const compose = await patientA.get('/compose');
    expect(compose.body).toContain('ne peut pas écrire le premier');
    expect(compose.body).not.toContain('action="/send"');
    const csrf = csrfOf(compose.body);
    const send = async (fields: Record<string, string>) => {
      const form = new FormData();
      form.set('_csrf', csrf);
      for (const [k, v] of Object.entries(fields)) form.set(k, v);
      return patientA.postMultipart('/send', form);
    };
    const initiate = await send({ to: DEMO.claire, subject: 'Bonjour', body: 'Je vous écris.' });
    expect(initiate.status).toBe(403);
    expect(initiate.body).toContain('ne peut pas écrire le premier');
    const elsewhere = await send({ folder: String(inboxA), uid: '1', to: DEMO.claire, subject: 'Re', body: 'À quelqu’un d’autre.' });
    expect(elsewhere.status).toBe(403);
    const reply = await patientA.get(`/folder/${inboxA}/1/reply`);
    expect(reply.status).toBe(200);
    expect(reply.body).toMatch(new RegExp(`id="to" name="to" value="${DEMO.dpi}" readonly`));
    const ok = await send({ folder: String(inboxA), uid: '1', to: DEMO.dpi, subject: 'Re: lettre', body: 'Merci docteur.' });
    expect(ok.status).toBe(303);
    expect(ok.headers.location).toMatch(/^\/folder\/\d+\?done=sent$/);
    expect((await patientA.get(ok.headers.location!)).body).toContain('Re: lettre');
  });

  it('disables the reply after the professional closed the conversation (X-MSS-MES: FIN)', async () => {
    await smtpSend(op, DEMO.dpi, [DEMO.patient], report(DEMO.patient, 'X-MSS-MES: FIN\r\n'));
    const inbox = await patientA.get(`/folder/${inboxA}`);
    const uid = Math.max(...[...inbox.body.matchAll(new RegExp(`href="/folder/${inboxA}/(\\d+)"`, 'g'))].map((m) => Number(m[1])));
    const page = await patientA.get(`/folder/${inboxA}/${uid}`);
    expect(page.body).toMatch(/<button type="button" disabled aria-describedby="reply-why">/);
    expect(page.body).toMatch(/id="reply-why"/);
    expect((await patientA.get(`/folder/${inboxA}/${uid}/reply`)).status).toBe(403);
  });

  it('lets a professional ask for a read receipt and close the conversation from the compose form', async () => {
    const jean = a();
    await loginByWeb(jean, DEMO.jean, passwordOf(op, DEMO.jean));
    const compose = await jean.get('/compose');
    const form = new FormData();
    form.set('_csrf', csrfOf(compose.body));
    form.set('to', DEMO.patient);
    form.set('subject', 'Résultats normaux');
    form.set('body', 'Vos résultats sont normaux, la conversation est close.');
    form.set('receipt', '1');
    form.set('close', '1');
    expect((await jean.postMultipart('/send', form)).status).toBe(303);
    const inbox = await patientA.get(`/folder/${inboxA}?q=${encodeURIComponent('résultats NORMAUX')}`);
    const uid = new RegExp(`href="/folder/${inboxA}/(\\d+)">Résultats normaux<`).exec(inbox.body)?.[1];
    expect(uid).toBeDefined();
    expect(inbox.body).not.toContain('Lettre de liaison');
    const page = await patientA.get(`/folder/${inboxA}/${uid}`);
    expect(page.body).toContain(`action="/folder/${inboxA}/${uid}/receipt"`);
    expect(page.body).toMatch(/<button type="button" disabled aria-describedby="reply-why">/);
    // The professional's copy is in Sent, and the JSON API serves the same message to the patient.
    const api = await patientA.get(`/api/folders/${inboxA}/messages/${uid}`);
    expect(api.status).toBe(200);
    expect(JSON.parse(api.body)).toMatchObject({ uid: Number(uid), subject: 'Résultats normaux', closed: true, receipt: { requested: true, sent: false } });
    const list = JSON.parse((await patientA.get(`/api/folders/${inboxA}/messages?q=normaux`)).body) as { total: number; messages: { uid: number }[] };
    expect(list.total).toBe(1);
    expect(list.messages[0]!.uid).toBe(Number(uid));
    const sentId = folderIdOf(compose.body, /Messages envoyés/);
    expect((await jean.get(`/folder/${sentId}`)).body).toContain('Résultats normaux');
  });

  it('moves a message to the trash and back', async () => {
    const page = await patientB.get('/history');
    const inboxB = folderIdOf(page.body, /Boîte de réception/);
    const trashB = folderIdOf(page.body, /Corbeille/);
    expect((await patientB.post(`/folder/${inboxB}/1/delete`, { _csrf: csrfOf(page.body) })).status).toBe(303);
    expect((await patientB.get(`/folder/${inboxB}/1`)).status).toBe(404);
    const trash = await patientB.get(`/folder/${trashB}`);
    const uid = new RegExp(`href="/folder/${trashB}/(\\d+)"`).exec(trash.body)![1]!;
    expect((await patientB.post(`/folder/${trashB}/${uid}/restore`, { _csrf: csrfOf(trash.body) })).status).toBe(303);
    expect((await patientB.get(`/folder/${inboxB}`)).body).toContain('Lettre de liaison');
  });

  it('locks the second factor out after repeated wrong codes, even for the right one', async () => {
    const web = a();
    for (let i = 0; i < 5; i++) {
      await web.submit('/login', '/login', { address: PATIENT_B, password: PASSWORD_B });
      const wrong = await web.submit('/login/totp', '/login/totp', { totp: '000000' });
      expect(wrong.status).toBe(401);
    }
    await web.submit('/login', '/login', { address: PATIENT_B, password: PASSWORD_B });
    const right = await web.submit('/login/totp', '/login/totp', { totp: totpAt(secretB, 1) });
    expect(right.status).toBe(401);
    expect((await web.get('/api/folders')).status).toBe(401);
  });

  it('lets a patient oppose the mailbox with the activation code, which then closes it', async () => {
    const patientC = `${ins('2750699123456')}@patient.mssante.test`;
    await smtpSend(op, DEMO.dpi, [patientC], report(patientC));
    const web = a();
    const code = await activationCode(op, patientC);
    const wrong = await web.submit('/activate', '/activate/oppose', { address: patientC, code: 'AAAA-BBBB-CCCC' });
    expect(wrong.status).toBe(400);
    const step1 = await web.submit('/activate', '/activate', { address: patientC, code });
    expect(step1.body).toContain('action="/activate/oppose"');
    const opposed = await web.post('/activate/oppose', { _csrf: csrfOf(step1.body), address: patientC, code });
    expect(opposed.status).toBe(200);
    expect(opposed.body).toContain('Votre opposition est enregistrée');
    expect((await web.submit('/activate', '/activate', { address: patientC, code })).status).toBe(400);
  });

  it('refuses forms and uploads over their limits (413) and bad recipients (400)', async () => {
    const big = await a().submit('/login', '/login', { address: DEMO.jean, password: 'x'.repeat(5000) });
    expect(big.status).toBe(413);
    const jean = a();
    await loginByWeb(jean, DEMO.jean, passwordOf(op, DEMO.jean));
    const csrf = csrfOf((await jean.get('/compose')).body);
    const form = (to: string, size: number) => {
      const f = new FormData();
      f.set('_csrf', csrf);
      f.set('to', to);
      f.set('subject', 'pièce jointe');
      f.set('body', 'Voir la pièce jointe.');
      f.set('files', new Blob([Buffer.alloc(size, 1)], { type: 'application/pdf' }), 'examen.pdf');
      return f;
    };
    expect((await jean.postMultipart('/send', form(DEMO.claire, 250_000))).status).toBe(413);
    expect((await jean.postMultipart('/send', form('pas une adresse', 10))).status).toBe(400);
    expect((await jean.postMultipart('/send', form('', 10))).status).toBe(400);
    // Under the limit it goes, with its attachment, and Claire can download it.
    const sent = await jean.postMultipart('/send', form(DEMO.claire, 150_000));
    expect(sent.status).toBe(303);
    const claire = a();
    await loginByWeb(claire, DEMO.claire, passwordOf(op, DEMO.claire));
    const inbox = folderIdOf((await claire.get('/history')).body, /Boîte de réception/);
    const page = await claire.get(`/folder/${inbox}/1`);
    expect(page.body).toContain('examen.pdf');
    const file = await claire.get(`/folder/${inbox}/1/attachment/0`);
    expect(file.bytes.equals(Buffer.alloc(150_000, 1))).toBe(true);
  });

  it('answers bad paths, methods and form values with 404, 405 or 400, never a server error', async () => {
    for (const path of [`/folder/abc`, `/folder/${'9'.repeat(16)}`, `/folder/${inboxA}/0`, `/folder/${inboxA}/1/attachment/99`, `/documents/0`, '/static/../app.js', '/api/nothing']) {
      expect((await patientA.get(path)).status, path).toBe(404);
    }
    expect((await patientA.get(`/folder/${inboxA}/1/attachment/0/xdm?doc=nothing`)).status).toBe(404);
    expect((await patientA.get(`/folder/${inboxA}/1/attachment/1/xdm`)).status).toBe(404); // the PDF is no XDM archive
    expect((await patientA.request('PUT', '/login')).status).toBe(405);
    expect((await patientA.request('POST', '/api/folders')).status).toBe(405);
    const stale = await a().get('/static/app.css?v=old');
    expect(stale.status).toBe(200);
    expect(stale.headers['cache-control']).toBe('no-cache');
    const web = a();
    const badSecret = await web.submit('/activate', '/activate/complete', { address: DEMO.patient, code: 'x', secret: 'not base32!', password: 'p', password2: 'p', totp: '1' });
    expect(badSecret.status).toBe(400);
    const notMultipart = await patientA.request('POST', '/send', { type: 'text/plain', bytes: Buffer.from('x') });
    expect(notMultipart.status).toBe(415);
  });

  it('serves the English texts on request and remembers the choice', async () => {
    const web = a();
    const switched = await web.get('/login?lang=en');
    expect(switched.status).toBe(303);
    expect(switched.headers.location).toBe('/login');
    const page = await web.get('/login');
    expect(page.body).toMatch(/<html lang="en">/);
    expect(page.body).toContain('Log in');
  });

  // Last: it locks this client address out.
  it('locks a client address out after repeated failed logins, even with the right password', async () => {
    const web = a();
    let status = 0;
    for (let i = 0; i < 12 && status !== 429; i++) {
      status = (await web.submit('/login', '/login', { address: `personne${i}@hopital-demo.mssante.test`, password: 'faux' })).status;
    }
    expect(status).toBe(429);
    const right = await web.submit('/login', '/login', { address: DEMO.jean, password: passwordOf(op, DEMO.jean) });
    expect(right.status).toBe(429);
    expect(right.body).toContain('Trop de tentatives');
  });
});
