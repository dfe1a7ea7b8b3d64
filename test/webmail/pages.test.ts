import { describe, expect, it } from 'vitest';
import { html } from '../../src/webmail/html.js';
import type { FolderView, MessageView } from '../../src/webmail/mail-reader.js';
import { loginPage } from '../../src/webmail/pages/auth.js';
import type { Viewer } from '../../src/webmail/pages/layout.js';
import { composePage, folderPage, historyPage, messagePage } from '../../src/webmail/pages/mail.js';

/** The page renderers are pure functions of their data: what they print, and that data never becomes markup. */

const HOSTILE = '<img src=x onerror="alert(1)">"\'&';
const inbox: FolderView = { id: 3, name: 'INBOX', total: 2, unread: 1 };
const viewer: Viewer = { address: 'jean.dupont@hopital.test', patient: false, csrf: 'TOKEN', folders: [inbox, { id: 4, name: 'Sent', total: 0, unread: 0 }, { id: 5, name: 'Trash', total: 0, unread: 0 }] };

const view: MessageView = {
  folder: inbox,
  uid: 7,
  seen: false,
  internalDate: Date.UTC(2026, 0, 2, 9, 30),
  subject: HOSTILE,
  from: [{ name: HOSTILE, address: 'dpi@hopital.test' }],
  to: [{ name: null, address: 'jean.dupont@hopital.test' }],
  cc: [],
  date: null,
  text: HOSTILE,
  html: null,
  attachments: [{ index: 0, filename: HOSTILE, contentType: 'application/pdf', size: 2048, xdm: false }],
  receipt: { requested: true, notifyTo: 'dpi@hopital.test', automatic: false, reason: 'return-path-differs', originalRecipient: null, finalDestinationDelivery: false, options: [] },
  receiptSent: false,
  closed: false,
};

function noActiveMarkup(page: string): void {
  expect(page).not.toContain('<img src=x');
  // No tag has an event handler (attribute values, where the escaped text may sit, set aside).
  expect(page.replace(/"[^"]*"/g, '""')).not.toMatch(/<[^>]*\son[a-z]+=/i);
  expect(page).toContain('&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&quot;&#39;&amp;');
}

describe('webmail page renderers', () => {
  it('frame: language, title, one external script, the CSRF token in the logout form, folders with unread counts', () => {
    const page = folderPage({ lang: 'fr', viewer, folder: inbox, items: [], total: 0, offset: 0, pageSize: 50, query: '' }).text;
    expect(page).toMatch(/^<!DOCTYPE html>\n<html lang="fr">/);
    expect(page).toContain('<title>Boîte de réception — Messagerie sécurisée de santé</title>');
    expect(page.match(/<script/g)).toHaveLength(1);
    expect(page).toMatch(/<script src="\/static\/app\.js\?v=[0-9a-f]{16}" defer><\/script>/);
    expect(page).toContain('<form method="post" action="/logout"><input type="hidden" name="_csrf" value="TOKEN">');
    expect(page).toContain('<a href="/folder/3" aria-current="page">Boîte de réception <span class="count">1<span class="sr-only"> non lus</span></span></a>');
    expect(page).toContain('<a href="/compose">Nouveau message</a>');
    expect(page).toContain('Aucun message.');
    const en = folderPage({ lang: 'en', viewer: { ...viewer, patient: true }, folder: inbox, items: [], total: 0, offset: 0, pageSize: 50, query: '' }).text;
    expect(en).toMatch(/<html lang="en">/);
    expect(en).toContain('No messages.');
    expect(en).not.toContain('href="/compose"');
    expect(en).toContain('href="/documents"');
  });

  it('folder list: hostile subjects and names stay text; paging links only where there is more', () => {
    const items = [{ uid: 9, seen: false, internalDate: 0, from: [{ name: HOSTILE, address: 'a@b.test' }], to: [], subject: HOSTILE, size: 10 }];
    const page = folderPage({ lang: 'fr', viewer, folder: inbox, items, total: 120, offset: 50, pageSize: 50, query: HOSTILE }).text;
    noActiveMarkup(page);
    expect(page).toContain('<tr class="unread">');
    expect(page).toContain('href="/folder/3?offset=0&amp;q=');
    expect(page).toContain('href="/folder/3?offset=100&amp;q=');
    const last = folderPage({ lang: 'fr', viewer, folder: inbox, items, total: 120, offset: 100, pageSize: 50, query: '' }).text;
    expect(last).not.toContain('rel="next"');
  });

  it('message: text body escaped, receipt asked, reply refused with its reason next to a disabled button', () => {
    const page = messagePage({ lang: 'fr', viewer, view, body: html`<pre class="text">${view.text}</pre>`, blockedRemote: 0, reply: { allowed: false, reason: 'Conversation close' } }).text;
    noActiveMarkup(page);
    expect(page).toContain('<form method="post" action="/folder/3/7/receipt">');
    expect(page).toContain('<button type="button" disabled aria-describedby="reply-why">Répondre</button>');
    expect(page).toContain('<p id="reply-why" class="notice info"><strong>Réponse impossible :</strong> Conversation close</p>');
    expect(page).toContain('href="/folder/3/7/attachment/0" download');
    const sent = messagePage({ lang: 'fr', viewer, view: { ...view, receiptSent: true }, body: html``, blockedRemote: 2, reply: { allowed: true } }).text;
    expect(sent).not.toContain('/receipt"');
    expect(sent).toContain('<a class="button" href="/folder/3/7/reply">Répondre</a>');
    expect(sent).toContain('Des contenus distants');
  });

  it('compose: a patient’s recipient is read-only and has no professional options', () => {
    const patient = composePage({ lang: 'fr', viewer: { ...viewer, patient: true }, to: 'dpi@hopital.test', subject: HOSTILE, body: HOSTILE, replyTo: { folderId: 3, uid: 7 }, toFixed: true, options: false }).text;
    noActiveMarkup(patient);
    expect(patient).toContain('<input type="text" id="to" name="to" value="dpi@hopital.test" readonly>');
    expect(patient).toContain('<input type="hidden" name="folder" value="3"><input type="hidden" name="uid" value="7">');
    expect(patient).not.toContain('name="close"');
    const pro = composePage({ lang: 'fr', viewer, to: '', subject: '', body: '', replyTo: null, toFixed: false, options: true }).text;
    expect(pro).toContain('data-complete="directory"');
    expect(pro).toContain('name="receipt"');
    expect(pro).toContain('name="close"');
    expect(pro).toContain('enctype="multipart/form-data"');
  });

  it('login and history: errors announced, actions named, the viewer shown as "vous"', () => {
    const login = loginPage({ lang: 'fr', csrf: 'T', address: HOSTILE, problem: { text: 'Identifiant ou mot de passe incorrect.' } }).text;
    noActiveMarkup(login);
    expect(login).toContain('<div class="notice error" role="alert"><p>Identifiant ou mot de passe incorrect.</p>');
    const history = historyPage('fr', viewer, [
      { seq: 2, time: '2026-01-02T10:00:00.000Z', actor: viewer.address, action: 'read', outcome: 'ok', via: 'webmail' },
      { seq: 1, time: '2026-01-02T09:00:00.000Z', actor: 'dpi@hopital.test', action: 'deliver', outcome: 'ok', via: null },
      { seq: 0, time: '2026-01-02T08:00:00.000Z', actor: 'server', action: 'trust-import', outcome: 'ok', via: null },
    ]).text;
    expect(history).toContain('<td>vous</td><td>Lecture</td>');
    expect(history).toContain('<td>dpi@hopital.test</td><td>Réception d’un message</td>');
    expect(history).toContain('Autre (trust-import)');
  });
});
