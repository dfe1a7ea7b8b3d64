import type { AccessEntry } from '../access-history.js';
import { html, type Html } from '../html.js';
import { formatDate, isTextKey, t, type Lang } from '../i18n.js';
import type { AddressView, FolderView, MessageListItem, MessageView } from '../mail-reader.js';
import { csrfField, notice, page, type Viewer } from './layout.js';

/** Folder, message, compose and history pages: pure functions of the data they show (no store, no request). */

function addresses(list: AddressView[]): Html {
  return html`${list.map((a, i) => html`${i > 0 ? ', ' : ''}${a.name ? html`${a.name} &lt;${a.address}&gt;` : a.address}`)}`;
}

function shortAddresses(list: AddressView[]): string {
  return list.map((a) => a.name || a.address).join(', ');
}

export interface FolderPageInput {
  lang: Lang;
  viewer: Viewer;
  folder: FolderView;
  items: MessageListItem[];
  total: number;
  offset: number;
  pageSize: number;
  query: string;
  flash?: string | null;
}

export function folderPage(input: FolderPageInput): Html {
  const { lang, folder } = input;
  const base = `/folder/${folder.id}`;
  const title = t(lang, folder.name);
  const sent = folder.name === 'Sent';
  const q = input.query ? `&q=${encodeURIComponent(input.query)}` : '';
  const prev = input.offset > 0 ? `${base}?offset=${Math.max(0, input.offset - input.pageSize)}${q}` : null;
  const next = input.offset + input.pageSize < input.total ? `${base}?offset=${input.offset + input.pageSize}${q}` : null;
  return page({
    lang,
    viewer: input.viewer,
    path: base,
    title,
    body: html`<h1>${title}</h1>
${input.flash ? notice('ok', input.flash) : ''}
<form method="get" action="${base}" role="search">
<label for="q">${t(lang, 'searchLabel')}</label>
<input type="search" id="q" name="q" value="${input.query}">
<button type="submit">${t(lang, 'search')}</button>
</form>
${
  input.items.length === 0
    ? html`<p>${t(lang, 'noMessages')}</p>`
    : html`<table>
<caption class="sr-only">${t(lang, 'messagesIn')} ${title}</caption>
<thead><tr><th scope="col">${t(lang, sent ? 'to' : 'from')}</th><th scope="col">${t(lang, 'subject')}</th><th scope="col" class="opt">${t(lang, 'date')}</th></tr></thead>
<tbody>
${input.items.map(
  (m) => html`<tr class="${m.seen ? 'read' : 'unread'}">
<td>${m.seen ? '' : html`<span class="sr-only">${t(lang, 'unreadMark')} : </span>`}${shortAddresses(sent ? m.to : m.from)}</td>
<td><a href="${base}/${m.uid}">${m.subject || t(lang, 'noSubject')}</a></td>
<td class="opt">${formatDate(lang, m.internalDate)}</td>
</tr>`,
)}
</tbody>
</table>`
}
<p class="actions">
${prev ? html`<a href="${prev}" rel="prev">${t(lang, 'previous')}</a>` : ''}
${next ? html`<a href="${next}" rel="next">${t(lang, 'next')}</a>` : ''}
</p>`,
  });
}

export type ReplyState = { allowed: true } | { allowed: false; reason: string };

export interface MessagePageInput {
  lang: Lang;
  viewer: Viewer;
  view: MessageView;
  /** The body as it is shown: sanitised HTML, or the text part escaped. */
  body: Html;
  blockedRemote: number;
  reply: ReplyState;
  flash?: string | null;
  problem?: { text: string; detail?: string } | null;
}

export function messagePage(input: MessagePageInput): Html {
  const { lang, view, viewer } = input;
  const base = `/folder/${view.folder.id}/${view.uid}`;
  const subject = view.subject || t(lang, 'noSubject');
  const inTrash = view.folder.name === 'Trash';
  const askReceipt = view.receipt.requested && view.receipt.notifyTo !== null && !view.receiptSent && view.folder.name === 'INBOX';
  return page({
    lang,
    viewer,
    path: base,
    title: subject,
    body: html`<p><a href="/folder/${view.folder.id}">${t(lang, 'backToFolder')} (${t(lang, view.folder.name)})</a></p>
<h1>${subject}</h1>
${input.flash ? notice('ok', input.flash) : ''}
${input.problem ? notice('error', input.problem.text, input.problem.detail) : ''}
<dl class="headers">
<dt>${t(lang, 'from')}</dt><dd>${addresses(view.from)}</dd>
<dt>${t(lang, 'to')}</dt><dd>${addresses(view.to)}</dd>
${view.cc.length > 0 ? html`<dt>${t(lang, 'cc')}</dt><dd>${addresses(view.cc)}</dd>` : ''}
<dt>${t(lang, 'date')}</dt><dd>${formatDate(lang, view.date ?? view.internalDate)}</dd>
</dl>
${
  askReceipt
    ? html`<div class="notice info" role="status"><p>${t(lang, 'receiptAsked')}</p>
<form method="post" action="${base}/receipt">${csrfField(viewer.csrf)}<button type="submit">${t(lang, 'sendReceipt')}</button></form></div>`
    : ''
}
<div class="actions" role="group" aria-label="${t(lang, 'actions')}">
${
  input.reply.allowed
    ? html`<a class="button" href="${base}/reply">${t(lang, 'reply')}</a>`
    : html`<div><button type="button" disabled aria-describedby="reply-why">${t(lang, 'reply')}</button>
<p id="reply-why" class="notice info"><strong>${t(lang, 'replyNotAllowed')} :</strong> ${input.reply.reason}</p></div>`
}
<form method="post" action="${base}/${inTrash ? 'restore' : 'delete'}" class="inline-form">${csrfField(viewer.csrf)}<button type="submit" class="secondary">${t(lang, inTrash ? 'restore' : 'delete')}</button></form>
</div>
${input.blockedRemote > 0 ? notice('info', t(lang, 'remoteBlocked')) : ''}
<div class="mail-body">${input.body}</div>
${
  view.attachments.length > 0
    ? html`<h2>${t(lang, 'attachments')}</h2>
<ul>
${view.attachments.map(
  (a) => html`<li>${a.filename} (${a.contentType}, ${formatSize(a.size)}) —
<a href="${base}/attachment/${a.index}" download>${t(lang, 'download')}<span class="sr-only"> ${a.filename}</span></a>
${a.xdm ? html` — <a href="${base}/attachment/${a.index}/xdm">${t(lang, 'viewDocuments')}<span class="sr-only"> ${a.filename}</span></a>` : ''}</li>`,
)}
</ul>`
    : ''
}`,
  });
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} o`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} Kio`;
  return `${(bytes / 1024 / 1024).toFixed(1)} Mio`;
}

export interface ComposeInput {
  lang: Lang;
  viewer: Viewer;
  to: string;
  subject: string;
  body: string;
  /** The message answered (its folder and UID); null for a new message. */
  replyTo: { folderId: number; uid: number } | null;
  /** Patients answer the address the rules give them: the field is read-only. */
  toFixed: boolean;
  /** Clinicians only: read receipt and closing a patient conversation. */
  options: boolean;
  problem?: { text: string; detail?: string } | null;
}

export function composePage(input: ComposeInput): Html {
  const { lang, viewer } = input;
  const title = t(lang, input.replyTo ? 'replyTitle' : 'composeTitle');
  return page({
    lang,
    viewer,
    path: input.replyTo ? `/folder/${input.replyTo.folderId}/${input.replyTo.uid}/reply` : '/compose',
    title,
    body: html`<h1>${title}</h1>
${input.problem ? notice('error', input.problem.text, input.problem.detail) : ''}
<form method="post" action="/send" enctype="multipart/form-data">
${csrfField(viewer.csrf)}
${input.replyTo ? html`<input type="hidden" name="folder" value="${input.replyTo.folderId}"><input type="hidden" name="uid" value="${input.replyTo.uid}">` : ''}
<label for="to">${t(lang, 'to')}</label>
${
  input.toFixed
    ? html`<input type="text" id="to" name="to" value="${input.to}" readonly>`
    : html`<input type="text" id="to" name="to" value="${input.to}" required autocomplete="off" list="to-suggestions" data-complete="directory" aria-describedby="to-hint">
<datalist id="to-suggestions"></datalist>
<p class="hint" id="to-hint">${t(lang, 'toHint')}</p>`
}
<label for="subject">${t(lang, 'subject')}</label>
<input type="text" id="subject" name="subject" value="${input.subject}" maxlength="250">
<label for="body">${t(lang, 'body')}</label>
<textarea id="body" name="body" required>${input.body}</textarea>
<label for="files">${t(lang, 'attach')}</label>
<input type="file" id="files" name="files" multiple>
${
  input.options
    ? html`<p><input type="checkbox" id="receipt" name="receipt" value="1"> <label class="inline" for="receipt">${t(lang, 'requestReceipt')}</label></p>
<p><input type="checkbox" id="close" name="close" value="1"> <label class="inline" for="close">${t(lang, 'closeThread')}</label></p>`
    : ''
}
<button type="submit">${t(lang, 'send')}</button>
</form>`,
  });
}

/** What a patient sees at "new message": why there is no form. */
export function patientComposePage(lang: Lang, viewer: Viewer): Html {
  return page({
    lang,
    viewer,
    path: '/compose',
    title: t(lang, 'composeTitle'),
    body: html`<h1>${t(lang, 'composeTitle')}</h1>${notice('info', t(lang, 'patientCannotCompose'))}`,
  });
}

export function historyPage(lang: Lang, viewer: Viewer, entries: AccessEntry[]): Html {
  const action = (a: string) => {
    const key = `action_${a}`;
    return isTextKey(key) ? t(lang, key) : `${t(lang, 'action_other')} (${a})`;
  };
  return page({
    lang,
    viewer,
    path: '/history',
    title: t(lang, 'history'),
    body: html`<h1>${t(lang, 'history')}</h1>
<p>${t(lang, 'historyIntro')}</p>
${
  entries.length === 0
    ? html`<p>${t(lang, 'noHistory')}</p>`
    : html`<table>
<thead><tr><th scope="col">${t(lang, 'date')}</th><th scope="col">${t(lang, 'who')}</th><th scope="col">${t(lang, 'what')}</th><th scope="col" class="opt">${t(lang, 'via')}</th><th scope="col" class="opt">${t(lang, 'outcome')}</th></tr></thead>
<tbody>
${entries.map(
  (e) => html`<tr><td>${formatDate(lang, Date.parse(e.time))}</td><td>${e.actor === viewer.address ? t(lang, 'you') : e.actor}</td><td>${action(e.action)}</td><td class="opt">${e.via ?? ''}</td><td class="opt">${e.outcome}</td></tr>`,
)}
</tbody>
</table>`
}`,
  });
}
