import { readFileSync } from 'node:fs';
import { unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { XdmFormatError, ZipLimitError, ZipPathError } from '../../src/mime/xdm/errors.js';
import { buildXdm } from '../../src/mime/xdm/build.js';
import { html } from '../../src/webmail/html.js';
import { displayXdmSubject, isXdmReadError, listXdmDocuments, readXdmDocument, renderXdmError, renderXdmList } from '../../src/webmail/xdm-view.js';
import { rezip, thrown, zipOf } from '../helpers/zip.js';

const xdmFixture = (name: string) => readFileSync(new URL(`../fixtures/xdm/${name}`, import.meta.url));
const cdaFixture = (name: string) => readFileSync(new URL(`../fixtures/cda/${name}`, import.meta.url));
const NOW = new Date('2024-01-16T15:11:12Z');

const LDL = cdaFixture('fr/LDL-SES_2022.01.xml');
const BIO = cdaFixture('fr/BIO-CR-BIO_2024.01_TSH_1.xml');
const frenchPackage = () => buildXdm({ documents: [{ content: LDL }, { content: BIO }, { content: Buffer.from('%PDF-1.7 rendu'), mimeType: 'application/pdf', fileName: 'RENDU.PDF', title: 'Rendu PDF' }], now: NOW });

describe('listXdmDocuments', () => {
  it('a French package: each document with its CDA header summary, kind and integrity', () => {
    const entries = listXdmDocuments(frenchPackage());
    expect(entries.map((e) => [e.id, e.format, e.kind, e.integrity])).toEqual([
      ['SUBSET01/Document01', 'cda', 'report', 'ok'],
      ['SUBSET01/Document02', 'cda', 'lab', 'ok'],
      ['SUBSET01/Document03', 'other', 'other', 'ok'],
    ]);
    expect(entries[0]).toMatchObject({
      subset: 'IHE_XDM/SUBSET01',
      entryId: 'Document01',
      path: 'IHE_XDM/SUBSET01/DOC0001.XML',
      title: "Lettre de liaison à la sortie de l'établissement de santé",
      mimeType: 'text/xml',
      size: LDL.length,
      date: '20191203133000+0100',
      cda: { code: '11490-0', patient: 'DOMINIQUE PAT-TROIS', author: 'Charles DAVID', organisation: 'Hôpital Européen Georges Pompidou' },
    });
    expect(entries[2]).toMatchObject({ title: 'Rendu PDF', mimeType: 'application/pdf', cda: null });
  });

  it('the ETT package (C-CDA, scheme named LOINC) and the Direct RI one (extra folder, no URI slot)', () => {
    const [ett] = listXdmDocuments(xdmFixture('ett/CCDA_Ambulatory_in_XDM.zip'));
    expect(ett).toMatchObject({ format: 'cda', kind: 'report', integrity: 'ok', title: 'Get Well Clinic: Health Summary', date: '20120806' });
    const [direct] = listXdmDocuments(xdmFixture('nhin-d/samplexdm.zip'));
    expect(direct).toMatchObject({ id: 'SUBSET01/Document01', path: 'samplexdm/IHE_XDM/SUBSET01/Document01.xml', format: 'cda', kind: 'report' });
  });

  it('an altered or missing document is listed with its problem and never handed out', () => {
    const original = frenchPackage();
    const altered = rezip(original, (files) => {
      const doc = files['IHE_XDM/SUBSET01/DOC0002.XML']!;
      files['IHE_XDM/SUBSET01/DOC0002.XML'] = Buffer.from(doc.toString('utf8').replace('TSH', 'XYZ'));
      delete files['IHE_XDM/SUBSET01/RENDU.PDF'];
    });
    const entries = listXdmDocuments(altered);
    expect(entries.map((e) => [e.id, e.integrity, e.format, e.cda])).toEqual([
      ['SUBSET01/Document01', 'ok', 'cda', expect.objectContaining({ code: '11490-0' })],
      ['SUBSET01/Document02', 'hash', 'other', null],
      ['SUBSET01/Document03', 'missing', 'other', null],
    ]);
    expect(readXdmDocument(altered, 'SUBSET01/Document01')?.content.equals(LDL)).toBe(true);
    expect(readXdmDocument(altered, 'SUBSET01/Document02')).toBeNull();
    expect(readXdmDocument(altered, 'SUBSET01/Document03')).toBeNull();
    expect(readXdmDocument(altered, 'SUBSET01/Nope')).toBeNull();
    const shorter = rezip(original, (files) => {
      files['IHE_XDM/SUBSET01/DOC0001.XML'] = files['IHE_XDM/SUBSET01/DOC0001.XML']!.subarray(0, 100);
    });
    expect(listXdmDocuments(shorter)[0]?.integrity).toBe('size');
  });

  it('a document that claims to be CDA but does not read is listed as unreadable', () => {
    const pkg = buildXdm({ documents: [{ content: Buffer.from('<ClinicalDocument xmlns="urn:hl7-org:v3"><title>x</ClinicalDocument>') }], now: NOW });
    expect(listXdmDocuments(pkg)[0]).toMatchObject({ format: 'cda-unreadable', integrity: 'ok', cda: null });
    const doctype = buildXdm({ documents: [{ content: Buffer.from('<!DOCTYPE x><ClinicalDocument xmlns="urn:hl7-org:v3"/>') }], now: NOW });
    expect(listXdmDocuments(doctype)[0]?.format).toBe('cda-unreadable');
  });

  it('throws the reader errors for archives it must not read, within the limits given', () => {
    expect(thrown(() => listXdmDocuments(Buffer.from('not a zip')))).toMatchObject({ code: 'zip-malformed' });
    expect(thrown(() => listXdmDocuments(zipOf({ 'README.TXT': 'x' })))).toBeInstanceOf(XdmFormatError);
    expect(thrown(() => listXdmDocuments(zipOf({ '../IHE_XDM/SUBSET01/METADATA.XML': 'x' })))).toBeInstanceOf(ZipPathError);
    const pkg = frenchPackage();
    const entries = Object.keys(unzipSync(pkg)).length;
    // A reading kept for the same archive under other limits is not reused.
    expect(listXdmDocuments(pkg)).toHaveLength(3);
    expect(thrown(() => listXdmDocuments(pkg, { limits: { maxEntries: entries - 1 } }))).toBeInstanceOf(ZipLimitError);
    expect(thrown(() => readXdmDocument(pkg, 'SUBSET01/Document01', { limits: { maxEntries: entries - 1 } }))).toBeInstanceOf(ZipLimitError);
    expect(readXdmDocument(pkg, 'SUBSET01/Document01')?.content.equals(LDL)).toBe(true);
    expect(listXdmDocuments(pkg, { limits: { maxEntries: entries } })).toHaveLength(3);
    expect(isXdmReadError(thrown(() => listXdmDocuments(Buffer.from('x'))))).toBe(true);
    expect(isXdmReadError(new Error('bug'))).toBe(false);
  });
});

describe('renderXdmList and renderXdmError', () => {
  it('lists each document with kind, date and author, the page actions only for sound documents', () => {
    const altered = rezip(frenchPackage(), (files) => {
      delete files['IHE_XDM/SUBSET01/RENDU.PDF'];
    });
    const entries = listXdmDocuments(altered);
    const out = renderXdmList(entries, 'fr', { actions: (e) => html`<a href="/view?d=${e.id}&amp;x">Voir</a>` }).text;
    expect(out).toBe(
      '<ul class="xdm-documents">' +
        '<li class="xdm-document"><span class="xdm-title">Lettre de liaison à la sortie de l&#39;établissement de santé</span> ' +
        '<span class="xdm-details">Comptes rendus · 03/12/2019 · par Charles DAVID, Hôpital Européen Georges Pompidou</span> ' +
        '<span class="xdm-actions"><a href="/view?d=SUBSET01/Document01&amp;x">Voir</a></span></li>' +
        '<li class="xdm-document"><span class="xdm-title">Compte rendu d&#39;examens biologiques</span> ' +
        '<span class="xdm-details">Résultats d&#39;analyses · 01/04/2021 · par Marcel CAMPARINI, Laboratoire des charmes</span> ' +
        '<span class="xdm-actions"><a href="/view?d=SUBSET01/Document02&amp;x">Voir</a></span></li>' +
        '<li class="xdm-document"><span class="xdm-title">Rendu PDF</span> <span class="xdm-details">Document non structuré</span> ' +
        '<span class="xdm-problem" role="status">Document absent du paquet : il ne peut pas être ouvert.</span></li>' +
        '</ul>',
    );
  });

  it('escapes every text from the package', () => {
    const hostile = Buffer.from(
      '<ClinicalDocument xmlns="urn:hl7-org:v3"><code code="11502-2" codeSystem="2.16.840.1.113883.6.1"/><title>&lt;script&gt;alert(1)&lt;/script&gt;</title>' +
        '<author><assignedAuthor><assignedPerson><name><given>&lt;img src=x onerror=alert(1)&gt;</given><family>"&amp;</family></name></assignedPerson></assignedAuthor></author></ClinicalDocument>',
    );
    const out = renderXdmList(listXdmDocuments(buildXdm({ documents: [{ content: hostile }], now: NOW })), 'en').text;
    expect(out).toContain('<span class="xdm-title">&lt;script&gt;alert(1)&lt;/script&gt;</span>');
    expect(out).toContain('by &lt;img src=x onerror=alert(1)&gt; &quot;&amp;');
    expect(out).not.toMatch(/<(script|img)/);
  });

  it('an empty list and the reasons an archive cannot be read, in both languages', () => {
    expect(renderXdmList([], 'fr').text).toBe('<p class="xdm-empty">Ce paquet ne contient aucun document.</p>');
    expect(renderXdmError(thrown(() => listXdmDocuments(Buffer.from('x'))), 'fr').text).toBe(
      '<div class="xdm-error" role="alert">Les documents de cette pièce jointe (IHE_XDM) ne peuvent pas être lus : ce n&#39;est pas un paquet IHE XDM valide.</div>',
    );
    const pkg = frenchPackage();
    expect(renderXdmError(thrown(() => listXdmDocuments(pkg, { limits: { maxEntries: 1 } })), 'en').text).toBe(
      '<div class="xdm-error" role="alert">The documents of this attachment (IHE_XDM) cannot be read: it exceeds the accepted size limits.</div>',
    );
    expect(renderXdmError(thrown(() => listXdmDocuments(zipOf({ '../IHE_XDM/SUBSET01/METADATA.XML': 'x' }))), 'en').text).toContain('refused for safety reasons');
  });

  it('shows the subject without its XDM/1.0/DDM+ prefix', () => {
    expect(displayXdmSubject('XDM/1.0/DDM+Lettre de liaison PAT-TROIS DOMINIQUE 28/03/1979')).toBe('Lettre de liaison PAT-TROIS DOMINIQUE 28/03/1979');
    expect(displayXdmSubject('Re: XDM/1.0/DDM+CR BIO')).toBe('Re: CR BIO');
    expect(displayXdmSubject('Bonjour')).toBe('Bonjour');
  });
});
