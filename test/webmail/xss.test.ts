import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CSP } from '../../src/webmail/http-io.js';
import { DEMO, passwordOf, startOperator, type TestOperator } from '../helpers/operator.js';
import { folderIdOf, loginByWeb, WebClient } from './helpers.js';
import { inertnessProblems, XSS_CORPUS } from './xss-corpus.js';

/** Hostile HTML mails, delivered for real and read in the webmail: each renders inert, under the strict CSP. */
describe('webmail: the XSS corpus renders inert', () => {
  let op: TestOperator;
  let web: WebClient;
  let inbox: number;
  /** UID of each vector's message, by its subject as the folder page shows it (escaped). */
  const uids = new Map<string, number>();

  beforeAll(async () => {
    // One folder page lists the whole corpus.
    op = await startOperator({ webmail: { pageSize: 500 } });
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: op.ports.submission,
      requireTLS: true,
      auth: { user: DEMO.jean, pass: passwordOf(op, DEMO.jean) },
      tls: { ca: op.ca, servername: 'localhost' },
    });
    for (const vector of XSS_CORPUS) {
      await transport.sendMail({ from: DEMO.jean, to: DEMO.claire, subject: vector.name, html: vector.html, text: 'texte' });
    }
    web = new WebClient(op.ports.https, op.ca);
    expect((await loginByWeb(web, DEMO.claire, passwordOf(op, DEMO.claire))).status).toBe(303);
    inbox = folderIdOf((await web.get('/history')).body, /Boîte de réception/);
    const list = (await web.get(`/folder/${inbox}`)).body;
    for (const m of list.matchAll(new RegExp(`href="/folder/${inbox}/(\\d+)">([^<]*)</a>`, 'g'))) uids.set(m[2]!, Number(m[1]));
  }, 60_000);
  afterAll(() => op?.dispose());

  function mailBody(page: string): string {
    const start = page.indexOf('<div class="mail-body">') + '<div class="mail-body">'.length;
    const end = page.lastIndexOf('</div>', page.indexOf('</main>'));
    return page.slice(start, end);
  }

  const escaped = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

  it.each(XSS_CORPUS.map((v) => [v.name, v] as const))('%s', async (_name, vector) => {
    const uid = uids.get(escaped(vector.name));
    expect(uid).toBeDefined();
    const page = await web.get(`/folder/${inbox}/${uid}`);
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toBe(CSP);
    expect(page.body).toContain(`<h1>${escaped(vector.name)}</h1>`);
    expect(inertnessProblems(mailBody(page.body))).toEqual([]);
    expect(page.body.includes('Des contenus distants')).toBe(vector.remote > 0);
    // The rest of the page is ours: one script, from /static, and nothing the mail could have added.
    expect(page.body.match(/<script/g)).toHaveLength(1);
    expect(page.body).not.toMatch(/tracker\.test\/(pixel|a\.gif|b\.gif|x\.js|x\.css)/);
    // The JSON API hands out the same sanitised HTML, never the sender's.
    const api = JSON.parse((await web.get(`/api/folders/${inbox}/messages/${uid}`)).body) as { html: string | null; blockedRemote: number };
    expect(api.html).not.toBeNull();
    expect(inertnessProblems(api.html!)).toEqual([]);
    expect(api.blockedRemote).toBe(vector.remote);
  });

  it('the checker flags a hostile body that was not sanitised (the test can fail)', () => {
    expect(inertnessProblems(XSS_CORPUS[0]!.html)).toContain('element <script>');
  });
});
