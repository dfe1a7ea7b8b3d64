import type { IncomingMessage, ServerResponse } from 'node:http';
import { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { Authenticator } from '../accounts/authenticator.js';
import { MailboxError, normaliseAddress } from '../accounts/mailboxes.js';
import { appendAudit, audit } from '../audit/journal.js';
import type { Config } from '../config/schema.js';
import type { ApiUser } from '../http/server.js';
import type { Pipeline } from '../pipeline/index.js';
import { Refusal, REFUSALS } from '../pipeline/refusal.js';
import type { Patients } from '../policy/patients.js';
import type { SealedMail } from '../store/sealed-mail.js';
import type { FolderRow, MailboxRow, Notifier, Store } from '../store/types.js';
import type { WebmailSessionStore } from '../store/webmail-sessions.js';
import { accessHistory } from './access-history.js';
import { WebmailApi } from './api.js';
import { ASSETS } from './assets.js';
import { DocumentPages } from './document-pages.js';
import { LoginFlow } from './login.js';
import type { DocumentSpace } from './documents.js';
import { html, type Html } from './html.js';
import { Form, HttpError, parseCookies, readForm, redirect, remoteOf, sendBytes, sendHtml, attachmentDisposition, cookie, clearCookie } from './http-io.js';
import { langOf, t, type Lang, type TextKey } from './i18n.js';
import { MailReader, MDN_SENT, type OpenedMessage, type WebFolderName } from './mail-reader.js';
import { composeMessage, Outgoing } from './outgoing.js';
import type { Problem } from './pages/auth.js';
import { messagePage as pageWithText, type Viewer } from './pages/layout.js';
import { composePage, folderPage, historyPage, messagePage, patientComposePage, type ReplyState } from './pages/mail.js';
import { sanitizeMailHtml } from './sanitize.js';
import { LANG_COOKIE, sameToken, SESSION_COOKIE, Sessions, type ActiveSession } from './sessions.js';

/**
 * The webmail: server-rendered pages and forms on the HTTPS listener, with a JSON API under `/api/` for the same
 * data. Handlers are thin: they check the session and the CSRF token, read through `MailReader` (which only ever
 * reaches the logged-in user's own mailbox), call the services, and hand plain data to the page renderers.
 */

export type WebmailConfig = Config['webmail'];

export interface WebmailDeps {
  store: Store;
  mail: SealedMail;
  notifier: Notifier;
  auth: Authenticator;
  pipeline: Pipeline;
  patients: Patients;
  documents: DocumentSpace;
  sessions: WebmailSessionStore;
  config: WebmailConfig;
  hostname: string;
  log: Logger;
  now?: () => number;
}

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  lang: Lang;
  remote: string;
  session: ActiveSession | null;
}

export interface AuthedCtx extends Ctx {
  session: ActiveSession;
}

type Handler = (ctx: Ctx, params: string[]) => Promise<void>;
type AuthedHandler = (ctx: AuthedCtx, params: string[]) => Promise<void>;

interface Route {
  method: 'GET' | 'POST';
  pattern: RegExp;
  run: Handler;
}

/** Messages shown after a redirect (`?done=`): only these keys, never text from the URL. */
const DONE: Record<string, TextKey> = {
  sent: 'sent',
  receipt: 'receiptSent',
  saved: 'documentSaved',
  deleted: 'delete',
  restored: 'restore',
};

const ID = '(\\d{1,15})';

function intParam(value: string | undefined): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new HttpError(404, 'notFound');
  return n;
}

export class Webmail {
  readonly reader: MailReader;
  readonly #sessions: Sessions;
  readonly #outgoing: Outgoing;
  readonly #api: WebmailApi;
  readonly #documents: DocumentPages;
  readonly #login: LoginFlow;
  readonly #routes: Route[];
  readonly #now: () => number;

  constructor(private readonly deps: WebmailDeps) {
    this.#now = deps.now ?? Date.now;
    this.reader = new MailReader(deps.mail, deps.notifier);
    this.#sessions = new Sessions(
      deps.sessions,
      deps.store,
      {
        idleMs: deps.config.sessionIdleMinutes * 60_000,
        absoluteMs: deps.config.sessionAbsoluteHours * 3_600_000,
        secondFactorMs: deps.config.secondFactorMinutes * 60_000,
      },
      this.#now,
    );
    this.#outgoing = new Outgoing({ pipeline: deps.pipeline, mail: deps.mail, notifier: deps.notifier, hostname: deps.hostname });
    this.#api = new WebmailApi({ reader: this.reader, store: deps.store, documents: deps.documents, config: deps.config, audit: (m, o, w, r) => this.#auditRead(m, o, w, r) });
    this.#documents = new DocumentPages({ reader: this.reader, documents: deps.documents, viewer: (c) => this.#viewer(c), audit: (m, o, w, r, a) => this.#auditRead(m, o, w, r, a) });
    this.#login = new LoginFlow({ auth: deps.auth, patients: deps.patients, sessions: this.#sessions, store: deps.store, config: deps.config, now: this.#now });
    const authed = (run: AuthedHandler): Handler => (ctx, params) => this.#requireSession(ctx, params, run);
    const r = (method: Route['method'], path: string, run: Handler): Route => ({ method, pattern: new RegExp(`^${path}$`), run });
    this.#routes = [
      r('GET', '/', (ctx) => this.#home(ctx)),
      r('GET', '/static/([a-z0-9.-]{1,40})', (ctx, [name]) => this.#static(ctx, name!)),
      r('GET', '/login', (ctx) => this.#login.loginForm(ctx)),
      r('POST', '/login', (ctx) => this.#login.login(ctx)),
      r('GET', '/login/totp', (ctx) => this.#login.totpForm(ctx)),
      r('POST', '/login/totp', (ctx) => this.#login.totp(ctx)),
      r('GET', '/activate', (ctx) => this.#login.activateForm(ctx)),
      r('POST', '/activate', (ctx) => this.#login.activate(ctx)),
      r('POST', '/activate/complete', (ctx) => this.#login.activateComplete(ctx)),
      r('POST', '/activate/oppose', (ctx) => this.#login.oppose(ctx)),
      r('POST', '/logout', authed((ctx) => this.#logout(ctx))),
      r('GET', `/folder/${ID}`, authed((ctx, [f]) => this.#folder(ctx, intParam(f)))),
      r('GET', `/folder/${ID}/${ID}`, authed((ctx, [f, u]) => this.#message(ctx, intParam(f), intParam(u)))),
      r('GET', `/folder/${ID}/${ID}/attachment/${ID}`, authed((ctx, [f, u, n]) => this.#attachment(ctx, intParam(f), intParam(u), intParam(n)))),
      r('GET', `/folder/${ID}/${ID}/attachment/${ID}/xdm`, authed((ctx, [f, u, n]) => this.#withMessage(ctx, f, u, (folder, opened) => this.#documents.xdm(ctx, folder, opened, intParam(n))))),
      r(
        'POST',
        `/folder/${ID}/${ID}/attachment/${ID}/xdm/save`,
        authed((ctx, [f, u, n]) => this.#withMessage(ctx, f, u, (folder, opened, form) => this.#documents.save(ctx, folder, opened, intParam(n), form!), true)),
      ),
      r('POST', `/folder/${ID}/${ID}/delete`, authed((ctx, [f, u]) => this.#move(ctx, intParam(f), intParam(u), 'Trash'))),
      r('POST', `/folder/${ID}/${ID}/restore`, authed((ctx, [f, u]) => this.#move(ctx, intParam(f), intParam(u), 'INBOX'))),
      r('POST', `/folder/${ID}/${ID}/receipt`, authed((ctx, [f, u]) => this.#receipt(ctx, intParam(f), intParam(u)))),
      r('GET', `/folder/${ID}/${ID}/reply`, authed((ctx, [f, u]) => this.#replyForm(ctx, intParam(f), intParam(u)))),
      r('GET', '/compose', authed((ctx) => this.#composeForm(ctx))),
      r('POST', '/send', authed((ctx) => this.#send(ctx))),
      r('GET', '/documents', authed((ctx) => this.#documents.list(ctx))),
      r('GET', `/documents/${ID}`, authed((ctx, [id]) => this.#documents.show(ctx, intParam(id)))),
      r('GET', '/history', authed((ctx) => this.#history(ctx))),
    ];
  }

  /** The user of a request with a complete webmail session (for the JSON routes of the HTTP server), or null. */
  async sessionUser(req: IncomingMessage): Promise<ApiUser | null> {
    const session = await this.#sessions.resolve(req);
    if (!session || session.row.stage !== 'complete') return null;
    return { address: session.mailbox.address, type: session.mailbox.type };
  }

  /** Serves a webmail request; `basicUser` is set when the request carried valid HTTP Basic credentials (API only). */
  async handle(req: IncomingMessage, res: ServerResponse, basicUser: ApiUser | null): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://localhost');
    // Static files need no session (and no database read).
    const session = url.pathname.startsWith('/static/') ? null : await this.#sessions.resolve(req);
    const lang = langOf(session?.row.lang) ?? langOf(parseCookies(req.headers.cookie).get(LANG_COOKIE)) ?? 'fr';
    const ctx: Ctx = { req, res, url, lang, remote: remoteOf(req), session };
    try {
      if (url.pathname.startsWith('/api/')) {
        await this.#api.handle(ctx, basicUser);
        return;
      }
      const wanted = langOf(url.searchParams.get('lang'));
      if (wanted && req.method === 'GET') {
        if (session) await this.#sessions.setLang(session.row, wanted);
        url.searchParams.delete('lang');
        redirect(res, `${url.pathname}${url.search}`, [cookie(LANG_COOKIE, wanted, { maxAgeSeconds: 365 * 86400 })]);
        return;
      }
      const method = req.method === 'HEAD' ? 'GET' : req.method;
      for (const route of this.#routes) {
        const m = route.pattern.exec(url.pathname);
        if (!m || route.method !== method) continue;
        await route.run(ctx, m.slice(1));
        return;
      }
      const known = this.#routes.some((route) => route.pattern.test(url.pathname));
      throw known ? new HttpError(405, 'badRequest') : new HttpError(404, 'notFound');
    } catch (err) {
      await this.#fail(ctx, err);
    }
  }

  async #fail(ctx: Ctx, err: unknown): Promise<void> {
    if (ctx.res.headersSent) {
      ctx.res.destroy();
      return;
    }
    if (err instanceof HttpError) {
      const session = ctx.session;
      const viewer = session && session.row.stage === 'complete' ? await this.#viewer({ ...ctx, session }).catch(() => null) : null;
      sendHtml(ctx.res, err.status, pageWithText(ctx.lang, ctx.url.pathname, viewer, err.status === 404 ? 'notFound' : err.status === 403 ? 'forbidden' : 'badRequest', err.key));
      return;
    }
    this.deps.log.error({ err }, 'webmail request failed');
    sendHtml(ctx.res, 500, pageWithText(ctx.lang, ctx.url.pathname, null, 'serverError', 'serverError'));
  }

  async #requireSession(ctx: Ctx, params: string[], run: AuthedHandler): Promise<void> {
    if (!ctx.session || ctx.session.row.stage !== 'complete') {
      if (ctx.req.method === 'GET' || ctx.req.method === 'HEAD') {
        redirect(ctx.res, '/login');
        return;
      }
      throw new HttpError(403, 'csrfFailed');
    }
    await run({ ...ctx, session: ctx.session }, params);
  }

  async #viewer(ctx: AuthedCtx): Promise<Viewer> {
    const { mailbox, row } = ctx.session;
    return { address: mailbox.address, patient: mailbox.type === 'PATIENT', csrf: row.csrf, folders: await this.reader.folders(mailbox) };
  }

  /** A form posted by a logged-in user, its CSRF token checked. */
  async #form(ctx: AuthedCtx): Promise<Form> {
    const form = await readForm(ctx.req, this.deps.config);
    if (!sameToken(form.get('_csrf'), ctx.session.row.csrf)) throw new HttpError(403, 'csrfFailed');
    return form;
  }

  async #auditRead(mailbox: MailboxRow, object: string, what: string, remote: string, action: 'read' | 'document-save' = 'read'): Promise<void> {
    await audit(this.deps.store, { actor: mailbox.address, action, object: `${mailbox.address}/${object}`, outcome: 'ok', detail: { channel: 'webmail', what, remote } });
  }

  // ---------------------------------------------------------------------------------------------------------
  // Static files, home

  async #static(ctx: Ctx, name: string): Promise<void> {
    const asset = ASSETS.get(name);
    if (!asset) throw new HttpError(404, 'notFound');
    const current = ctx.url.searchParams.get('v') === asset.hash;
    sendBytes(ctx.res, asset.contentType, asset.body, { 'Cache-Control': current ? 'public, max-age=31536000, immutable' : 'no-cache' });
  }

  async #home(ctx: Ctx): Promise<void> {
    if (!ctx.session || ctx.session.row.stage !== 'complete') {
      redirect(ctx.res, '/login');
      return;
    }
    const inbox = await this.reader.folderByName(ctx.session.mailbox, 'INBOX');
    redirect(ctx.res, inbox ? `/folder/${inbox.id}` : '/history');
  }

  async #logout(ctx: AuthedCtx): Promise<void> {
    await this.#form(ctx);
    await this.#sessions.end(ctx.session.row);
    redirect(ctx.res, '/login', [clearCookie(SESSION_COOKIE)]);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Reading

  async #ownFolder(ctx: AuthedCtx, folderId: number): Promise<FolderRow> {
    const folder = await this.reader.folder(ctx.session.mailbox, folderId);
    if (!folder) throw new HttpError(404, 'notFound');
    return folder;
  }

  async #withMessage(
    ctx: AuthedCtx,
    f: string | undefined,
    u: string | undefined,
    run: (folder: FolderRow, opened: OpenedMessage, form: Form | null) => Promise<void>,
    post = false,
  ): Promise<void> {
    const form = post ? await this.#form(ctx) : null;
    const folder = await this.#ownFolder(ctx, intParam(f));
    const opened = await this.reader.open(ctx.session.mailbox, folder, intParam(u));
    if (!opened) throw new HttpError(404, 'messageNotFound');
    await run(folder, opened, form);
  }

  async #folder(ctx: AuthedCtx, folderId: number): Promise<void> {
    const folder = await this.#ownFolder(ctx, folderId);
    const viewer = await this.#viewer(ctx);
    const query = (ctx.url.searchParams.get('q') ?? '').slice(0, 200);
    const offset = Math.min(Number(ctx.url.searchParams.get('offset') ?? 0) || 0, 1_000_000);
    const pageSize = this.deps.config.pageSize;
    const { items, total } = await this.reader.list(ctx.session.mailbox, folder, { query, offset: Math.max(0, Math.floor(offset)), limit: pageSize });
    const view = viewer.folders.find((f) => f.id === folder.id)!;
    const done = DONE[ctx.url.searchParams.get('done') ?? ''];
    sendHtml(ctx.res, 200, folderPage({ lang: ctx.lang, viewer, folder: view, items, total, offset, pageSize, query, flash: done ? t(ctx.lang, done) : null }));
  }

  async #replyState(ctx: AuthedCtx, opened: OpenedMessage): Promise<ReplyState & { to?: string[] }> {
    const mailbox = ctx.session.mailbox;
    if (mailbox.type === 'PATIENT') {
      const permission = await this.deps.patients.replyPermission(mailbox, opened.meta);
      return permission.allowed ? { allowed: true, to: permission.to } : { allowed: false, reason: ctx.lang === 'fr' ? permission.fr : permission.en };
    }
    const replyTo = (opened.meta.envelope.replyTo ?? opened.meta.envelope.from ?? []).filter((a) => a.mailbox && a.host).map((a) => `${a.mailbox}@${a.host}`.toLowerCase());
    const to = replyTo.filter((a) => a !== mailbox.address);
    return { allowed: true, to: to.length > 0 ? to : replyTo };
  }

  async #message(ctx: AuthedCtx, folderId: number, uid: number, problem: Problem | null = null, status = 200): Promise<void> {
    const mailbox = ctx.session.mailbox;
    const folder = await this.#ownFolder(ctx, folderId);
    const opened = await this.reader.open(mailbox, folder, uid);
    if (!opened) throw new HttpError(404, 'messageNotFound');
    await this.#auditRead(mailbox, `${folder.name}/${uid}`, 'message', ctx.remote);
    await this.reader.addFlags(mailbox, folder, opened.row, ['\\Seen']);
    const body = this.#body(ctx.lang, opened);
    const reply = await this.#replyState(ctx, opened);
    const viewer = await this.#viewer(ctx);
    const done = DONE[ctx.url.searchParams.get('done') ?? ''];
    sendHtml(
      ctx.res,
      status,
      messagePage({
        lang: ctx.lang,
        viewer,
        view: { ...opened.view, folder: viewer.folders.find((f) => f.id === folder.id) ?? opened.view.folder },
        body: body.html,
        blockedRemote: body.blockedRemote,
        reply,
        flash: done ? t(ctx.lang, done) : null,
        problem,
      }),
    );
  }

  #body(lang: Lang, opened: OpenedMessage): { html: Html; blockedRemote: number } {
    if (opened.view.html !== null) return sanitizeMailHtml(opened.view.html, { lang });
    return { html: html`<pre class="text">${opened.view.text ?? ''}</pre>`, blockedRemote: 0 };
  }

  async #attachment(ctx: AuthedCtx, folderId: number, uid: number, index: number): Promise<void> {
    const mailbox = ctx.session.mailbox;
    const folder = await this.#ownFolder(ctx, folderId);
    const opened = await this.reader.open(mailbox, folder, uid);
    const file = opened?.attachments[index];
    if (!opened || !file) throw new HttpError(404, 'notFound');
    await this.#auditRead(mailbox, `${folder.name}/${uid}/attachment/${index}`, 'attachment', ctx.remote);
    const type = /^[a-z0-9.+-]+\/[a-z0-9.+-]+$/.test(file.contentType) ? file.contentType : 'application/octet-stream';
    sendBytes(ctx.res, type, file.content, { 'Content-Disposition': attachmentDisposition(file.filename), 'Cache-Control': 'no-store' });
  }

  async #move(ctx: AuthedCtx, folderId: number, uid: number, to: WebFolderName): Promise<void> {
    await this.#form(ctx);
    const mailbox = ctx.session.mailbox;
    const from = await this.#ownFolder(ctx, folderId);
    const target = await this.reader.folderByName(mailbox, to);
    if (!target || target.id === from.id) throw new HttpError(400, 'badRequest');
    const moved = await this.reader.move(mailbox, from, uid, target, (tx) =>
      appendAudit(tx, { actor: mailbox.address, action: 'move', object: `${mailbox.address}/${from.name}/${uid}`, outcome: 'ok', detail: { channel: 'webmail', to: target.name } }),
    );
    if (moved === null) throw new HttpError(404, 'messageNotFound');
    redirect(ctx.res, `/folder/${from.id}?done=${to === 'Trash' ? 'deleted' : 'restored'}`);
  }

  async #receipt(ctx: AuthedCtx, folderId: number, uid: number): Promise<void> {
    await this.#form(ctx);
    const mailbox = ctx.session.mailbox;
    const folder = await this.#ownFolder(ctx, folderId);
    const opened = await this.reader.open(mailbox, folder, uid);
    if (!opened) throw new HttpError(404, 'messageNotFound');
    const receipt = opened.view.receiptSent ? null : this.#outgoing.buildReceipt(mailbox, opened);
    if (!receipt) throw new HttpError(400, 'badRequest');
    try {
      await this.#outgoing.send(mailbox, [receipt.to], receipt.raw, this.#connection(ctx), 'receipt');
    } catch (err) {
      if (err instanceof Refusal) return this.#message(ctx, folderId, uid, this.#refusalProblem(ctx, err), 422);
      throw err;
    }
    await this.reader.addFlags(mailbox, folder, opened.row, [MDN_SENT]);
    redirect(ctx.res, `/folder/${folder.id}/${uid}?done=receipt`);
  }

  #connection(ctx: Ctx): { remote: string; tls: TLSSocket | null } {
    const socket = ctx.req.socket;
    return { remote: ctx.remote, tls: socket instanceof TLSSocket ? socket : null };
  }

  #refusalProblem(ctx: Ctx, refusal: Refusal): Problem {
    const r = REFUSALS[refusal.code];
    return { text: t(ctx.lang, 'sendRefused'), detail: ctx.lang === 'fr' ? r.fr : r.en };
  }

  async #history(ctx: AuthedCtx): Promise<void> {
    const entries = await accessHistory(this.deps.store, ctx.session.mailbox.address, this.deps.config.historyLimit);
    sendHtml(ctx.res, 200, historyPage(ctx.lang, await this.#viewer(ctx), entries));
  }

  // ---------------------------------------------------------------------------------------------------------
  // Writing

  async #composeForm(ctx: AuthedCtx): Promise<void> {
    const viewer = await this.#viewer(ctx);
    if (viewer.patient) {
      sendHtml(ctx.res, 200, patientComposePage(ctx.lang, viewer));
      return;
    }
    const to = (ctx.url.searchParams.get('to') ?? '').slice(0, 1000);
    sendHtml(ctx.res, 200, composePage({ lang: ctx.lang, viewer, to, subject: '', body: '', replyTo: null, toFixed: false, options: true }));
  }

  async #replyForm(ctx: AuthedCtx, folderId: number, uid: number): Promise<void> {
    const folder = await this.#ownFolder(ctx, folderId);
    const opened = await this.reader.open(ctx.session.mailbox, folder, uid);
    if (!opened) throw new HttpError(404, 'messageNotFound');
    const state = await this.#replyState(ctx, opened);
    if (!state.allowed) return this.#message(ctx, folderId, uid, { text: t(ctx.lang, 'replyNotAllowed'), detail: state.reason }, 403);
    const viewer = await this.#viewer(ctx);
    const subject = /^re\s*:/i.test(opened.view.subject) ? opened.view.subject : `Re: ${opened.view.subject}`;
    const quoted = (opened.view.text ?? '').slice(0, 20_000).split(/\r?\n/).map((l) => `> ${l}`).join('\n');
    sendHtml(
      ctx.res,
      200,
      composePage({
        lang: ctx.lang,
        viewer,
        to: (state.to ?? []).join(', '),
        subject,
        body: quoted ? `\n\n${quoted}` : '',
        replyTo: { folderId: folder.id, uid },
        toFixed: viewer.patient,
        options: !viewer.patient,
      }),
    );
  }

  async #send(ctx: AuthedCtx): Promise<void> {
    const form = await this.#form(ctx);
    const mailbox = ctx.session.mailbox;
    const patient = mailbox.type === 'PATIENT';
    const viewer = await this.#viewer(ctx);
    let original: OpenedMessage | null = null;
    let replyTo: { folderId: number; uid: number } | null = null;
    if (form.get('folder') !== '' || form.get('uid') !== '') {
      const folder = await this.#ownFolder(ctx, intParam(form.get('folder')));
      original = await this.reader.open(mailbox, folder, intParam(form.get('uid')));
      if (!original) throw new HttpError(404, 'messageNotFound');
      replyTo = { folderId: folder.id, uid: original.view.uid };
    }
    const toText = form.get('to').slice(0, 4000);
    const subject = form.get('subject').replace(/[\r\n]+/g, ' ').slice(0, 250);
    const text = form.get('body').slice(0, 1_000_000);
    const again = (problem: Problem, status: number) =>
      sendHtml(ctx.res, status, composePage({ lang: ctx.lang, viewer, to: toText, subject, body: text, replyTo, toFixed: patient && original !== null, options: !patient, problem }));
    const to: string[] = [];
    try {
      for (const piece of toText.split(/[,;\s]+/).filter(Boolean)) to.push(normaliseAddress(piece.replace(/^.*<([^>]*)>.*$/, '$1')));
    } catch (err) {
      if (err instanceof MailboxError) return again({ text: t(ctx.lang, 'noRecipients') }, 400);
      throw err;
    }
    if (to.length === 0) return again({ text: t(ctx.lang, 'noRecipients') }, 400);
    if (patient) {
      // The pipeline enforces the patient rules; the webmail says why before trying, in the patient's words.
      if (!original) return again({ text: t(ctx.lang, 'patientCannotCompose') }, 403);
      const permission = await this.deps.patients.replyPermission(mailbox, original.meta);
      if (!permission.allowed) return again({ text: t(ctx.lang, 'replyNotAllowed'), detail: ctx.lang === 'fr' ? permission.fr : permission.en }, 403);
      if (to.some((a) => !permission.to.includes(a))) return again({ text: t(ctx.lang, 'sendRefused'), detail: t(ctx.lang, 'patientCannotCompose') }, 403);
    }
    const raw = await composeMessage(
      mailbox,
      {
        to,
        subject,
        text,
        attachments: form.files.get('files') ?? [],
        original,
        requestReceipt: !patient && form.get('receipt') === '1',
        closeThread: !patient && form.get('close') === '1',
      },
      this.deps.hostname,
    );
    try {
      await this.#outgoing.send(mailbox, to, raw, this.#connection(ctx), 'message');
    } catch (err) {
      if (err instanceof Refusal) return again(this.#refusalProblem(ctx, err), 422);
      throw err;
    }
    const sent = await this.reader.folderByName(mailbox, 'Sent');
    redirect(ctx.res, sent ? `/folder/${sent.id}?done=sent` : '/');
  }
}

