import { readFileSync } from 'node:fs';
import { unzipSync, zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { XmlUnsafeError } from '../../src/mime/cda/xml.js';
import { parseMime } from '../../src/mime/structure.js';
import { buildXdm } from '../../src/mime/xdm/build.js';
import { XdmIntegrityError, ZipFormatError, ZipLimitError, ZipPathError } from '../../src/mime/xdm/errors.js';
import { findZipAttachments, xdmHeaderDecision } from '../../src/mime/xdm/headers.js';
import { mimeMessage, type TestAttachment } from './xdm-test-message.js';

const cda = (name: string) => readFileSync(new URL(`../fixtures/cda/${name}`, import.meta.url));
const xdmFixture = (name: string) => readFileSync(new URL(`../fixtures/xdm/${name}`, import.meta.url));
const NOW = new Date('2026-11-25T10:20:30Z');

function decide(raw: Buffer, options?: Parameters<typeof xdmHeaderDecision>[2]) {
  return xdmHeaderDecision(raw, parseMime(raw), options);
}

const xdm = (...names: string[]) => buildXdm({ documents: names.map((n) => ({ content: cda(n) })), now: NOW });
const zipAttachment = (content: Buffer, filename: string | null = 'IHE_XDM.zip', type = 'application/zip'): TestAttachment => ({ filename, type, content });

describe('xdmHeaderDecision', () => {
  it('sets the CDA code and O for a French discharge letter with a qualified INS', () => {
    const decision = decide(mimeMessage([zipAttachment(xdm('fr/LDL-SES_2022.01.xml'))]));
    expect(decision).toMatchObject({
      action: 'set',
      headers: [
        ['X-MSS-CODECDA', '11490-0'],
        ['X-MSS-INS', 'O'],
      ],
      documents: [{ part: '2', subset: 'IHE_XDM/SUBSET01', documentId: 'Document01', code: '11490-0', ins: { kind: 'INS-NIR-TEST' }, insQualified: true }],
    });
  });

  it('lists every code, once each, in order, across documents and archives', () => {
    const raw = mimeMessage([
      zipAttachment(xdm('fr/BIO-CR-BIO_2024.01_TSH_1.xml', 'fr/VSM_1.4_2022.01.xml', 'fr/BIO-CR-BIO_2021.01_Microbiologie_V1.xml')),
      { filename: 'CR.pdf', type: 'application/pdf', content: Buffer.from('%PDF-1.4\n') },
      zipAttachment(xdm('fr/BIO-TROD_2024.01_COVID-19.xml'), 'IHE_XDM_2.ZIP'),
    ]);
    const decision = decide(raw);
    expect(decision.action === 'set' && decision.headers).toEqual([
      ['X-MSS-CODECDA', '11502-2,SYNTH,96173-0'],
      ['X-MSS-INS', 'O'],
    ]);
  });

  it('sets N for a CDA without INS (US C-CDA packaged by the ONC test tool)', () => {
    const decision = decide(mimeMessage([zipAttachment(xdmFixture('ett/CCDA_Ambulatory_in_XDM.zip'), 'CCDA_Ambulatory_in_XDM.zip')]));
    expect(decision).toMatchObject({ action: 'set', headers: [['X-MSS-CODECDA', '34133-9'], ['X-MSS-INS', 'N']] });
  });

  it('sets N when the only INS has a test OID and test OIDs are refused by configuration', () => {
    const decision = decide(mimeMessage([zipAttachment(xdm('fr/LDL-SES_2022.01.xml'))]), { acceptTestIns: false });
    expect(decision).toMatchObject({ action: 'set', headers: [['X-MSS-CODECDA', '11490-0'], ['X-MSS-INS', 'N']] });
  });

  it('finds archives sent as application/octet-stream (named .zip) and reads every ETT and Direct fixture', () => {
    for (const name of ['ett/BadXHTML.zip', 'ett/ToC_XDM_Limited_Metadata.zip', 'nhin-d/samplexdm.zip']) {
      const decision = decide(mimeMessage([zipAttachment(xdmFixture(name), 'documents.ZIP', 'application/octet-stream')]));
      expect(decision, name).toMatchObject({ action: 'set', headers: [['X-MSS-CODECDA', '34133-9'], ['X-MSS-INS', 'N']] });
    }
  });

  it('says remove for a message without XDM archive, with a zip that is not XDM, or with an XDM of no CDA', () => {
    const plain = Buffer.from('From: a@b.test\r\nSubject: hi\r\n\r\nhello\r\n');
    expect(decide(plain)).toEqual({ action: 'remove', packages: [], warnings: [] });
    const photos = Buffer.from(zipSync({ 'photo.jpg': new Uint8Array([1, 2, 3]) }));
    expect(decide(mimeMessage([zipAttachment(photos, 'photos.zip')]))).toMatchObject({ action: 'remove', packages: [] });
    const pdfOnly = buildXdm({ documents: [{ content: Buffer.from('%PDF-1.4\n'), fileName: 'CR.PDF', mimeType: 'application/pdf' }], now: NOW });
    expect(decide(mimeMessage([zipAttachment(pdfOnly)]))).toMatchObject({ action: 'remove', packages: [expect.anything()] });
  });

  it('ignores an unreadable zip that does not claim to be XDM, but not one named IHE_XDM.ZIP', () => {
    const garbage = Buffer.from('PK\x03\x04 this is not really a zip');
    expect(decide(mimeMessage([zipAttachment(garbage, 'other.zip')]))).toMatchObject({ action: 'remove' });
    expect(() => decide(mimeMessage([zipAttachment(garbage)]))).toThrow(ZipFormatError);
  });

  it('does not look into encapsulated messages, and leaves encrypted messages alone', () => {
    const inner = mimeMessage([zipAttachment(xdm('fr/LDL-SES_2022.01.xml'))]);
    const forwarded = Buffer.concat([
      Buffer.from('From: a@b.test\r\nContent-Type: multipart/mixed; boundary="o"\r\n\r\n--o\r\nContent-Type: message/rfc822\r\n\r\n'),
      inner,
      Buffer.from('\r\n--o--\r\n'),
    ]);
    expect(decide(forwarded)).toMatchObject({ action: 'remove' });
    const encrypted = Buffer.from('From: a@b.test\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\nMIAG\r\n');
    expect(decide(encrypted)).toEqual({ action: 'opaque' });
  });

  it('throws the typed error of a tampered document, a zip bomb and an XXE in a CDA', () => {
    const files = unzipSync(xdm('fr/BIO-TROD_2024.01_COVID-19.xml'));
    const doc = Buffer.from(files['IHE_XDM/SUBSET01/DOC0001.XML']!);
    doc.write('POSITIF', doc.indexOf('Dépistage')); // same length, other bytes: the metadata no longer matches
    files['IHE_XDM/SUBSET01/DOC0001.XML'] = doc;
    expect(() => decide(mimeMessage([zipAttachment(Buffer.from(zipSync(files)))]))).toThrow(XdmIntegrityError);

    const bomb = Buffer.from(zipSync({ 'IHE_XDM/SUBSET01/METADATA.XML': [new Uint8Array(20 * 1024 * 1024), { level: 9 }] }));
    expect(() => decide(mimeMessage([zipAttachment(bomb, 'x.zip')]))).toThrow(ZipLimitError);

    const xxe = Buffer.from(
      cda('fr/BIO-TROD_2024.01_COVID-19.xml')
        .toString('utf8')
        .replace('<ClinicalDocument', '<!DOCTYPE ClinicalDocument [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<ClinicalDocument'),
    );
    const withXxe = buildXdm({ documents: [{ content: xxe }], now: NOW });
    expect(() => decide(mimeMessage([zipAttachment(withXxe)]))).toThrow(XmlUnsafeError);
  });

  it('applies the limits to XDM archives only: a bomb outside any IHE_XDM folder is not read at all', () => {
    const bomb = Buffer.from(zipSync({ 'data/zeros.bin': [new Uint8Array(20 * 1024 * 1024), { level: 9 }] }));
    expect(decide(mimeMessage([zipAttachment(bomb, 'x.zip')]))).toMatchObject({ action: 'remove', packages: [] });
    const traversal = Buffer.from(zipSync({ 'IHE_XDM/SUBSET01/METADATA.XML': new Uint8Array(3), 'IHE_XDM/aa/evil.xml': new Uint8Array(3) }));
    traversal.write('..', traversal.indexOf('IHE_XDM/aa/') + 8);
    traversal.write('..', traversal.lastIndexOf('IHE_XDM/aa/') + 8);
    expect(() => decide(mimeMessage([zipAttachment(traversal, 'y.zip')]))).toThrow(ZipPathError);
  });

  it('refuses more archives than the limit', () => {
    const archive = zipAttachment(xdm('fr/BIO-TROD_2024.01_COVID-19.xml'));
    expect(() => decide(mimeMessage([archive, archive, archive]), { limits: { maxPackagesPerMessage: 2 } })).toThrow(ZipLimitError);
  });
});

describe('findZipAttachments', () => {
  it('gives IMAP part numbers and decoded content', () => {
    const content = xdm('fr/BIO-TROD_2024.01_COVID-19.xml');
    const raw = mimeMessage([{ filename: 'CR.pdf', type: 'application/pdf', content: Buffer.from('%PDF') }, zipAttachment(content)]);
    const found = findZipAttachments(raw, parseMime(raw));
    expect(found.map((f) => [f.part, f.filename])).toEqual([['3', 'IHE_XDM.zip']]);
    expect(found[0]!.content.equals(content)).toBe(true);
  });
});
