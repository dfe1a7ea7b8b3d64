import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { exportTrustList, parseTrustList, TRUST_LIST_NAMESPACE, TrustListError, type TrustDomain } from '../../src/policy/trust-list.js';
import { entry, listXml, WHITELIST } from './lists.js';

describe('parseTrustList', () => {
  it('reads the published excerpt: every entry, in order, with its fields', () => {
    const list = parseTrustList(WHITELIST);
    expect(list.generatedAt).toBe(Date.parse('2025-03-13T14:54:10Z'));
    expect(list.sha256).toBe(createHash('sha256').update(WHITELIST).digest('hex'));
    expect(list.skipped).toEqual([]);
    expect(list.domains).toHaveLength(20);
    expect(list.domains[0]).toEqual({
      name: 'adsea29.mssante.fr',
      description: 'BREST LA SAUVEGARDE',
      operatorDn: 'CN=medimail-asip.mipih.fr,OU=318310021300028,O=GIP MIPIH,ST=Haute-Garonne (31),C=FR',
      responsableContact: '08 10  61 50 50, medimail.diffusion@mipih.fr',
      supportContact: '08 10  61 50 50, medimail.technique@mipih.fr',
      updatedAt: Date.parse('2025-03-13T14:54:10Z'),
    });
    expect(list.domains.filter((d) => d.name === '15-20.mssante.fr').map((d) => d.operatorDn)).toEqual([
      'CN=mss.enovacom.fr,OU=344368557300034,O=ENOVACOM,ST=Bouches-du-Rhône (13),C=FR',
      'CN=smtp-1.sesan.santnet.com,OU=1750048886,O=GIP SESAN,ST=Paris (75),C=FR',
      'CN=smtp-2.sesan.santnet.com,OU=1750048886,O=GIP SESAN,ST=Paris (75),C=FR',
      'CN=smtp-1.sante.santnet.com,OU=341459958900028,O=DEDALUS HEALTHCARE FRANCE,ST=Gironde (33),C=FR',
      'CN=smtp-2.sante.santnet.com,OU=341459958900028,O=DEDALUS HEALTHCARE FRANCE,ST=Gironde (33),C=FR',
    ]);
    expect(list.domains.some((d) => d.name === 'UC-CMP.mssante.fr')).toBe(true);
    expect(list.domains.find((d) => d.name === '2apa.mssante.fr')!.description).toBe("Domaine de messagerie MSSanté pour l'Association 2 APA");
  });

  it('refuses DOCTYPE and entity declarations before parsing', () => {
    const bomb = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>` + listXml([entry('a.test')]).replace(/^<\?xml[^>]*\?>/, '');
    expect(() => parseTrustList(bomb)).toThrow(/DOCTYPE and entity declarations are refused/);
    const external = listXml([entry('a.test')]).replace('?>', '?><!doctype x SYSTEM "file:///etc/passwd">');
    expect(() => parseTrustList(external)).toThrow(TrustListError);
  });

  it('refuses what is too large, not XML, not UTF-8, or not the national format', () => {
    expect(() => parseTrustList(WHITELIST, { maxBytes: 1000 })).toThrow(/over the 1000-byte limit/);
    expect(() => parseTrustList(listXml([entry('a.test')]).replace('</ListeDomaines>', ''))).toThrow(/not well-formed XML \(line 1/);
    expect(() => parseTrustList(Buffer.from([0x3c, 0xff, 0xfe, 0x3e]))).toThrow(/not UTF-8/);
    expect(() => parseTrustList(listXml([entry('a.test')], { root: '<ListeBlancheMSSante>' }))).toThrow(/not in the namespace/);
    expect(() => parseTrustList(listXml([entry('a.test')], { root: '<ListeBlancheMSSante xmlns="urn:other">' }))).toThrow(/found "urn:other"/);
    expect(() => parseTrustList('<?xml version="1.0"?><Other/>')).toThrow(/not <ListeBlancheMSSante>/);
    expect(() => parseTrustList(listXml([entry('a.test')], { date: 'yesterday' }))).toThrow(/DateDeGeneration/);
    expect(() => parseTrustList(listXml([]))).toThrow(/no Domaine entry/);
    expect(() => parseTrustList(listXml(['<Nom>bad name</Nom>']))).toThrow(/none of the 1 Domaine entries is usable/);
  });

  it('accepts a prefixed namespace and standard character references', () => {
    const xml =
      `<?xml version="1.0" encoding="UTF-8"?><lb:ListeBlancheMSSante xmlns:lb="${TRUST_LIST_NAMESPACE}"><lb:DateDeGeneration>2026-11-01T08:00:00Z</lb:DateDeGeneration>` +
      '<lb:ListeDomaines><lb:Domaine><lb:Nom>a.test</lb:Nom><lb:Description>A &amp; B &lt;op&gt;</lb:Description>' +
      '<lb:DNCertificatOperateur>CN=mx.a.test,O=A &amp; B,C=FR</lb:DNCertificatOperateur><lb:DateMAJ>2026-10-01T00:00:00+02:00</lb:DateMAJ></lb:Domaine></lb:ListeDomaines></lb:ListeBlancheMSSante>';
    expect(parseTrustList(xml).domains).toEqual([
      { name: 'a.test', description: 'A & B <op>', operatorDn: 'CN=mx.a.test,O=A & B,C=FR', responsableContact: '', supportContact: '', updatedAt: Date.parse('2026-09-30T22:00:00Z') },
    ]);
  });

  it('skips and reports unusable entries, keeping the others', () => {
    const list = parseTrustList(
      listXml([
        entry('ok.test'),
        entry('bad..test'),
        entry('nodn.test', ''),
        entry('baddn.test', 'NOTATYPE=1'),
        `<Nom>nodate.test</Nom><DNCertificatOperateur>CN=x</DNCertificatOperateur><DateMAJ>soon</DateMAJ>`,
        'just text',
      ]),
    );
    expect(list.domains.map((d) => d.name)).toEqual(['ok.test']);
    expect(list.skipped.map((s) => [s.index, s.name])).toEqual([
      [2, 'bad..test'],
      [3, 'nodn.test'],
      [4, 'baddn.test'],
      [5, 'nodate.test'],
      [6, null],
    ]);
    expect(list.skipped[2]!.reason).toMatch(/DNCertificatOperateur: unknown attribute type "NOTATYPE"/);
  });
});

describe('exportTrustList', () => {
  it('writes the national format, which parses back to the same entries', () => {
    const parsed = parseTrustList(WHITELIST);
    const xml = exportTrustList({ generatedAt: parsed.generatedAt, domains: parsed.domains });
    expect(xml.startsWith(`<?xml version="1.0" encoding="UTF-8"?><ListeBlancheMSSante xmlns="${TRUST_LIST_NAMESPACE}">\n    <DateDeGeneration>2025-03-13T14:54:10Z</DateDeGeneration>`)).toBe(true);
    const back = parseTrustList(xml);
    expect(back.generatedAt).toBe(parsed.generatedAt);
    expect(back.domains).toEqual(parsed.domains);
    // The first entry is written exactly as the authority writes it.
    const source = WHITELIST.toString('utf8');
    const firstEntry = source.slice(source.indexOf('        <Domaine>'), source.indexOf('</Domaine>') + '</Domaine>'.length);
    expect(xml).toContain(firstEntry);
  });

  it('escapes markup and drops characters XML cannot carry', () => {
    const d: TrustDomain = {
      name: 'x.test',
      description: 'A & B <script>\u0001',
      operatorDn: 'CN=x,O=A\\, B',
      responsableContact: '',
      supportContact: '',
      updatedAt: Date.parse('2026-01-01T00:00:00Z'),
    };
    const xml = exportTrustList({ generatedAt: Date.parse('2026-01-02T00:00:00.123Z'), domains: [d] });
    expect(xml).toContain('<Description>A &amp; B &lt;script&gt;</Description>');
    expect(xml).toContain('<DateDeGeneration>2026-01-02T00:00:00Z</DateDeGeneration>');
    expect(parseTrustList(xml).domains).toEqual([{ ...d, description: 'A & B <script>' }]);
  });
});
