import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { unzipSync, zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { parseCda } from '../../src/mime/cda/cda.js';
import { parseXml } from '../../src/mime/cda/xml.js';
import { buildXdm, hl7ToUtc, MIME_TYPE_SUFFICIENT, uuidOid, xdsTime } from '../../src/mime/xdm/build.js';
import { XdmIntegrityError } from '../../src/mime/xdm/errors.js';
import { readXdm } from '../../src/mime/xdm/read.js';

const cdaFixture = (name: string) => readFileSync(new URL(`../fixtures/cda/${name}`, import.meta.url));
const NOW = new Date('2026-11-25T10:20:30Z');

describe('buildXdm → readXdm round trip', () => {
  const letter = cdaFixture('fr/LDL-SES_2022.01.xml');
  const lab = cdaFixture('fr/BIO-CR-BIO_2024.01_TSH_1.xml');
  const zip = buildXdm({ documents: [{ content: letter }, { content: lab, fileName: 'CR-BIO.XML' }], producer: 'mss tests', now: NOW });

  it('writes the layout of an XDM package', () => {
    const names = Object.keys(unzipSync(zip)).sort();
    expect(names).toEqual(['IHE_XDM/SUBSET01/CR-BIO.XML', 'IHE_XDM/SUBSET01/DOC0001.XML', 'IHE_XDM/SUBSET01/METADATA.XML', 'INDEX.HTM', 'README.TXT']);
  });

  it('reads back, verified, with metadata taken from the CDA documents', () => {
    const pkg = readXdm(zip);
    expect(pkg.warnings).toEqual([]);
    expect(pkg.readme!.text).toContain('Produced by: mss tests');
    const [first, second] = pkg.subsets[0]!.documents;
    expect(first!.content!.equals(letter)).toBe(true);
    expect(second!.content!.equals(lab)).toBe(true);
    expect(first!.entry).toMatchObject({
      id: 'Document01',
      mimeType: 'text/xml',
      uri: 'DOC0001.XML',
      size: letter.length,
      hash: createHash('sha1').update(letter).digest('hex'),
      title: "Lettre de liaison à la sortie de l'établissement de santé",
      typeCode: { code: '11490-0', scheme: '2.16.840.1.113883.6.1', display: "Lettre de liaison à la sortie d'un établissement de soins" },
      formatCode: { code: MIME_TYPE_SUFFICIENT.code },
      confidentialityCodes: [{ code: 'N', scheme: '2.16.840.1.113883.5.25' }],
      patientId: { id: '279035121518989', assigningAuthority: '1.2.250.1.213.1.4.10' },
      uniqueId: '1.2.250.1.213.1.1.1.29.2022.1.1',
      creationTime: '20191203123000',
      languageCode: 'fr-FR',
      sourcePatientInfo: ['PID-3|279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH', 'PID-5|PAT-TROIS^DOMINIQUE^^^^^L', 'PID-7|19790328', 'PID-8|F'],
      authors: [
        {
          person: '801234567897^DAVID^Charles^^^M^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS',
          institutions: ['Hôpital Européen Georges Pompidou^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^1750803447'],
          roles: ['Médecin - Médecine interne (SM)'],
        },
      ],
    });
    expect(second!.entry).toMatchObject({ id: 'Document02', uri: 'CR-BIO.XML', typeCode: { code: '11502-2' } });
    expect(pkg.subsets[0]!.metadata.submissionSet).toMatchObject({
      id: 'SubmissionSet01',
      submissionTime: '20261125102030',
      patientId: { id: '279035121518989' },
      uniqueId: expect.stringMatching(/^2\.25\.\d+$/),
      sourceId: expect.stringMatching(/^2\.25\.\d+$/),
    });
  });

  it('writes an INDEX.HTM that is well-formed XHTML linking every document', () => {
    const index = Buffer.from(unzipSync(zip)['INDEX.HTM']!).toString('utf8');
    const html = parseXml(index);
    expect(html.local).toBe('html');
    expect(index).toContain('href="IHE_XDM/SUBSET01/DOC0001.XML"');
    expect(index).toContain('href="IHE_XDM/SUBSET01/CR-BIO.XML"');
  });

  it('detects a document altered after building', () => {
    const files = unzipSync(zip);
    const doc = Buffer.from(files['IHE_XDM/SUBSET01/CR-BIO.XML']!);
    doc[doc.indexOf('TSH')] = 'X'.charCodeAt(0);
    files['IHE_XDM/SUBSET01/CR-BIO.XML'] = doc;
    const tampered = Buffer.from(zipSync(files));
    expect(() => readXdm(tampered)).toThrow(XdmIntegrityError);
  });
});

describe('buildXdm options', () => {
  const trod = cdaFixture('fr/BIO-TROD_2024.01_COVID-19.xml');

  it('lets explicit metadata win over what the CDA says', () => {
    const zip = buildXdm({
      documents: [
        {
          content: trod,
          title: 'Résultat TROD',
          classCode: { code: '11502-2', scheme: '2.16.840.1.113883.6.1', display: 'CR de biologie' },
          patient: { id: '279035121518989', oid: '1.2.250.1.213.1.4.8' },
          uniqueId: '1.2.3.4.5',
        },
      ],
      submission: { uniqueId: '1.2.3.4.6', sourceId: '1.2.3.4', title: 'Envoi', contentTypeCode: { code: '04', scheme: '1.2.250.1.213.2.2' } },
      now: NOW,
    });
    const pkg = readXdm(zip);
    expect(pkg.subsets[0]!.documents[0]!.entry).toMatchObject({
      title: 'Résultat TROD',
      classCode: { code: '11502-2', display: 'CR de biologie' },
      patientId: { assigningAuthority: '1.2.250.1.213.1.4.8' },
      uniqueId: '1.2.3.4.5',
    });
    expect(pkg.subsets[0]!.metadata.submissionSet).toMatchObject({ uniqueId: '1.2.3.4.6', sourceId: '1.2.3.4', title: 'Envoi', contentTypeCode: { code: '04' } });
  });

  it('packages a non-CDA document with only what it is told', () => {
    const pdf = Buffer.from('%PDF-1.4\n%âãÏÓ\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n', 'latin1');
    const pkg = readXdm(buildXdm({ documents: [{ content: pdf, fileName: 'CR.PDF', mimeType: 'application/pdf', title: 'Compte rendu' }], now: NOW }));
    expect(pkg.subsets[0]!.documents[0]!.entry).toMatchObject({ mimeType: 'application/pdf', title: 'Compte rendu', typeCode: null, patientId: null });
  });

  it('escapes metadata values', () => {
    const pkg = readXdm(buildXdm({ documents: [{ content: trod, title: 'A & B <"quoted">' }], now: NOW }));
    expect(pkg.subsets[0]!.documents[0]!.entry.title).toBe('A & B <"quoted">');
  });

  it('refuses unsafe or repeated file names and an empty package', () => {
    expect(() => buildXdm({ documents: [{ content: trod, fileName: '../x.xml' }] })).toThrow(/unsafe/);
    expect(() => buildXdm({ documents: [{ content: trod, fileName: 'METADATA.XML' }] })).toThrow(/twice/);
    expect(() => buildXdm({ documents: [{ content: trod, fileName: 'A.XML' }, { content: trod, fileName: 'a.xml' }] })).toThrow(/twice/);
    expect(() => buildXdm({ documents: [] })).toThrow(/at least one/);
  });

  it('makes the CDA patient the submission set patient', () => {
    const cda = parseCda(trod);
    const pkg = readXdm(buildXdm({ documents: [{ content: trod }], now: NOW }));
    expect(pkg.subsets[0]!.metadata.submissionSet!.patientId!.id).toBe(cda.patient!.ins!.matricule);
  });
});

describe('time and identifier helpers', () => {
  it('converts HL7 times with a zone to UTC at the same precision', () => {
    expect(hl7ToUtc('20191203133000+0100')).toBe('20191203123000');
    expect(hl7ToUtc('201912030030-0500')).toBe('201912030530');
    expect(hl7ToUtc('2019120300+0100')).toBe('2019120223');
    expect(hl7ToUtc('20191203')).toBe('20191203');
    expect(xdsTime(NOW)).toBe('20261125102030');
  });

  it('makes UUID-based OIDs', () => {
    expect(uuidOid('00000000-0000-0000-0000-000000000010')).toBe('2.25.16');
    expect(uuidOid()).toMatch(/^2\.25\.\d{1,39}$/);
  });
});
