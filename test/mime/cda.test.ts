import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hl7Date, looksLikeCda, NotCdaError, parseCda, type CdaSection } from '../../src/mime/cda/cda.js';
import { toIns } from '../../src/mime/cda/ins.js';
import { narrativeText, type NarrativeNode } from '../../src/mime/cda/narrative.js';
import { XmlUnsafeError } from '../../src/mime/cda/xml.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/cda/${name}`, import.meta.url));
const FR = readdirSync(new URL('../fixtures/cda/fr/', import.meta.url)).sort();
const US = readdirSync(new URL('../fixtures/cda/us/', import.meta.url)).sort();

/** The French fixtures' document codes (CI-SIS volets). */
const FR_CODES: Record<string, string> = {
  'BIO-CR-BIO_2021.01_Microbiologie_V1.xml': '11502-2',
  'BIO-CR-BIO_2024.01_TSH_1.xml': '11502-2',
  'BIO-TROD_2024.01_COVID-19.xml': '96173-0',
  'IMG_CR_IMG_2024.01_CDA-R2-Niveau-1.xml': '18748-4',
  'LDL-SES_2022.01.xml': '11490-0',
  'VSM_1.4_2022.01.xml': 'SYNTH',
};

function cda(body: string, header = ''): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <code code="11490-0" codeSystem="2.16.840.1.113883.6.1" displayName="Lettre de liaison"/>
  <title>Lettre</title>
  <effectiveTime value="20240116151112+0100"/>
  ${header}
  <component><structuredBody><component><section><title>Synthèse</title>${body}</section></component></structuredBody></component>
</ClinicalDocument>`;
}

function patient(id: string, traits = true): string {
  return `<recordTarget><patientRole>${id}<patient>${
    traits
      ? '<name><family qualifier="BR">MARTIN</family><given>JEANNE MARIE</given><given qualifier="BR">JEANNE</given></name><administrativeGenderCode code="F"/><birthTime value="19790328"/>'
      : '<name><family>MARTIN</family></name>'
  }</patient></patientRole></recordTarget>`;
}

function sections(doc: ReturnType<typeof parseCda>): CdaSection[] {
  return doc.body.kind === 'structured' ? doc.body.sections : [];
}

describe('parseCda: French CI-SIS fixtures', () => {
  it.each(FR)('%s: code, title, date, qualified test INS, author and custodian', (name) => {
    const doc = parseCda(fixture(`fr/${name}`));
    expect(doc.code?.code).toBe(FR_CODES[name]);
    expect(doc.title).toBeTruthy();
    expect(doc.effectiveTime).toMatch(/^\d{14}[+-]\d{4}$/);
    expect(doc.patient).toMatchObject({
      ins: { matricule: '279035121518989', oid: '1.2.250.1.213.1.4.10', kind: 'INS-NIR-TEST' },
      name: { family: 'PAT-TROIS', firstGiven: 'DOMINIQUE', givenNames: ['DOMINIQUE MARIE-LOUISE'], usedFamily: 'PAT-TROIS' },
      birthTime: '19790328',
      gender: 'F',
      insQualified: true,
    });
    expect(doc.authors.length).toBeGreaterThan(0);
    expect(doc.authors[0]!.ids[0]).toMatchObject({ root: '1.2.250.1.71.4.2.1' });
    expect(doc.authors[0]!.person?.family).toBeTruthy();
    expect(doc.custodian?.name).toBeTruthy();
  });

  it('reads the discharge letter in detail', () => {
    const doc = parseCda(fixture('fr/LDL-SES_2022.01.xml'));
    expect(doc.code).toEqual({
      code: '11490-0',
      codeSystem: '2.16.840.1.113883.6.1',
      codeSystemName: 'LOINC',
      displayName: "Lettre de liaison à la sortie d'un établissement de soins",
    });
    expect(doc.title).toBe("Lettre de liaison à la sortie de l'établissement de santé");
    expect(doc.effectiveTime).toBe('20191203133000+0100');
    expect(doc.authors[0]).toMatchObject({
      ids: [{ root: '1.2.250.1.71.4.2.1', extension: '801234567897' }],
      person: { prefix: 'M', family: 'DAVID', firstGiven: 'Charles', suffix: 'DR' },
      organisation: { name: 'Hôpital Européen Georges Pompidou', ids: [{ root: '1.2.250.1.71.4.2.2', extension: '1750803447' }] },
    });
    expect(sections(doc).map((s) => s.title)).toEqual([
      'Statut du document',
      "Motif de l'hospitalisation",
      'Synthèse médicale du séjour',
      'Traitements arrêtés durant le séjour',
      'Traitements à la sortie',
      "Résultats d'examens / Autres informations attendus",
      'Suites à donner',
      'Dispositifs médicaux',
      'Allergies identifiées pendant le séjour',
    ]);
    expect(narrativeText(sections(doc).at(-1)!.text)).toBe('Aucune allergie / intolérance identifiée pendant le séjour');
  });

  it('turns a lab result table into a safe table tree', () => {
    const doc = parseCda(fixture('fr/BIO-TROD_2024.01_COVID-19.xml'));
    const table = sections(doc)[0]!.text.find((n): n is Exclude<NarrativeNode, string> => typeof n !== 'string' && n.tag === 'table')!;
    expect(table.children.map((c) => (typeof c === 'string' ? c : c.tag))).toEqual(['thead', 'tbody']);
    expect(narrativeText([table])).toContain('Dépistage SARS-CoV2');
    expect(JSON.stringify(table)).not.toMatch(/"ID"|"id"|xmlns/);
  });

  it('reads the header only when asked', () => {
    const doc = parseCda(fixture('fr/LDL-SES_2022.01.xml'), { readBody: false });
    expect(doc).toMatchObject({ code: { code: '11490-0' }, patient: { insQualified: true }, body: { kind: 'none' } });
  });

  it('describes a level 1 document (non-XML body) without decoding its payload', () => {
    const doc = parseCda(fixture('fr/IMG_CR_IMG_2024.01_CDA-R2-Niveau-1.xml'));
    expect(doc.body).toEqual({ kind: 'non-xml', mediaType: 'application/pdf', representation: 'B64', reference: null });
  });
});

describe('parseCda: US C-CDA fixtures', () => {
  it.each(US)('%s: referral note with no INS', (name) => {
    const doc = parseCda(fixture(`us/${name}`));
    expect(doc.code?.code).toBe('57133-1');
    expect(doc.patient?.ins).toBeNull();
    expect(doc.patient?.insQualified).toBe(false);
    expect(doc.patient?.name?.family).toBeTruthy();
    expect(sections(doc).length).toBeGreaterThan(15);
  });

  it('reads a software author', () => {
    const doc = parseCda(fixture('us/Bates_Jeremy_0_Ambulatory.xml'));
    expect(doc.authors[0]).toMatchObject({ person: null, device: 'Amb EMR v1.0', organisation: { name: 'Neighborhood Physicians Practice' } });
  });
});

describe('parseCda: the patient INS', () => {
  it('takes the official INS-NIR OID, and the first valid INS among the ids', () => {
    const doc = parseCda(cda('', patient('<id root="1.2.3" extension="x"/><id root="1.2.250.1.213.1.4.8" extension="279035121518989"/>')));
    expect(doc.patient).toMatchObject({ ins: { kind: 'INS-NIR', oid: '1.2.250.1.213.1.4.8' }, insQualified: true });
  });

  it('has no INS when the key does not check, the OID is not an INS OID, or the id is the legacy INS-C', () => {
    for (const id of [
      '<id root="1.2.250.1.213.1.4.8" extension="279035121518988"/>',
      '<id root="1.2.250.1.71.4.2.1" extension="279035121518989"/>',
      '<id root="1.2.250.1.213.1.4.2" extension="279035121518989"/>',
    ]) {
      expect(parseCda(cda('', patient(id))).patient?.ins, id).toBeNull();
    }
  });

  it('reads INS-NIA and Corsican matricules', () => {
    expect(toIns('1.2.250.1.213.1.4.9', '253072B07300470')).toMatchObject({ kind: 'INS-NIA', matricule: '253072B07300470' });
    expect(toIns('urn:oid:1.2.250.1.213.1.4.8', ' 253072a07300443 ')).toMatchObject({ matricule: '253072A07300443' });
  });

  it('can refuse the test and demonstration OIDs', () => {
    const xml = cda('', patient('<id root="1.2.250.1.213.1.4.10" extension="279035121518989"/>'));
    expect(parseCda(xml).patient?.ins?.kind).toBe('INS-NIR-TEST');
    expect(parseCda(xml, { acceptTestIns: false }).patient?.ins).toBeNull();
    expect(toIns('1.2.250.1.213.1.4.11', '279035121518989', { acceptTestIns: false })).toBeNull();
  });

  it('is not qualified without the identity traits', () => {
    const doc = parseCda(cda('', patient('<id root="1.2.250.1.213.1.4.8" extension="279035121518989"/>', false)));
    expect(doc.patient).toMatchObject({ ins: { kind: 'INS-NIR' }, insQualified: false });
  });
});

describe('parseCda: narrative blocks', () => {
  const text = `<text>
    <paragraph styleCode="Bold xss">Dose : 2 m<sup>2</sup> <content styleCode="Italics" ID="c1" onclick="alert(1)">matin</content></paragraph>
    <list listType="ordered"><item>un</item> <item>deux<br/>suite</item></list>
    <table border="1"><caption>Résultats</caption><thead><tr><th colspan="2">Examen</th></tr></thead>
      <tbody><tr><td rowspan="0">TSH</td><td colspan="99999">1,2</td></tr></tbody></table>
    <linkHtml href="javascript:alert(1)">voir le site</linkHtml>
    <renderMultiMedia referencedObject="img1"/>
    <footnote>note <script xmlns="http://www.w3.org/1999/xhtml">alert(1)</script></footnote>
  </text>`;

  it('keeps only the allowed elements and checked attributes, text of everything else', () => {
    const [section] = sections(parseCda(cda(text)));
    expect(section!.text).toEqual([
      { tag: 'paragraph', styles: ['Bold'], children: ['Dose : 2 m2 ', { tag: 'content', styles: ['Italics'], children: ['matin'] }] },
      ' ',
      { tag: 'list', ordered: true, children: [{ tag: 'item', children: ['un'] }, { tag: 'item', children: ['deux', { tag: 'br', children: [] }, 'suite'] }] },
      ' ',
      {
        tag: 'table',
        children: [
          { tag: 'caption', children: ['Résultats'] },
          { tag: 'thead', children: [{ tag: 'tr', children: [{ tag: 'th', colspan: 2, children: ['Examen'] }] }] },
          { tag: 'tbody', children: [{ tag: 'tr', children: [{ tag: 'td', children: ['TSH'] }, { tag: 'td', children: ['1,2'] }] }] },
        ],
      },
      ' voir le site note alert(1)',
    ]);
    expect(narrativeText(section!.text)).toBe('Dose : 2 m2 matin\nun\ndeux\nsuite\nRésultats\nExamen\nTSH 1,2\nvoir le site note alert(1)');
  });

  it('reads nested sections', () => {
    const body = '<text>haut</text><component><section><title>Sous-section</title><text>bas</text></section></component>';
    const [section] = sections(parseCda(cda(body)));
    expect(section!.sections).toEqual([{ title: 'Sous-section', code: null, text: ['bas'], sections: [] }]);
  });
});

describe('parseCda: what is not a CDA', () => {
  it('refuses another root element with NotCdaError', () => {
    expect(() => parseCda('<SubmitObjectsRequest/>')).toThrow(NotCdaError);
    expect(() => parseCda('<ClinicalDocument xmlns="urn:example"/>')).toThrow(NotCdaError);
  });

  it('refuses a CDA carrying an external entity', () => {
    const xxe = cda('').replace('<ClinicalDocument', '<!DOCTYPE ClinicalDocument [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<ClinicalDocument');
    expect(() => parseCda(xxe)).toThrow(XmlUnsafeError);
  });

  it('tells a CDA from other XML by its first bytes', () => {
    expect(looksLikeCda(fixture('fr/LDL-SES_2022.01.xml'))).toBe(true);
    expect(looksLikeCda(Buffer.from('<hl7:ClinicalDocument xmlns:hl7="urn:hl7-org:v3">'))).toBe(true);
    expect(looksLikeCda(Buffer.from('<SubmitObjectsRequest/>'))).toBe(false);
  });

  it('formats HL7 dates', () => {
    expect(hl7Date('19790328')).toBe('1979-03-28');
    expect(hl7Date('20191203133000+0100')).toBe('2019-12-03');
    expect(hl7Date('1979')).toBeNull();
  });
});
