import { createHash } from 'node:crypto';

/**
 * The webmail's static files, kept as constants so the build needs no copy step. Served under
 * `/static/<name>?v=<hash>` with a long cache lifetime: the hash in the URL changes with the content. The
 * strict CSP allows scripts and styles from these files only (no inline script or style).
 */

const CSS = `
:root { --fg: #1b1b1b; --bg: #ffffff; --muted: #4a4a4a; --accent: #0b4f8a; --accent-fg: #ffffff; --line: #c8c8c8;
  --soft: #eef3f8; --error-bg: #fdecea; --error-fg: #8a1111; --ok-bg: #e7f4ea; --ok-fg: #14532d; }
* { box-sizing: border-box; }
html { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; font-size: 100%; color: var(--fg); background: var(--bg); }
body { margin: 0; line-height: 1.5; }
a { color: var(--accent); }
a:focus, button:focus, input:focus, textarea:focus, select:focus, summary:focus { outline: 3px solid #f0a000; outline-offset: 2px; }
.skip { position: absolute; left: -10000px; top: 0; background: var(--bg); padding: .5rem; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.skip:focus { left: .5rem; z-index: 10; }
header.top { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; justify-content: space-between;
  padding: .5rem 1rem; background: var(--accent); color: var(--accent-fg); }
header.top a, header.top .who { color: var(--accent-fg); }
header.top .brand { font-weight: 700; font-size: 1.1rem; text-decoration: none; }
header.top form { display: inline; margin: 0; }
header.top button { background: transparent; color: var(--accent-fg); border: 1px solid var(--accent-fg); }
.layout { display: flex; flex-wrap: wrap; }
nav.side { flex: 0 0 15rem; padding: 1rem; border-right: 1px solid var(--line); }
nav.side ul { list-style: none; margin: 0; padding: 0; }
nav.side li { margin: .25rem 0; }
nav.side a[aria-current="page"] { font-weight: 700; }
.count { display: inline-block; min-width: 1.5rem; padding: 0 .4rem; margin-left: .25rem; border-radius: 1rem; background: var(--accent);
  color: var(--accent-fg); text-align: center; font-size: .85rem; }
main { flex: 1 1 20rem; padding: 1rem; min-width: 0; }
h1 { font-size: 1.5rem; margin-top: 0; }
h2 { font-size: 1.2rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .4rem; border-bottom: 1px solid var(--line); vertical-align: top; }
tr.unread td { font-weight: 700; }
label { display: block; font-weight: 600; margin-top: .75rem; }
label.inline { display: inline; font-weight: 400; }
input[type="text"], input[type="password"], input[type="search"], input[type="email"], input[type="file"], textarea {
  width: 100%; max-width: 40rem; padding: .5rem; font: inherit; border: 1px solid #767676; border-radius: 4px; }
textarea { min-height: 12rem; }
button, .button { display: inline-block; margin-top: .75rem; padding: .5rem 1rem; font: inherit; border-radius: 4px; border: 1px solid var(--accent);
  background: var(--accent); color: var(--accent-fg); cursor: pointer; text-decoration: none; }
button.secondary { background: var(--bg); color: var(--accent); }
button[disabled] { background: #e0e0e0; color: #3a3a3a; border-color: #767676; cursor: not-allowed; }
.inline-form { display: inline; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; align-items: flex-start; }
.notice { padding: .75rem; border-radius: 4px; margin: .75rem 0; }
.notice.error { background: var(--error-bg); color: var(--error-fg); }
.notice.ok { background: var(--ok-bg); color: var(--ok-fg); }
.notice.info { background: var(--soft); color: var(--fg); }
.hint { color: var(--muted); font-size: .9rem; }
.headers dt { font-weight: 700; float: left; clear: left; width: 6rem; }
.headers dd { margin: 0 0 .25rem 6.5rem; overflow-wrap: anywhere; }
.mail-body { border-top: 1px solid var(--line); padding-top: 1rem; overflow-wrap: anywhere; }
.mail-body pre, pre.text { white-space: pre-wrap; font-family: inherit; }
.mail-body img { max-width: 100%; height: auto; }
.qr { display: block; width: 12rem; height: 12rem; image-rendering: pixelated; }
code.key { font-size: 1.1rem; letter-spacing: .1rem; overflow-wrap: anywhere; }
.card { max-width: 32rem; margin: 2rem auto; padding: 1rem 1.5rem; border: 1px solid var(--line); border-radius: 6px; }
.cda section { margin-bottom: 1rem; }
@media (max-width: 40rem) {
  nav.side { flex-basis: 100%; border-right: none; border-bottom: 1px solid var(--line); }
  .headers dt { float: none; width: auto; }
  .headers dd { margin-left: 0; }
  th.opt, td.opt { display: none; }
}
`;

const JS = `
(function () {
  'use strict';
  // Address-book completion: the last address typed in a field marked data-complete, from /api/directory/search.
  var fields = document.querySelectorAll('input[data-complete]');
  Array.prototype.forEach.call(fields, function (input) {
    var list = document.getElementById(input.getAttribute('list'));
    if (!list) return;
    var timer = null;
    var asked = '';
    input.addEventListener('input', function () {
      if (timer) clearTimeout(timer);
      timer = setTimeout(function () {
        var value = input.value;
        var cut = value.lastIndexOf(',');
        var head = cut < 0 ? '' : value.slice(0, cut + 1) + ' ';
        var q = value.slice(cut + 1).trim();
        if (q.length < 2 || q === asked || q.indexOf('@') >= 0) return;
        asked = q;
        fetch('/api/directory/search?q=' + encodeURIComponent(q) + '&limit=8', { credentials: 'same-origin', headers: { accept: 'application/json' } })
          .then(function (r) { return r.ok ? r.json() : { results: [] }; })
          .then(function (body) {
            while (list.firstChild) list.removeChild(list.firstChild);
            (body.results || []).forEach(function (entry) {
              var option = document.createElement('option');
              option.value = head + entry.address;
              option.textContent = entry.name + (entry.organisation ? ' — ' + entry.organisation : '');
              list.appendChild(option);
            });
          })
          .catch(function () {});
      }, 200);
    });
  });
})();
`;

export interface Asset {
  name: string;
  contentType: string;
  body: Buffer;
  hash: string;
}

function asset(name: string, contentType: string, text: string): Asset {
  const body = Buffer.from(text, 'utf8');
  return { name, contentType, body, hash: createHash('sha256').update(body).digest('hex').slice(0, 16) };
}

export const ASSETS: ReadonlyMap<string, Asset> = new Map(
  [asset('app.css', 'text/css; charset=utf-8', CSS), asset('app.js', 'text/javascript; charset=utf-8', JS)].map((a) => [a.name, a]),
);

/** The versioned URL of a static file. */
export function assetUrl(name: 'app.css' | 'app.js'): string {
  const a = ASSETS.get(name);
  if (!a) throw new Error(`no asset ${name}`);
  return `/static/${a.name}?v=${a.hash}`;
}
