import { assetUrl } from '../assets.js';
import { html, type Html } from '../html.js';
import { t, type Lang, type TextKey } from '../i18n.js';
import type { FolderView } from '../mail-reader.js';

/** The frame of every page: header (user, language, logout), navigation (folders with unread counts), main. */

export interface Viewer {
  address: string;
  patient: boolean;
  csrf: string;
  folders: FolderView[];
}

export interface PageInput {
  lang: Lang;
  title: string;
  /** The path the page is served at (language switch, current navigation entry). */
  path: string;
  viewer: Viewer | null;
  body: Html;
}

export function csrfField(token: string): Html {
  return html`<input type="hidden" name="_csrf" value="${token}">`;
}

export function notice(kind: 'error' | 'ok' | 'info', text: string, detail?: string): Html {
  const role = kind === 'error' ? 'alert' : 'status';
  return html`<div class="notice ${kind}" role="${role}"><p>${text}</p>${detail ? html`<p>${detail}</p>` : ''}</div>`;
}

function switchHref(path: string, lang: Lang): string {
  const other = lang === 'fr' ? 'en' : 'fr';
  return `${path}${path.includes('?') ? '&' : '?'}lang=${other}`;
}

function navigation(lang: Lang, viewer: Viewer, path: string): Html {
  const link = (href: string, label: Html | string) =>
    html`<li><a href="${href}"${path === href || path.startsWith(`${href}/`) || path.startsWith(`${href}?`) ? html` aria-current="page"` : ''}>${label}</a></li>`;
  return html`<nav class="side" aria-label="${t(lang, 'mainNav')}">
<h2>${t(lang, 'folders')}</h2>
<ul>
${viewer.folders.map((f) =>
  link(
    `/folder/${f.id}`,
    html`${t(lang, f.name)}${f.unread > 0 ? html` <span class="count">${f.unread}<span class="sr-only"> ${t(lang, 'unread')}</span></span>` : ''}`,
  ),
)}
</ul>
<ul>
${viewer.patient ? '' : link('/compose', t(lang, 'compose'))}
${viewer.patient ? link('/documents', t(lang, 'documents')) : ''}
${link('/history', t(lang, 'history'))}
</ul>
</nav>`;
}

export function page(input: PageInput): Html {
  const { lang, viewer } = input;
  return html`<!DOCTYPE html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${input.title} — ${t(lang, 'appName')}</title>
<link rel="stylesheet" href="${assetUrl('app.css')}">
<script src="${assetUrl('app.js')}" defer></script>
</head>
<body>
<a class="skip" href="#main">${t(lang, 'skip')}</a>
<header class="top">
<a class="brand" href="/">${t(lang, 'appName')}</a>
<div class="actions">
<a href="${switchHref(input.path, lang)}" lang="${lang === 'fr' ? 'en' : 'fr'}" aria-label="${t(lang, 'otherLangLabel')}">${t(lang, 'otherLang')}</a>
${
  viewer
    ? html`<span class="who">${t(lang, 'loggedInAs')} ${viewer.address}</span>
<form method="post" action="/logout">${csrfField(viewer.csrf)}<button type="submit">${t(lang, 'logout')}</button></form>`
    : ''
}
</div>
</header>
<div class="layout">
${viewer ? navigation(lang, viewer, input.path) : ''}
<main id="main" tabindex="-1">
${input.body}
</main>
</div>
</body>
</html>`;
}

/** A page that only says something (404, 403, errors). */
export function messagePage(lang: Lang, path: string, viewer: Viewer | null, title: TextKey, text: TextKey): Html {
  return page({ lang, path, viewer, title: t(lang, title), body: html`<h1>${t(lang, title)}</h1>${notice('error', t(lang, text))}` });
}
