import { X509Certificate } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CaBundleError, importTrustList, TrustListError, TrustSpace, validateCaBundle } from '../../src/policy/trust-store.js';
import { openTrustStore } from '../../src/store/trust.js';
import type { TrustStore } from '../../src/store/trust-types.js';
import { ENGINES, openTestStore, tempDir, type TestStore } from '../helpers/engines.js';
import { makeCa, makeServerLeaf, type MadeCert } from './certs.js';
import { entry, listXml, WHITELIST } from './lists.js';

let dir: { dir: string; dispose(): void };
let ca: MadeCert;
let otherCa: MadeCert;
let enovacom: MadeCert;
let impostor: MadeCert;

beforeAll(async () => {
  dir = tempDir('mss-trust-');
  ca = await makeCa(dir.dir, 'igc', '/C=FR/O=Test IGC-Sante/CN=Test AC IGC-SANTE ELEMENTAIRE ORGANISATIONS');
  otherCa = await makeCa(dir.dir, 'other', '/O=Elsewhere/CN=Other CA');
  enovacom = await makeServerLeaf(dir.dir, ca, 'enovacom', '/C=FR/ST=Bouches-du-Rhône (13)/O=ENOVACOM/OU=344368557300034/CN=mss.enovacom.fr');
  impostor = await makeServerLeaf(dir.dir, ca, 'impostor', '/C=FR/ST=Paris (75)/O=NOT AN OPERATOR/CN=mx.impostor.test');
});
afterAll(() => dir.dispose());

describe('validateCaBundle', () => {
  it('keeps CA certificates as PEM and refuses anything else', () => {
    const bundle = validateCaBundle(ca.pem + otherCa.pem);
    expect(bundle.certificates.map((c) => c.subject)).toEqual(['CN=Test AC IGC-SANTE ELEMENTAIRE ORGANISATIONS,O=Test IGC-Sante,C=FR', 'CN=Other CA,O=Elsewhere']);
    expect(bundle.warnings).toEqual([]);
    expect(validateCaBundle(ca.pem, new Date(Date.now() + 40 * 86_400_000)).warnings[0]).toMatch(/expired on/);
    expect(() => validateCaBundle(enovacom.pem)).toThrow(/not a CA certificate/);
    expect(() => validateCaBundle('nothing here')).toThrow(CaBundleError);
    expect(() => validateCaBundle('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')).toThrow(CaBundleError);
    expect(() => validateCaBundle(new X509Certificate(ca.pem).raw)).toThrow(/must be PEM/);
  });
});

describe.each(ENGINES)('trust space (%s)', (engine) => {
  let t: TestStore;
  let trust: TrustStore;

  beforeEach(async () => {
    t = await openTestStore(engine);
    trust = openTrustStore(t.store);
  });
  afterEach(() => t.dispose());

  it('migrates to a schema that has the trust tables', async () => {
    expect(await t.store.migrate()).toBeGreaterThanOrEqual(9);
    expect(await trust.activeList()).toBeNull();
    expect(await trust.listDomains()).toEqual([]);
    expect(await trust.lookupDomain('adsea29.mssante.fr')).toEqual([]);
  });

  it('imports the published list, lists it in order and looks domains up without case', async () => {
    const now = new Date(Date.now() + 1000);
    const report = await importTrustList(trust, WHITELIST, { source: 'listeblanche.xml', caBundle: ca.pem, now });
    expect(report).toMatchObject({ replaced: true, skipped: [], caWarnings: [] });
    expect(report.list).toMatchObject({
      generatedAt: Date.parse('2025-03-13T14:54:10Z'),
      importedAt: now.getTime(),
      source: 'listeblanche.xml',
      sha256: '4feaf6d3c43b7977b84fc241a772ce9cc7aa517f067f4e6e27016fdc4f68d5a9',
      domainCount: 20,
    });
    expect(report.list.caBundle).toContain('-----BEGIN CERTIFICATE-----');
    expect(await trust.activeList()).toEqual(report.list);
    const all = await trust.listDomains();
    expect(all).toHaveLength(20);
    expect(all[0]!.name).toBe('adsea29.mssante.fr');
    expect(all[19]!.name).toBe('3c-ccconcorde.mssante.fr');
    expect((await trust.lookupDomain('15-20.MSSANTE.fr')).map((d) => d.operatorDn.split(',')[0])).toEqual([
      'CN=mss.enovacom.fr',
      'CN=smtp-1.sesan.santnet.com',
      'CN=smtp-2.sesan.santnet.com',
      'CN=smtp-1.sante.santnet.com',
      'CN=smtp-2.sante.santnet.com',
    ]);
    expect(await trust.lookupDomain('uc-cmp.mssante.fr')).toMatchObject([{ name: 'UC-CMP.mssante.fr', description: 'UC-CMP' }]);
    // Another connection (another process, for PostgreSQL) sees the same list.
    const other = openTrustStore(await t.openAnother());
    expect(await other.listDomains()).toEqual(all);
  });

  it('replaces the list as a whole; the same list again writes nothing', async () => {
    await importTrustList(trust, WHITELIST, { source: 'first.xml' });
    const again = await importTrustList(trust, WHITELIST, { source: 'again.xml' });
    expect(again.replaced).toBe(false);
    expect(again.list.source).toBe('first.xml');
    const second = await importTrustList(trust, listXml([entry('a.test'), entry('b.test')]), { source: 'second.xml' });
    expect(second.replaced).toBe(true);
    expect((await trust.listDomains()).map((d) => d.name)).toEqual(['a.test', 'b.test']);
    expect(await trust.lookupDomain('adsea29.mssante.fr')).toEqual([]);
    expect((await trust.history(10)).map((l) => [l.source, l.domainCount])).toEqual([
      ['second.xml', 2],
      ['first.xml', 20],
    ]);
  });

  it('keeps the last good list when a new one is invalid, hostile or has a bad CA bundle', async () => {
    await importTrustList(trust, WHITELIST, { source: 'good.xml', caBundle: ca.pem });
    const before = await trust.activeList();
    const attempts: [string | Buffer, object, RegExp][] = [
      ['<ListeBlancheMSSante><unclosed>', {}, /not well-formed XML/],
      [`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>`, {}, /DOCTYPE/],
      [listXml([entry('a.test'), entry('bad..test')]), {}, /1 of 2 Domaine entries are unusable/],
      [WHITELIST, { maxBytes: 5000 }, /over the 5000-byte limit/],
      [listXml([entry('a.test')]), { caBundle: enovacom.pem }, /not a CA certificate/],
    ];
    for (const [xml, options, error] of attempts) {
      await expect(importTrustList(trust, xml, { source: 'bad.xml', ...options })).rejects.toThrow(error);
      await expect(importTrustList(trust, xml, { source: 'bad.xml', ...options })).rejects.toBeInstanceOf(TrustListError);
    }
    expect(await trust.activeList()).toEqual(before);
    expect(await trust.listDomains()).toHaveLength(20);
    // A ratio can let a few bad entries through; they are reported.
    const lenient = await importTrustList(trust, listXml([entry('a.test'), entry('bad..test')]), { source: 'lenient.xml', maxSkippedRatio: 0.5 });
    expect(lenient.skipped).toMatchObject([{ index: 2, name: 'bad..test' }]);
    expect(lenient.list.domainCount).toBe(1);
  });

  it('keeps the CA bundle across imports unless a new one (or none) is given', async () => {
    await importTrustList(trust, WHITELIST, { source: 'a.xml', caBundle: ca.pem });
    const kept = await importTrustList(trust, listXml([entry('a.test')]), { source: 'b.xml' });
    expect(kept.list.caBundle).toBe(validateCaBundle(ca.pem).pem);
    const changed = await importTrustList(trust, listXml([entry('a.test')]), { source: 'c.xml', caBundle: otherCa.pem });
    expect(changed.replaced).toBe(true); // same XML, new CA bundle
    const space = new TrustSpace(trust);
    expect((await space.anchors()).map((c) => c.subject)).toEqual(['CN=Other CA,O=Elsewhere']);
    await importTrustList(trust, listXml([entry('a.test')]), { source: 'd.xml', caBundle: null });
    expect(await space.anchors()).toEqual([]);
  });

  it('checks a peer: domain in the trust space and certificate DN of one of its entries', async () => {
    const space = new TrustSpace(trust);
    expect(await space.checkPeer('15-20.mssante.fr', enovacom.pem)).toMatchObject({ ok: false, reason: 'no-trust-list' });
    await importTrustList(trust, WHITELIST, { source: 'list.xml', caBundle: ca.pem });
    const ok = await space.checkPeer('15-20.MSSante.fr', new X509Certificate(enovacom.pem));
    expect(ok).toMatchObject({ ok: true, entry: { name: '15-20.mssante.fr', description: 'Domaine MSSanté du 15-20' } });
    // The same certificate for a domain another operator serves.
    const wrong = await space.checkPeer('adsea29.mssante.fr', enovacom.pem);
    expect(wrong).toEqual({
      ok: false,
      reason: 'dn-mismatch',
      expected: ['CN=medimail-asip.mipih.fr,OU=318310021300028,O=GIP MIPIH,ST=Haute-Garonne (31),C=FR'],
      presented: 'CN=mss.enovacom.fr,OU=344368557300034,O=ENOVACOM,ST=Bouches-du-Rhône (13),C=FR',
    });
    expect(await space.checkPeer('15-20.mssante.fr', impostor.pem)).toMatchObject({ ok: false, reason: 'dn-mismatch' });
    expect(await space.checkPeer('unknown.mssante.fr', enovacom.pem)).toMatchObject({ ok: false, reason: 'domain-not-in-trust-space' });
    expect((await space.anchors()).map((c) => c.subject)).toEqual(['CN=Test AC IGC-SANTE ELEMENTAIRE ORGANISATIONS,O=Test IGC-Sante,C=FR']);
  });

  it('serialises concurrent imports: one list ends up active, whole', async () => {
    const other = openTrustStore(await t.openAnother());
    const lists = [listXml([entry('x1.test'), entry('x2.test')]), listXml([entry('y1.test'), entry('y2.test'), entry('y3.test')])];
    await Promise.all([importTrustList(trust, lists[0]!, { source: 'x.xml' }), importTrustList(other, lists[1]!, { source: 'y.xml' })]);
    const active = (await trust.activeList())!;
    const names = (await trust.listDomains()).map((d) => d.name);
    expect(names).toEqual(active.source === 'x.xml' ? ['x1.test', 'x2.test'] : ['y1.test', 'y2.test', 'y3.test']);
    expect(active.domainCount).toBe(names.length);
  });
});
