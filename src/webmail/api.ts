import type { ApiUser } from '../http/server.js';
import type { MailboxRow, Store } from '../store/types.js';
import type { Ctx, WebmailConfig } from './app.js';
import type { DocumentSpace } from './documents.js';
import { attachmentDisposition, HttpError, sendBytes, sendJson } from './http-io.js';
import type { MailReader } from './mail-reader.js';
import { sanitizeMailHtml } from './sanitize.js';

/**
 * The JSON API under `/api/`: the webmail's data for integrations, read-only. A request is authenticated by a
 * complete webmail session (cookie) or HTTP Basic; patients only through a session, since Basic would skip their
 * second factor. Every route reads through `MailReader`, so only the caller's own mailbox is reachable; reads and
 * downloads are audited like the pages'.
 *
 * GET /api/folders · /api/folders/{id}/messages?q=&offset= · /api/folders/{id}/messages/{uid}
 * · /api/folders/{id}/messages/{uid}/attachments/{n} · /api/documents · /api/documents/{id}
 */

export interface WebmailApiDeps {
  reader: MailReader;
  store: Store;
  documents: DocumentSpace;
  config: WebmailConfig;
  audit: (mailbox: MailboxRow, object: string, what: string, remote: string) => Promise<void>;
}

const ERRORS: Record<number, string> = { 400: 'bad request', 401: 'authentication required', 403: 'forbidden', 404: 'not found', 405: 'method not allowed: use GET' };

function id(value: string | undefined): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new HttpError(404, 'notFound');
  return n;
}

export class WebmailApi {
  constructor(private readonly deps: WebmailApiDeps) {}

  async handle(ctx: Ctx, basicUser: ApiUser | null): Promise<void> {
    try {
      await this.#route(ctx, basicUser);
    } catch (err) {
      if (err instanceof HttpError) {
        sendJson(ctx.res, err.status, { error: ERRORS[err.status] ?? 'error' });
        return;
      }
      throw err;
    }
  }

  async #mailbox(ctx: Ctx, basicUser: ApiUser | null): Promise<MailboxRow> {
    if (ctx.session?.row.stage === 'complete') return ctx.session.mailbox;
    if (!basicUser) throw new HttpError(401, 'forbidden');
    if (basicUser.type === 'PATIENT') throw new HttpError(403, 'forbidden');
    const mailbox = await this.deps.store.getMailbox(basicUser.address);
    if (!mailbox || mailbox.state !== 'active') throw new HttpError(401, 'forbidden');
    return mailbox;
  }

  async #route(ctx: Ctx, basicUser: ApiUser | null): Promise<void> {
    const path = ctx.url.pathname;
    const routes: [RegExp, (mailbox: MailboxRow, p: string[]) => Promise<void>][] = [
      [/^\/api\/folders$/, (m) => this.#folders(ctx, m)],
      [/^\/api\/folders\/(\d{1,15})\/messages$/, (m, [f]) => this.#messages(ctx, m, id(f))],
      [/^\/api\/folders\/(\d{1,15})\/messages\/(\d{1,15})$/, (m, [f, u]) => this.#message(ctx, m, id(f), id(u))],
      [/^\/api\/folders\/(\d{1,15})\/messages\/(\d{1,15})\/attachments\/(\d{1,15})$/, (m, [f, u, n]) => this.#attachment(ctx, m, id(f), id(u), id(n))],
      [/^\/api\/documents$/, (m) => this.#documents(ctx, m)],
      [/^\/api\/documents\/(\d{1,15})$/, (m, [d]) => this.#document(ctx, m, id(d))],
    ];
    for (const [pattern, run] of routes) {
      const match = pattern.exec(path);
      if (!match) continue;
      if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') throw new HttpError(405, 'badRequest');
      await run(await this.#mailbox(ctx, basicUser), match.slice(1));
      return;
    }
    throw new HttpError(404, 'notFound');
  }

  async #folder(mailbox: MailboxRow, folderId: number) {
    const folder = await this.deps.reader.folder(mailbox, folderId);
    if (!folder) throw new HttpError(404, 'notFound');
    return folder;
  }

  async #folders(ctx: Ctx, mailbox: MailboxRow): Promise<void> {
    sendJson(ctx.res, 200, { folders: await this.deps.reader.folders(mailbox) });
  }

  async #messages(ctx: Ctx, mailbox: MailboxRow, folderId: number): Promise<void> {
    const folder = await this.#folder(mailbox, folderId);
    const offset = Math.max(0, Math.floor(Number(ctx.url.searchParams.get('offset') ?? 0) || 0));
    const query = (ctx.url.searchParams.get('q') ?? '').slice(0, 200);
    const { items, total } = await this.deps.reader.list(mailbox, folder, { query, offset, limit: this.deps.config.pageSize });
    sendJson(ctx.res, 200, { folder: { id: folder.id, name: folder.name }, total, offset, messages: items });
  }

  async #message(ctx: Ctx, mailbox: MailboxRow, folderId: number, uid: number): Promise<void> {
    const folder = await this.#folder(mailbox, folderId);
    const opened = await this.deps.reader.open(mailbox, folder, uid);
    if (!opened) throw new HttpError(404, 'notFound');
    await this.deps.audit(mailbox, `${folder.name}/${uid}`, 'message', ctx.remote);
    const { html, ...view } = opened.view;
    const safe = html === null ? null : sanitizeMailHtml(html);
    sendJson(ctx.res, 200, {
      ...view,
      folder: { id: folder.id, name: folder.name },
      html: safe ? safe.html.text : null,
      blockedRemote: safe?.blockedRemote ?? 0,
      receipt: { requested: view.receipt.requested, sent: view.receiptSent },
    });
  }

  async #attachment(ctx: Ctx, mailbox: MailboxRow, folderId: number, uid: number, index: number): Promise<void> {
    const folder = await this.#folder(mailbox, folderId);
    const opened = await this.deps.reader.open(mailbox, folder, uid);
    const file = opened?.attachments[index];
    if (!file) throw new HttpError(404, 'notFound');
    await this.deps.audit(mailbox, `${folder.name}/${uid}/attachment/${index}`, 'attachment', ctx.remote);
    sendBytes(ctx.res, 'application/octet-stream', file.content, { 'Content-Disposition': attachmentDisposition(file.filename), 'Cache-Control': 'no-store' });
  }

  async #documents(ctx: Ctx, mailbox: MailboxRow): Promise<void> {
    if (mailbox.type !== 'PATIENT') throw new HttpError(404, 'notFound');
    sendJson(ctx.res, 200, { documents: await this.deps.documents.list(mailbox) });
  }

  async #document(ctx: Ctx, mailbox: MailboxRow, documentId: number): Promise<void> {
    const doc = mailbox.type === 'PATIENT' ? await this.deps.documents.get(mailbox, documentId) : null;
    if (!doc) throw new HttpError(404, 'notFound');
    await this.deps.audit(mailbox, `documents/${documentId}`, 'document', ctx.remote);
    const { xml, ...summary } = doc;
    sendJson(ctx.res, 200, { ...summary, xml: xml.toString('utf8') });
  }
}
