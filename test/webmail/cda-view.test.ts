import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { NarrativeNode } from '../../src/mime/cda/narrative.js';
import { cdaEmbeddedFile, formatHl7Time, renderCdaDocument, renderNarrative } from '../../src/webmail/cda-view.js';
import { documentKind } from '../../src/webmail/document-kinds.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/cda/${name}`, import.meta.url));
const FR = readdirSync(new URL('../fixtures/cda/fr/', import.meta.url)).sort();
const US = readdirSync(new URL('../fixtures/cda/us/', import.meta.url)).sort();

/** The tags the viewer may write; anything else in its output is a bug (or an injection). */
const VIEWER_TAGS = new Set([
  'article', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'dl', 'dt', 'dd', 'section', 'p', 'ul', 'ol', 'li', 'table', 'caption',
  'thead', 'tbody', 'tfoot', 'tr', 'th', 'td', 'span', 'br', 'div', 'a', 'strong', 'em', 'u',
]);
const VIEWER_ATTRIBUTES = new Set(['class', 'colspan', 'rowspan', 'role', 'href']);

/** Tags and attributes of the viewer's output that it should never write. */
function foreignMarkup(out: string): string[] {
  const problems: string[] = [];
  for (const m of out.matchAll(/<\/?([a-zA-Z0-9]+)([^>]*)>/g)) {
    if (!VIEWER_TAGS.has(m[1]!)) problems.push(`<${m[1]}>`);
    for (const a of m[2]!.matchAll(/([^\s=]+)=/g)) if (!VIEWER_ATTRIBUTES.has(a[1]!)) problems.push(`${m[1]} ${a[1]}`);
  }
  // Every `<` of the output opens one of those tags: text was escaped.
  const opened = out.split('<').length - 1;
  const tags = [...out.matchAll(/<\/?[a-zA-Z0-9]+[^<>]*>/g)].length;
  if (opened !== tags) problems.push(`${opened - tags} unescaped <`);
  return problems;
}

function cda(sections: string, header = ''): Buffer {
  return Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3">
  <code code="11502-2" codeSystem="2.16.840.1.113883.6.1" displayName="CR d'examens biologiques"/>
  <title>Compte rendu &lt;b&gt;biologie&lt;/b&gt;</title>
  <effectiveTime value="20240116151112+0100"/>
  ${header}
  <component><structuredBody>${sections}</structuredBody></component>
</ClinicalDocument>`);
}

const section = (title: string, text: string) => `<component><section><title>${title}</title><text>${text}</text></section></component>`;

describe('renderCdaDocument: the ANS and ONC sample documents', () => {
  it.each(FR.map((f) => [`fr/${f}`]).concat(US.map((f) => [`us/${f}`])))('%s renders: header, sections, nothing foreign', (name) => {
    const out = renderCdaDocument(fixture(name), 'fr').text;
    expect(out).toMatch(/^<article class="cda-document"><h1 class="cda-title">/);
    expect(out).toContain('<dl class="cda-header">');
    expect(out).not.toContain('cda-error');
    expect(foreignMarkup(out)).toEqual([]);
  });

  it('LDL-SES (lettre de liaison): patient with INS and traits, author, organisation, date, type and its kind, in French', () => {
    const out = renderCdaDocument(fixture('fr/LDL-SES_2022.01.xml'), 'fr').text;
    expect(out).toContain('<h1 class="cda-title">Lettre de liaison à la sortie de l&#39;établissement de santé</h1>');
    expect(out).toContain('<dt>Patient</dt><dd>DOMINIQUE PAT-TROIS (né(e) le 28/03/1979, femme)<br><span class="cda-ins">INS 279035121518989</span></dd>');
    expect(out).toContain('<dt>Auteur</dt><dd>Charles DAVID — Médecin - Médecine interne (SM) — Hôpital Européen Georges Pompidou</dd>');
    expect(out).toContain('<dt>Établissement</dt><dd>Hôpital Européen Georges Pompidou</dd>');
    expect(out).toContain('<dt>Date</dt><dd>03/12/2019 à 13:30</dd>');
    expect(out).toContain(
      '<dt>Type de document</dt><dd>Lettre de liaison à la sortie d&#39;un établissement de soins <span class="cda-kind">(Comptes rendus)</span></dd>',
    );
    expect(out).toContain(
      '<section class="cda-section"><h2>Motif de l&#39;hospitalisation</h2><table><tbody><tr><td>Episode psychotique – cachexie/anorexie</td></tr></tbody></table></section>',
    );
  });

  it('the same document in English', () => {
    const out = renderCdaDocument(fixture('fr/LDL-SES_2022.01.xml'), 'en').text;
    expect(out).toContain('<dt>Patient</dt><dd>DOMINIQUE PAT-TROIS (born 1979-03-28, female)');
    expect(out).toContain('<dt>Date</dt><dd>2019-12-03 13:30</dd>');
    expect(out).toContain('<dt>Organisation</dt>');
    expect(out).toContain('<span class="cda-kind">(Reports)</span>');
  });

  it('CR-IMG level 1: the embedded PDF is announced (and linked when the page serves it), and can be extracted', () => {
    const xml = fixture('fr/IMG_CR_IMG_2024.01_CDA-R2-Niveau-1.xml');
    expect(renderCdaDocument(xml, 'fr').text).toContain(
      '<p class="cda-notice">Le contenu de ce document est un fichier joint (application/pdf) qui ne peut pas être affiché ici.</p>',
    );
    expect(renderCdaDocument(xml, 'en', { embeddedHref: '/documents/3/file?x=1&y="2"' }).text).toContain(
      '(application/pdf) that cannot be shown here. <a href="/documents/3/file?x=1&amp;y=&quot;2&quot;">Open the file</a></p>',
    );
    const file = cdaEmbeddedFile(xml);
    expect(file?.mediaType).toBe('application/pdf');
    expect(file?.content.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(cdaEmbeddedFile(fixture('fr/LDL-SES_2022.01.xml'))).toBeNull();
  });
});

describe('renderCdaDocument: hostile or broken documents', () => {
  it('never passes CDA markup through: script, handlers, links, styles and entities come out as text or vanish', () => {
    const xml = cda(
      section(
        'Résultats <script>alert(1)</script>',
        '<paragraph onclick="alert(1)" styleCode="Bold xss">Glycémie &lt;img src=x onerror=alert(1)&gt;</paragraph>' +
          '<script>alert(2)</script><img xmlns="http://www.w3.org/1999/xhtml" src="x" onerror="alert(3)"/>' +
          '<linkHtml href="javascript:alert(4)">voir le site</linkHtml>' +
          '<renderMultiMedia referencedObject="img1"/>' +
          '<table><tbody><tr><td colspan="2 onmouseover=alert(5)" rowspan="3">x</td><th colspan="2">y</th></tr></tbody></table>' +
          '<content styleCode="Italics" style="background:url(https://tracker.test/x)">z</content>',
      ),
    );
    const out = renderCdaDocument(xml, 'fr').text;
    expect(foreignMarkup(out)).toEqual([]);
    expect(out).toContain('<h1 class="cda-title">Compte rendu &lt;b&gt;biologie&lt;/b&gt;</h1>');
    expect(out).toContain('<h2>Résultats alert(1)</h2>');
    expect(out).toContain('<p class="cda-bold"><strong>Glycémie &lt;img src=x onerror=alert(1)&gt;</strong></p>');
    expect(out).toContain('voir le site');
    expect(out).toContain('<td rowspan="3">x</td><th colspan="2">y</th>');
    expect(out).toContain('<span class="cda-italics"><em>z</em></span>');
    const tags = (out.match(/<[^>]*>/g) ?? []).join(' ');
    for (const word of ['script', 'onclick', 'onerror', 'onmouseover', 'javascript', 'style=', 'tracker', 'img']) expect(tags).not.toContain(word);
  });

  it('a document type declaration is refused (no entity is ever expanded)', () => {
    const xml = Buffer.from('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><ClinicalDocument xmlns="urn:hl7-org:v3"><title>&e;</title></ClinicalDocument>');
    expect(renderCdaDocument(xml, 'fr').text).toBe(
      '<div class="cda-error" role="alert">Ce document ne peut pas être affiché : sa forme est refusée pour des raisons de sécurité (taille, imbrication ou déclaration de type de document).</div>',
    );
  });

  it('a document over the size or depth limit is refused', () => {
    const big = cda(section('S', `<paragraph>${'x'.repeat(5000)}</paragraph>`));
    expect(renderCdaDocument(big, 'en', { limits: { maxBytes: 4096, maxDepth: 200 } }).text).toContain('refused for safety reasons');
    expect(renderCdaDocument(big, 'en', { limits: { maxBytes: big.length, maxDepth: 200 } }).text).not.toContain('cda-error');
    const deep = cda(section('S', `${'<content>'.repeat(40)}x${'</content>'.repeat(40)}`));
    expect(renderCdaDocument(deep, 'en', { limits: { maxBytes: 1 << 20, maxDepth: 30 } }).text).toContain('refused for safety reasons');
    expect(renderCdaDocument(deep, 'en', { limits: { maxBytes: 1 << 20, maxDepth: 60 } }).text).not.toContain('cda-error');
  });

  it('malformed XML and XML that is not a CDA document are unreadable, said in the reader language', () => {
    const unreadable = '<div class="cda-error" role="alert">This document cannot be shown: it is not a readable CDA document.</div>';
    expect(renderCdaDocument(Buffer.from('<ClinicalDocument xmlns="urn:hl7-org:v3"><title>x</ClinicalDocument>'), 'en').text).toBe(unreadable);
    expect(renderCdaDocument(Buffer.from('<html><body>x</body></html>'), 'en').text).toBe(unreadable);
    expect(renderCdaDocument(Buffer.from('%PDF-1.7 ...'), 'en').text).toBe(unreadable);
    expect(() => cdaEmbeddedFile(Buffer.from('<html/>'))).toThrow(/not a CDA document/);
  });

  it('a document without body or sections says it has no text', () => {
    const xml = Buffer.from('<ClinicalDocument xmlns="urn:hl7-org:v3"><title>Vide</title></ClinicalDocument>');
    const out = renderCdaDocument(xml, 'fr').text;
    expect(out).toBe(
      '<article class="cda-document"><h1 class="cda-title">Vide</h1><dl class="cda-header"></dl><p class="cda-notice">Ce document ne contient pas de texte à afficher.</p></article>',
    );
  });
});

describe('renderNarrative: each narrative tag maps to its own element', () => {
  const render = (nodes: NarrativeNode[]) => renderNarrative(nodes).text;

  it('paragraphs, line breaks, inline content with styles', () => {
    expect(
      render([{ tag: 'paragraph', children: ['a', { tag: 'br', children: [] }, { tag: 'content', styles: ['Bold', 'Underline'], children: ['b'] }] }]),
    ).toBe('<p>a<br><span class="cda-bold cda-underline"><strong><u>b</u></strong></span></p>');
    expect(render([{ tag: 'td', styles: ['Italics', 'Botrule'], children: ['x'] }])).toBe('<table><tr><td class="cda-italics cda-botrule"><em>x</em></td></tr></table>');
    expect(render([{ tag: 'list', styles: ['Bold'], children: [{ tag: 'item', children: ['x'] }] }])).toBe('<ul class="cda-bold"><li>x</li></ul>');
  });

  it('lists: ordered or not, caption before the list, stray text given an item', () => {
    expect(
      render([
        { tag: 'list', ordered: true, children: [{ tag: 'caption', children: ['Titre'] }, { tag: 'item', children: ['un'] }, 'deux', { tag: 'paragraph', children: ['trois'] }] },
      ]),
    ).toBe('<p class="cda-caption">Titre</p><ol><li>un</li><li>deux</li><li><p>trois</p></li></ol>');
    expect(render([{ tag: 'list', children: [{ tag: 'item', children: ['x'] }] }])).toBe('<ul><li>x</li></ul>');
  });

  it('tables: caption, sections, cells with spans; misplaced parts wrapped so they stay in the table', () => {
    expect(
      render([
        {
          tag: 'table',
          children: [
            { tag: 'caption', children: ['Bilan'] },
            { tag: 'thead', children: [{ tag: 'tr', children: [{ tag: 'th', colspan: 2, children: ['Analyse'] }] }] },
            { tag: 'tbody', children: [{ tag: 'tr', children: [{ tag: 'td', rowspan: 2, children: ['TSH'] }, 'libre', { tag: 'paragraph', children: ['p'] }] }, { tag: 'td', children: ['seul'] }] },
            { tag: 'paragraph', children: ['hors'] },
          ],
        },
      ]),
    ).toBe(
      '<table><caption>Bilan</caption><thead><tr><th colspan="2">Analyse</th></tr></thead>' +
        '<tbody><tr><td rowspan="2">TSH</td><td>libre</td><td><p>p</p></td></tr><tr><td>seul</td></tr></tbody>' +
        '<tr><td><p>hors</p></td></tr></table>',
    );
  });

  it('table parts and items outside their container get one', () => {
    expect(render([{ tag: 'td', children: ['x'] }])).toBe('<table><tr><td>x</td></tr></table>');
    expect(render([{ tag: 'tr', children: [{ tag: 'td', children: ['x'] }] }])).toBe('<table><tr><td>x</td></tr></table>');
    expect(render([{ tag: 'item', children: ['x'] }])).toBe('<ul><li>x</li></ul>');
  });

  it('a caption outside a table is a span', () => {
    expect(render([{ tag: 'paragraph', children: [{ tag: 'caption', children: ['Note'] }, ' texte'] }])).toBe('<p><span class="cda-caption">Note</span> texte</p>');
  });
});

describe('formatHl7Time and documentKind', () => {
  it('formats HL7 times for people, keeping what is not a date as written', () => {
    expect(formatHl7Time('20191203133000+0100', 'fr')).toBe('03/12/2019 à 13:30');
    expect(formatHl7Time('20191203133000+0100', 'en')).toBe('2019-12-03 13:30');
    expect(formatHl7Time('20191203133000+0100', 'fr', false)).toBe('03/12/2019');
    expect(formatHl7Time('19790328', 'en')).toBe('1979-03-28');
    expect(formatHl7Time('20191332', 'fr')).toBe('20191332');
    expect(formatHl7Time('20190229', 'fr')).toBe('20190229');
    expect(formatHl7Time('20200229', 'fr')).toBe('29/02/2020');
    expect(formatHl7Time('201912031375', 'en')).toBe('2019-12-03');
    expect(formatHl7Time('demain', 'fr')).toBe('demain');
    expect(formatHl7Time(null, 'fr')).toBeNull();
  });

  it('sorts document codes into kinds, each code in its own system', () => {
    const loinc = '2.16.840.1.113883.6.1';
    expect(documentKind('11502-2', loinc)).toBe('lab');
    expect(documentKind('96173-0', loinc)).toBe('lab');
    expect(documentKind('11490-0', loinc)).toBe('report');
    expect(documentKind('18842-5', loinc)).toBe('report');
    expect(documentKind('34133-9', 'LOINC')).toBe('report');
    expect(documentKind('18748-4', `urn:oid:${loinc}`)).toBe('imaging');
    expect(documentKind('57833-6', null)).toBe('prescription');
    expect(documentKind('SYNTH', '1.2.250.1.213.1.1.4.12')).toBe('report');
    expect(documentKind('presc-bio', null)).toBe('prescription');
    expect(documentKind('11502-2', '1.2.250.1.213.1.1.4.12')).toBe('other');
    expect(documentKind('SYNTH', loinc)).toBe('other');
    expect(documentKind('11502-2', '2.16.840.1.113883.6.96')).toBe('other');
    expect(documentKind('99999-9', loinc)).toBe('other');
    expect(documentKind('', loinc)).toBe('other');
    expect(documentKind(null)).toBe('other');
    expect(documentKind('constructor', null)).toBe('other');
  });
});
