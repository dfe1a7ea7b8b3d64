import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import Database from 'better-sqlite3';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMailbox } from '../../src/accounts/mailboxes.js';
import { Keyring, SealError } from '../../src/crypto/seal.js';
import { openPatientDocumentStore } from '../../src/store/patient-documents.js';
import { SealedMail } from '../../src/store/sealed-mail.js';
import type { MailboxRow, Store } from '../../src/store/types.js';
import { DocumentSpace, DocumentSpaceError, groupByKind, renderDocumentSpace, type DocumentSource } from '../../src/webmail/documents.js';
import { html } from '../../src/webmail/html.js';
import { ENGINES, openTestStore, type TestStore } from '../helpers/engines.js';

const cda = (name: string) => readFileSync(new URL(`../fixtures/cda/fr/${name}`, import.meta.url));
const LDL = cda('LDL-SES_2022.01.xml');
const TSH = cda('BIO-CR-BIO_2024.01_TSH_1.xml');
const MICRO = cda('BIO-CR-BIO_2021.01_Microbiologie_V1.xml');
const IMG = cda('IMG_CR_IMG_2024.01_CDA-R2-Niveau-1.xml');
const VSM = cda('VSM_1.4_2022.01.xml');

function synthetic(code: string, codeSystem: string, title: string, effectiveTime: string): Buffer {
  return Buffer.from(
    `<ClinicalDocument xmlns="urn:hl7-org:v3"><code code="${code}" codeSystem="${codeSystem}"/><title>${title}</title><effectiveTime value="${effectiveTime}"/></ClinicalDocument>`,
  );
}
const PRESCRIPTION = synthetic('57833-6', '2.16.840.1.113883.6.1', 'Ordonnance', '20240301');
const OTHER = synthetic('X-UNKNOWN', '1.2.3.4', 'Divers', '20240302');

const src = (uid: number, documentId = 'SUBSET01/Document01', folderId = 1): DocumentSource => ({ folderId, uid, documentId });
const xmlDoc = (xml: Buffer, name = 'DOC0001.XML') => ({ xml, name, mediaType: 'text/xml' });

describe.each(ENGINES)('DocumentSpace (%s)', (engine) => {
  let t: TestStore;
  let store: Store;
  let keyring: Keyring;
  let mail: SealedMail;
  let patient: MailboxRow;
  let other: MailboxRow;
  let clock: number;
  let space: DocumentSpace;

  beforeEach(async () => {
    t = await openTestStore(engine);
    store = t.store;
    keyring = new Keyring(randomBytes(32));
    mail = new SealedMail(store, keyring);
    patient = await createMailbox(store, keyring, { address: '279035121518989@patient.mssante.test', type: 'PATIENT' });
    other = await createMailbox(store, keyring, { address: '295109912611193@patient.mssante.test', type: 'PATIENT' });
    clock = 1_700_000_000_000;
    space = new DocumentSpace({ store, mail, now: () => clock++ });
  });
  afterEach(() => t.dispose());

  it('saves a CDA document once per (message, document), and gives it back whole', async () => {
    const id = await space.save(patient, src(7), xmlDoc(LDL, 'LDL.XML'));
    expect(await space.save(patient, src(7), xmlDoc(LDL, 'LDL.XML'))).toBe(id);
    const second = await space.save(patient, src(7, 'SUBSET01/Document02'), xmlDoc(LDL));
    const third = await space.save(patient, src(8), xmlDoc(LDL));
    const fourth = await space.save(patient, src(7, 'SUBSET01/Document01', 2), xmlDoc(LDL));
    expect(new Set([id, second, third, fourth]).size).toBe(4);
    expect(await openPatientDocumentStore(store).count(patient.id)).toBe(4);

    const doc = await space.get(patient, id);
    expect(doc).toMatchObject({
      id,
      kind: 'report',
      title: "Lettre de liaison à la sortie de l'établissement de santé",
      name: 'LDL.XML',
      mediaType: 'text/xml',
      code: '11490-0',
      codeSystem: '2.16.840.1.113883.6.1',
      date: '20191203133000+0100',
      author: 'Charles DAVID',
      organisation: 'Hôpital Européen Georges Pompidou',
      size: LDL.length,
      savedAt: 1_700_000_000_000,
      source: { folderId: 1, uid: 7, documentId: 'SUBSET01/Document01' },
    });
    expect(doc!.xml.equals(LDL)).toBe(true);
    expect(await space.isSaved(patient, src(7))).toBe(true);
    expect(await space.isSaved(patient, src(9))).toBe(false);
  });

  it('lists by kind (lab, report, imaging, prescription, other), newest first within a kind', async () => {
    await space.save(patient, src(1), xmlDoc(OTHER));
    await space.save(patient, src(2), xmlDoc(LDL));
    await space.save(patient, src(3), xmlDoc(MICRO));
    await space.save(patient, src(4), xmlDoc(IMG));
    await space.save(patient, src(5), xmlDoc(TSH));
    await space.save(patient, src(6), xmlDoc(PRESCRIPTION));
    await space.save(patient, src(7), xmlDoc(VSM));
    const list = await space.list(patient);
    expect(list.map((d) => [d.kind, d.date?.slice(0, 8), d.source.uid])).toEqual([
      ['lab', '20210401', 5],
      ['lab', '20210104', 3],
      ['report', '20200312', 7],
      ['report', '20191203', 2],
      ['imaging', '20210108', 4],
      ['prescription', '20240301', 6],
      ['other', '20240302', 1],
    ]);
    expect(groupByKind(list).map((g) => [g.kind, g.label.fr, g.documents.length])).toEqual([
      ['lab', "Résultats d'analyses", 2],
      ['report', 'Comptes rendus', 2],
      ['imaging', 'Imagerie', 1],
      ['prescription', 'Ordonnances', 1],
      ['other', 'Autres documents', 1],
    ]);
    expect(list.some((d) => 'xml' in d)).toBe(false);
  });

  it('keeps each patient to their own documents', async () => {
    const id = await space.save(patient, src(1), xmlDoc(LDL));
    expect(await space.get(other, id)).toBeNull();
    expect(await space.list(other)).toEqual([]);
    expect(await space.remove(other, id)).toBe(false);
    expect(await space.get(patient, id)).not.toBeNull();
    // The same message coordinates in another mailbox are another source.
    const theirs = await space.save(other, src(1), xmlDoc(LDL));
    expect(theirs).not.toBe(id);
    expect(space.sourceKey(patient, src(1))).not.toBe(space.sourceKey(other, src(1)));
  });

  it('removes one document, or all of a mailbox', async () => {
    const a = await space.save(patient, src(1), xmlDoc(LDL));
    await space.save(patient, src(2), xmlDoc(TSH));
    await space.save(other, src(1), xmlDoc(TSH));
    expect(await space.remove(patient, a)).toBe(true);
    expect(await space.remove(patient, a)).toBe(false);
    expect(await space.get(patient, a)).toBeNull();
    expect(await space.removeAll(patient)).toBe(1);
    expect(await space.list(patient)).toEqual([]);
    expect(await space.list(other)).toHaveLength(1);
    expect(await space.get(patient, -1)).toBeNull();
    expect(await space.remove(patient, 1.5)).toBe(false);
  });

  it('refuses what is not a readable CDA document, bad sources and names, and mailboxes that are not a patient', async () => {
    const code = async (p: Promise<unknown>) => {
      try {
        await p;
      } catch (err) {
        expect(err).toBeInstanceOf(DocumentSpaceError);
        const e = err as DocumentSpaceError;
        expect(e.fr.length).toBeGreaterThan(10);
        expect(e.en.length).toBeGreaterThan(10);
        return e.code;
      }
      return 'saved';
    };
    expect(await code(space.save(patient, src(1), xmlDoc(Buffer.from('%PDF-1.7'))))).toBe('not-cda');
    expect(await code(space.save(patient, src(1), xmlDoc(Buffer.from('<html><body/></html>'))))).toBe('not-cda');
    expect(await code(space.save(patient, src(1), xmlDoc(Buffer.from('<!DOCTYPE x><ClinicalDocument xmlns="urn:hl7-org:v3"/>'))))).toBe('not-cda');
    expect(await code(space.save(patient, { folderId: 0, uid: 1, documentId: 'd' }, xmlDoc(LDL)))).toBe('invalid');
    expect(await code(space.save(patient, { folderId: 1, uid: 1.5, documentId: 'd' }, xmlDoc(LDL)))).toBe('invalid');
    expect(await code(space.save(patient, { folderId: 1, uid: 1, documentId: '' }, xmlDoc(LDL)))).toBe('invalid');
    expect(await code(space.save(patient, { folderId: 1, uid: 1, documentId: 'd'.repeat(257) }, xmlDoc(LDL)))).toBe('invalid');
    expect(await code(space.save(patient, { folderId: 1, uid: 1, documentId: 'd'.repeat(256) }, xmlDoc(LDL)))).toBe('saved');
    expect(await code(space.save(patient, src(2), { xml: LDL, name: '   ', mediaType: 'text/xml' }))).toBe('invalid');
    expect(await code(space.save(patient, src(2), { xml: LDL, name: 'a.xml', mediaType: 'text/xml"><script>' }))).toBe('invalid');
    const clinician = await createMailbox(store, keyring, { address: 'dr.martin@hopital.test', type: 'PER' });
    expect(await code(space.save(clinician, src(1), xmlDoc(LDL)))).toBe('not-patient');
    expect(await space.list(patient)).toHaveLength(1);
  });

  it('file names are kept without control characters or path separators', async () => {
    const id = await space.save(patient, src(1), { xml: LDL, name: '../..\\etc/pass\u0007wd.xml', mediaType: 'Text/XML' });
    expect(await space.get(patient, id)).toMatchObject({ name: '.._.._etc_pass_wd.xml', mediaType: 'text/xml' });
    const other = await space.save(patient, src(2), { xml: LDL, name: 'CR.XML', mediaType: 'application/xml; charset=UTF-8' });
    expect(await space.get(patient, other)).toMatchObject({ name: 'CR.XML', mediaType: 'application/xml' });
  });

  it(`refuses a document over the size limit`, async () => {
    const limited = new DocumentSpace({ store, mail, limits: { maxBytes: LDL.length } });
    expect(await limited.save(patient, src(1), xmlDoc(LDL))).toBeGreaterThan(0);
    await expect(limited.save(patient, src(2), xmlDoc(Buffer.concat([LDL, Buffer.from(' ')])))).rejects.toMatchObject({ code: 'too-large' });
    expect(limited.limits).toEqual({ maxBytes: LDL.length, maxDocuments: 2000 });
  });

  it('refuses a save past the documents limit, but finds one already saved', async () => {
    const limited = new DocumentSpace({ store, mail, limits: { maxDocuments: 2 } });
    const first = await limited.save(patient, src(1), xmlDoc(LDL));
    await limited.save(patient, src(2), xmlDoc(TSH));
    await expect(limited.save(patient, src(3), xmlDoc(IMG))).rejects.toMatchObject({ code: 'full' });
    expect(await limited.save(patient, src(1), xmlDoc(LDL))).toBe(first);
    expect(await limited.save(other, src(3), xmlDoc(IMG))).toBeGreaterThan(0);
    await limited.remove(patient, first);
    expect(await limited.save(patient, src(3), xmlDoc(IMG))).toBeGreaterThan(0);
  });

  it('concurrent saves of the same document make one row, and the limit holds under concurrency', async () => {
    const ids = await Promise.all(Array.from({ length: 6 }, () => space.save(patient, src(1), xmlDoc(LDL))));
    expect(new Set(ids).size).toBe(1);
    const limited = new DocumentSpace({ store, mail, limits: { maxDocuments: 4 } });
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => limited.save(patient, src(10 + i), xmlDoc(TSH))));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.code)).toEqual(Array(5).fill('full'));
    expect(await openPatientDocumentStore(store).count(patient.id)).toBe(4);
  });

  it('keeps nothing readable at rest, and a sealed value moved to another row does not open', async () => {
    const a = await space.save(patient, src(1), xmlDoc(LDL));
    const b = await space.save(patient, src(2), xmlDoc(TSH));
    const rows = await raw(t, engine, 'SELECT id, source_key, details, content FROM patient_documents ORDER BY id');
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      const bytes = Buffer.concat([row.details, row.content]).toString('latin1');
      for (const word of ['PAT-TROIS', 'DAVID', 'Pompidou', 'ClinicalDocument', '11490-0', 'SUBSET01', 'Lettre']) expect(bytes).not.toContain(word);
      expect(row.source_key).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(row.source_key).not.toContain('SUBSET01');
    }
    // Swap the sealed content of the two rows: neither opens any more.
    await raw(t, engine, 'UPDATE patient_documents SET content = (SELECT content FROM patient_documents WHERE id = ' + b + ') WHERE id = ' + a);
    await expect(space.get(patient, a)).rejects.toBeInstanceOf(SealError);
    // Details moved into the content column do not open either.
    await raw(t, engine, 'UPDATE patient_documents SET content = details WHERE id = ' + b);
    await expect(space.get(patient, b)).rejects.toBeInstanceOf(SealError);
  });

  it('renders the document space grouped by kind, escaped, with the page links and actions', async () => {
    await space.save(patient, src(1), xmlDoc(LDL));
    await space.save(patient, src(2), xmlDoc(PRESCRIPTION));
    const list = await space.list(patient);
    const out = renderDocumentSpace(list, 'fr', {
      href: (d) => `/documents/${d.id}?a=1&b=2`,
      actions: (d) => (d.kind === 'prescription' ? html`<button form="del-${d.id}">Supprimer</button>` : null),
    }).text;
    expect(out).toBe(
      '<section class="documents-group"><h2>Comptes rendus</h2><ul class="documents-list"><li class="documents-item">' +
        `<a href="/documents/${list[0]!.id}?a=1&amp;b=2">Lettre de liaison à la sortie de l&#39;établissement de santé</a> ` +
        '<span class="documents-meta">03/12/2019 · par Charles DAVID, Hôpital Européen Georges Pompidou</span></li></ul></section>' +
        '<section class="documents-group"><h2>Ordonnances</h2><ul class="documents-list"><li class="documents-item">' +
        `<a href="/documents/${list[1]!.id}?a=1&amp;b=2">Ordonnance</a> <span class="documents-meta">01/03/2024</span> ` +
        `<span class="documents-actions"><button form="del-${list[1]!.id}">Supprimer</button></span></li></ul></section>`,
    );
    expect(renderDocumentSpace([], 'en', { href: () => '/' }).text).toContain('You have not saved any document yet.');
  });
});

/** Rows read (or changed) behind the port's back, as an attacker with the database would. */
async function raw(t: TestStore, engine: string, sql: string): Promise<{ source_key: string; details: Buffer; content: Buffer }[]> {
  if (engine === 'postgres') {
    const client = new pg.Client({ connectionString: t.url });
    await client.connect();
    try {
      return (await client.query(sql)).rows;
    } finally {
      await client.end();
    }
  }
  const db = new Database(path.join(t.dir, 'mss.sqlite'));
  try {
    if (sql.startsWith('SELECT')) return db.prepare(sql).all() as { source_key: string; details: Buffer; content: Buffer }[];
    db.prepare(sql).run();
    return [];
  } finally {
    db.close();
  }
}
