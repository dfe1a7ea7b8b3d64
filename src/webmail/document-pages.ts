import type { AuthedCtx } from './app.js';
import { renderCdaDocument } from './cda-view.js';
import { DocumentSpaceError, renderDocumentSpace, type DocumentSpace } from './documents.js';
import { html, type Html } from './html.js';
import { HttpError, redirect, sendHtml, type Form } from './http-io.js';
import { t, type Lang } from './i18n.js';
import type { MailReader, OpenedMessage } from './mail-reader.js';
import { csrfField, notice, page, type Viewer } from './pages/layout.js';
import { isXdmReadError, listXdmDocuments, readXdmDocument, renderXdmError, renderXdmList, type XdmDocumentEntry } from './xdm-view.js';
import type { FolderRow, MailboxRow } from '../store/types.js';

/**
 * The structured documents of a message (an IHE XDM attachment: D's `xdm-view.ts` and `cda-view.ts`) and the
 * patient's document space (`documents.ts`): thin handlers over those renderers.
 */

export interface DocumentPagesDeps {
  reader: MailReader;
  documents: DocumentSpace;
  viewer: (ctx: AuthedCtx) => Promise<Viewer>;
  /** An audit record for the user's action on one of their objects (`read` unless said otherwise). */
  audit: (mailbox: MailboxRow, object: string, what: string, remote: string, action?: 'read' | 'document-save') => Promise<void>;
}

/** The id of a document in a message: the attachment's position and the XDM entry id. */
export function documentId(attachment: number, entryId: string): string {
  return `${attachment}:${entryId}`;
}

export interface XdmPageInput {
  lang: Lang;
  viewer: Viewer;
  base: string;
  title: string;
  entries: XdmDocumentEntry[] | null;
  error: Html | null;
  /** The document shown under the list, rendered by the CDA viewer. */
  shown: { entry: XdmDocumentEntry; body: Html } | null;
  flash?: string | null;
  problem?: string | null;
}

export function xdmPage(input: XdmPageInput): Html {
  const { lang, viewer, base } = input;
  const actions = (entry: XdmDocumentEntry): Html => html`<a href="${base}?doc=${encodeURIComponent(entry.id)}">${t(lang, 'open')}<span class="sr-only"> ${entry.title ?? entry.entryId}</span></a>
${
  viewer.patient && entry.format === 'cda'
    ? html`<form method="post" action="${base}/save" class="inline-form">${csrfField(viewer.csrf)}<input type="hidden" name="doc" value="${entry.id}"><button type="submit" class="secondary">${t(lang, 'saveDocument')}<span class="sr-only"> ${entry.title ?? entry.entryId}</span></button></form>`
    : ''
}`;
  return page({
    lang,
    viewer,
    path: base,
    title: t(lang, 'documentsIn'),
    body: html`<p><a href="${base.replace(/\/attachment\/\d+\/xdm$/, '')}">${input.title}</a></p>
<h1>${t(lang, 'documentsIn')}</h1>
${input.flash ? notice('ok', input.flash) : ''}
${input.problem ? notice('error', input.problem) : ''}
${input.error ?? ''}
${input.entries ? renderXdmList(input.entries, lang, { actions }) : ''}
${input.shown ? html`<article class="cda" aria-label="${input.shown.entry.title ?? input.shown.entry.entryId}">${input.shown.body}</article>` : ''}`,
  });
}

export function documentsPage(lang: Lang, viewer: Viewer, body: Html, flash: string | null): Html {
  return page({ lang, viewer, path: '/documents', title: t(lang, 'documents'), body: html`<h1>${t(lang, 'documents')}</h1>${flash ? notice('ok', flash) : ''}${body}` });
}

export function documentPage(lang: Lang, viewer: Viewer, id: number, title: string, body: Html, flash: string | null): Html {
  return page({
    lang,
    viewer,
    path: `/documents/${id}`,
    title,
    body: html`<p><a href="/documents">${t(lang, 'documents')}</a></p>${flash ? notice('ok', flash) : ''}<article class="cda" aria-label="${title}">${body}</article>`,
  });
}

export class DocumentPages {
  constructor(private readonly deps: DocumentPagesDeps) {}

  #entries(opened: OpenedMessage, index: number): { zip: Buffer; entries: XdmDocumentEntry[] | null; error: unknown } {
    const attachment = opened.attachments[index];
    if (!attachment || !opened.view.attachments[index]?.xdm) throw new HttpError(404, 'notFound');
    try {
      return { zip: attachment.content, entries: listXdmDocuments(attachment.content), error: null };
    } catch (err) {
      if (isXdmReadError(err)) return { zip: attachment.content, entries: null, error: err };
      throw err;
    }
  }

  async xdm(ctx: AuthedCtx, folder: FolderRow, opened: OpenedMessage, index: number, problem: string | null = null, status = 200): Promise<void> {
    const { zip, entries, error } = this.#entries(opened, index);
    const wanted = ctx.url.searchParams.get('doc');
    let shown: XdmPageInput['shown'] = null;
    if (wanted && entries) {
      const doc = readXdmDocument(zip, wanted);
      if (!doc) throw new HttpError(404, 'documentNotFound');
      await this.deps.audit(ctx.session.mailbox, `${folder.name}/${opened.view.uid}/attachment/${index}`, 'document', ctx.remote);
      shown = { entry: doc.entry, body: renderCdaDocument(doc.content, ctx.lang) };
    }
    const base = `/folder/${folder.id}/${opened.view.uid}/attachment/${index}/xdm`;
    sendHtml(
      ctx.res,
      status,
      xdmPage({
        lang: ctx.lang,
        viewer: await this.deps.viewer(ctx),
        base,
        title: opened.view.subject || t(ctx.lang, 'noSubject'),
        entries,
        error: error ? renderXdmError(error, ctx.lang) : null,
        shown,
        problem,
      }),
    );
  }

  async save(ctx: AuthedCtx, folder: FolderRow, opened: OpenedMessage, index: number, form: Form): Promise<void> {
    const { zip, entries } = this.#entries(opened, index);
    const doc = entries ? readXdmDocument(zip, form.get('doc')) : null;
    if (!doc) throw new HttpError(404, 'documentNotFound');
    const name = (doc.entry.path ?? `${doc.entry.entryId}.xml`).split('/').pop() ?? 'document.xml';
    let id: number;
    try {
      id = await this.deps.documents.save(
        ctx.session.mailbox,
        { folderId: folder.id, uid: opened.view.uid, documentId: documentId(index, doc.entry.id) },
        { xml: doc.content, name, mediaType: doc.entry.mimeType ?? 'text/xml' },
      );
    } catch (err) {
      if (err instanceof DocumentSpaceError) return this.xdm(ctx, folder, opened, index, ctx.lang === 'fr' ? err.fr : err.en, 400);
      throw err;
    }
    await this.deps.audit(ctx.session.mailbox, `documents/${id}`, `from ${folder.name}/${opened.view.uid}`, ctx.remote, 'document-save');
    redirect(ctx.res, `/documents/${id}?done=saved`);
  }

  async list(ctx: AuthedCtx): Promise<void> {
    const mailbox = ctx.session.mailbox;
    if (mailbox.type !== 'PATIENT') throw new HttpError(404, 'notFound');
    const docs = await this.deps.documents.list(mailbox);
    const body = renderDocumentSpace(docs, ctx.lang, { href: (d) => `/documents/${d.id}` });
    sendHtml(ctx.res, 200, documentsPage(ctx.lang, await this.deps.viewer(ctx), body, null));
  }

  async show(ctx: AuthedCtx, id: number): Promise<void> {
    const mailbox = ctx.session.mailbox;
    const doc = mailbox.type === 'PATIENT' ? await this.deps.documents.get(mailbox, id) : null;
    if (!doc) throw new HttpError(404, 'documentNotFound');
    await this.deps.audit(mailbox, `documents/${id}`, 'document', ctx.remote);
    const flash = ctx.url.searchParams.get('done') === 'saved' ? t(ctx.lang, 'documentSaved') : null;
    sendHtml(ctx.res, 200, documentPage(ctx.lang, await this.deps.viewer(ctx), id, doc.title, renderCdaDocument(doc.xml, ctx.lang), flash));
  }
}
