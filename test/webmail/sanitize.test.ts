import { describe, expect, it } from 'vitest';
import { Html } from '../../src/webmail/html.js';
import { BLOCKED_IMAGE_CLASS, MAX_NESTING, sanitizeMailHtml } from '../../src/webmail/sanitize.js';
import { inertnessProblems, XSS_CORPUS } from './xss-corpus.js';

const PNG = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

describe('sanitizeMailHtml: the XSS corpus comes out inert', () => {
  it.each(XSS_CORPUS.map((v) => [v.name, v] as const))('%s', (_name, vector) => {
    const { html, blockedRemote } = sanitizeMailHtml(vector.html);
    expect(html).toBeInstanceOf(Html);
    expect(inertnessProblems(html.text)).toEqual([]);
    expect(blockedRemote).toBe(vector.remote);
    // Nothing active survives anywhere in a tag, whatever its spelling (escaped text in a title is inert).
    const tags = (html.text.match(/<[^>]*>/g) ?? []).map((tag) => tag.replace(/ title="[^"]*"/g, '')).join(' ').toLowerCase();
    for (const word of ['javascript', 'vbscript', 'alert', 'expression', 'tracker.test', 'style=', ' on', 'srcset', 'xlink', 'svg', 'math']) {
      expect(tags).not.toContain(word);
    }
  });

  it('the corpus checker itself flags what is not inert (it can fail)', () => {
    expect(inertnessProblems('<script>alert(1)</script>')).toContain('element <script>');
    expect(inertnessProblems('<img src="x" onerror="alert(1)">')).toEqual(expect.arrayContaining(['<img> attribute onerror', '<img> src="x"']));
    expect(inertnessProblems('<a href="javascript:alert(1)" rel="noopener noreferrer" target="_blank">x</a>')).toContain('<a> href="javascript:alert(1)"');
    expect(inertnessProblems('<a href="https://ok.test/">x</a>')).toContain('<a href> without rel="noopener noreferrer" target="_blank"');
    expect(inertnessProblems('<img src="https://tracker.test/p.gif">')).toContain('<img> src="https://tracker.test/p.gif"');
    expect(inertnessProblems('<div style="color:red">x</div>')).toContain('<div> attribute style');
    expect(inertnessProblems("<p title='x'>")).toHaveLength(1);
    expect(inertnessProblems('<p>a &lt; b</p>')).toEqual([]);
  });
});

describe('sanitizeMailHtml: what an ordinary mail keeps', () => {
  it('keeps text formatting, lists, tables and links, defused; escapes text', () => {
    const { html, blockedRemote } = sanitizeMailHtml(
      '<h1 id="t" class="x">Résultats</h1><p>Bonjour <b>Madame</b> &amp; <em>Monsieur</em>, a &lt; b</p>' +
        '<ul><li>un</li></ul><table border="1"><tr><td colspan="2" style="color:red">x</td></tr></table>' +
        '<p><a href="https://www.ameli.fr/assure">ameli</a> <a href="mailto:secretariat@ch-test.mssante.test">écrire</a></p>',
    );
    expect(blockedRemote).toBe(0);
    expect(html.text).toBe(
      '<h1>Résultats</h1><p>Bonjour <b>Madame</b> &amp; <em>Monsieur</em>, a &lt; b</p>' +
        '<ul><li>un</li></ul><table><tr><td colspan="2">x</td></tr></table>' +
        '<p><a href="https://www.ameli.fr/assure" rel="noopener noreferrer" target="_blank">ameli</a> ' +
        '<a href="mailto:secretariat@ch-test.mssante.test" rel="noopener noreferrer" target="_blank">écrire</a></p>',
    );
  });

  it('drops a link target it does not allow but keeps the link text', () => {
    expect(sanitizeMailHtml('<a href="javascript:alert(1)" title="t">texte</a>').html.text).toBe('<a title="t">texte</a>');
    expect(sanitizeMailHtml('<a href="/logout">sortir</a>').html.text).toBe('<a>sortir</a>');
    expect(sanitizeMailHtml('<a href="ftp://files.test/x">ftp</a>').html.text).toBe('<a>ftp</a>');
  });

  it('replaces remote images by a counted placeholder, in the reader language, alt kept as its title', () => {
    const fr = sanitizeMailHtml('<p><img src="https://tracker.test/logo.png" alt="Logo de l’hôpital"></p>');
    expect(fr.blockedRemote).toBe(1);
    expect(fr.html.text).toBe(`<p><span class="${BLOCKED_IMAGE_CLASS}" title="Logo de l’hôpital">[image distante non affichée]</span></p>`);
    const en = sanitizeMailHtml('<img src="http://tracker.test/a.gif"><img src="//tracker.test/b.gif">', { lang: 'en' });
    expect(en.blockedRemote).toBe(2);
    expect(en.html.text).toBe(`<span class="${BLOCKED_IMAGE_CLASS}">[remote image not shown]</span>`.repeat(2));
  });

  it('shows raster data: images, never SVG ones', () => {
    const png = sanitizeMailHtml(`<img src="${PNG}" alt="schéma" width="10" onload="alert(1)">`);
    expect(png.html.text).toBe(`<img alt="schéma" width="10" src="${PNG}" />`);
    expect(png.blockedRemote).toBe(0);
    const svg = sanitizeMailHtml('<img src="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=">');
    expect(svg.html.text).toBe(`<span class="${BLOCKED_IMAGE_CLASS}">[image non affichée]</span>`);
    expect(svg.blockedRemote).toBe(0);
    expect(sanitizeMailHtml('<img src="data:text/html;base64,PHNjcmlwdD4=">').html.text).toContain(BLOCKED_IMAGE_CLASS);
  });

  it('shows cid: images only through a same-origin URL the webmail gives', () => {
    const seen: string[] = [];
    const cidUrl = (cid: string) => {
      seen.push(cid);
      return cid === 'logo@ch-test' ? `/message/7/part/${encodeURIComponent(cid)}` : null;
    };
    const out = sanitizeMailHtml('<img src="cid:logo%40ch-test" alt="logo"><img src="cid:inconnu@x">', { cidUrl });
    expect(seen).toEqual(['logo@ch-test', 'inconnu@x']);
    expect(out.html.text).toBe(`<img alt="logo" src="/message/7/part/logo%40ch-test" /><span class="${BLOCKED_IMAGE_CLASS}">[image non affichée]</span>`);
    expect(sanitizeMailHtml('<img src="cid:a@b">').html.text).toContain(BLOCKED_IMAGE_CLASS);
    for (const bad of ['https://tracker.test/x', '//tracker.test/x', '/\\tracker.test/x', 'javascript:alert(1)', '/a"onerror="x']) {
      const result = sanitizeMailHtml('<img src="cid:a@b">', { cidUrl: () => bad });
      expect(result.html.text, bad).toBe(`<span class="${BLOCKED_IMAGE_CLASS}">[image non affichée]</span>`);
      expect(result.blockedRemote).toBe(0);
    }
  });

  it(`flattens nesting deeper than ${MAX_NESTING} elements and keeps the text`, () => {
    const depth = MAX_NESTING + 50;
    const out = sanitizeMailHtml(`${'<div>'.repeat(depth)}profond${'</div>'.repeat(depth)}`).html.text;
    expect(out).toContain('profond');
    const opened = out.match(/<div>/g)?.length ?? 0;
    expect(opened).toBeLessThanOrEqual(MAX_NESTING);
    expect(opened).toBeGreaterThan(MAX_NESTING / 2);
    expect(out.match(/<\/div>/g)?.length).toBe(opened);
    const within = sanitizeMailHtml(`${'<div>'.repeat(10)}x${'</div>'.repeat(10)}`).html.text;
    expect(within.match(/<div>/g)).toHaveLength(10);
  });
});
