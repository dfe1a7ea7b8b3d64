import { readFileSync } from 'node:fs';
import { unzipSync, zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { headerValue, readHeader } from '../../src/mime/headers.js';
import { parseMime } from '../../src/mime/structure.js';
import { buildXdm } from '../../src/mime/xdm/build.js';
import { Refusal, REFUSALS } from '../../src/pipeline/refusal.js';
import { applyXdmDocuments } from '../../src/pipeline/xdm-documents.js';
import { mimeMessage } from './xdm-test-message.js';

// The stage's own test (src/pipeline/xdm-documents.ts); it lives with the XDM tests.

const cda = (name: string) => readFileSync(new URL(`../fixtures/cda/${name}`, import.meta.url));
const NOW = new Date('2026-11-25T10:20:30Z');
const letterXdm = buildXdm({ documents: [{ content: cda('fr/LDL-SES_2022.01.xml') }], now: NOW });
const archive = (content: Buffer, filename = 'IHE_XDM.zip') => ({ filename, type: 'application/zip', content });

function fields(raw: Buffer, name: string): string[] {
  return readHeader(raw, 0, raw.length)
    .fields.filter((f) => f.name === name.toLowerCase())
    .map((f) => f.value);
}

function refusalOf(f: () => unknown): Refusal {
  try {
    f();
  } catch (err) {
    if (err instanceof Refusal) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('applyXdmDocuments', () => {
  it('sets X-MSS-CODECDA and X-MSS-INS, replacing what the sender wrote, and keeps the subject as it is', () => {
    const raw = mimeMessage([archive(letterXdm)], 'X-MSS-CODECDA: FORGED\r\nX-MSS-INS: N\r\n X-continued\r\n');
    const { message, decision } = applyXdmDocuments(raw);
    expect(decision.action).toBe('set');
    expect(fields(message, 'X-MSS-CODECDA')).toEqual(['11490-0']);
    expect(fields(message, 'X-MSS-INS')).toEqual(['O']);
    expect(message.toString('utf8')).not.toContain('X-continued');
    expect(headerValue(readHeader(message, 0, message.length).fields, 'subject')).toBe('XDM/1.0/DDM+Lettre de liaison PAT-TROIS DOMINIQUE 28/03/1979');
    expect(message.toString('latin1')).toMatch(/^X-MSS-CODECDA: 11490-0\r\nX-MSS-INS: O\r\nFrom: /);
    // The body is untouched and the message parses again.
    expect(message.subarray(message.length - 2000).equals(raw.subarray(raw.length - 2000))).toBe(true);
    expect(parseMime(message).children).toHaveLength(2);
  });

  it('removes both headers from a message without CDA in an XDM archive', () => {
    const raw = Buffer.from('From: a@b.test\r\nX-MSS-CODECDA: 11490-0\r\nX-MSS-INS: O\r\nSubject: hi\r\n\r\nhello\r\n');
    const { message, decision } = applyXdmDocuments(raw);
    expect(decision.action).toBe('remove');
    expect(message.toString()).toBe('From: a@b.test\r\nSubject: hi\r\n\r\nhello\r\n');
  });

  it('returns a message without the headers unchanged (same buffer)', () => {
    const raw = Buffer.from('From: a@b.test\r\nSubject: hi\r\n\r\nhello\r\n');
    expect(applyXdmDocuments(raw).message).toBe(raw);
  });

  it('leaves an encrypted message as the sender wrote it', () => {
    const raw = Buffer.from('From: a@b.test\r\nX-MSS-INS: O\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\r\nMIAG\r\n');
    expect(applyXdmDocuments(raw)).toEqual({ message: raw, decision: { action: 'opaque' } });
  });

  it('follows the message line endings', () => {
    const many = buildXdm({
      documents: ['fr/BIO-TROD_2024.01_COVID-19.xml', 'fr/VSM_1.4_2022.01.xml'].map((n) => ({ content: cda(n) })),
      now: NOW,
    });
    const lf = Buffer.from(mimeMessage([archive(many)]).toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
    const { message } = applyXdmDocuments(lf);
    expect(message.toString('latin1')).toMatch(/^X-MSS-CODECDA: 96173-0,SYNTH\nX-MSS-INS: O\nFrom: /);
  });

  it('folds a long code list after commas', () => {
    const trod = cda('fr/BIO-TROD_2024.01_COVID-19.xml').toString('utf8');
    const codes = Array.from({ length: 12 }, (_, i) => `CODE-NUMBER-${i}`);
    const documents = codes.map((code) => ({ content: Buffer.from(trod.replace('code="96173-0"', `code="${code}"`)) }));
    const { message } = applyXdmDocuments(mimeMessage([archive(buildXdm({ documents, now: NOW }))]));
    const header = message.toString('latin1').slice(0, message.indexOf('X-MSS-INS'));
    expect(header.split('\r\n').every((line) => line.length <= 78)).toBe(true);
    expect(header.split('\r\n').length).toBeGreaterThan(2);
    expect(fields(message, 'X-MSS-CODECDA')[0]!.split(',').map((c) => c.trim())).toEqual(codes);
  });

  it('refuses a tampered document with xdm-integrity, 550 5.6.0, and a detail that names no content', () => {
    const files = unzipSync(letterXdm);
    const doc = Buffer.from(files['IHE_XDM/SUBSET01/DOC0001.XML']!);
    doc.write('PAT-DEUX', doc.indexOf('PAT-TROIS'));
    files['IHE_XDM/SUBSET01/DOC0001.XML'] = doc;
    const refusal = refusalOf(() => applyXdmDocuments(mimeMessage([archive(Buffer.from(zipSync(files)))])));
    expect(refusal.code).toBe('xdm-integrity');
    expect([refusal.smtpCode, REFUSALS['xdm-integrity'].enhanced]).toEqual([550, '5.6.0']);
    expect(refusal.smtpText).toMatch(/^5\.6\.0 .* \/ Document de l'archive IHE_XDM .* \[xdm-integrity\]$/);
    expect(refusal.detail).toBe('hash check failed for document Document01 in IHE_XDM/SUBSET01');
    expect(refusal.detail).not.toContain('PAT');
  });

  it('refuses a zip bomb, an XXE and an unreadable IHE_XDM.ZIP with xdm-refused', () => {
    const bomb = Buffer.from(zipSync({ 'IHE_XDM/SUBSET01/DOC0001.XML': [new Uint8Array(20 * 1024 * 1024), { level: 9 }] }));
    const r1 = refusalOf(() => applyXdmDocuments(mimeMessage([archive(bomb)])));
    expect(r1).toMatchObject({ code: 'xdm-refused', detail: expect.stringMatching(/^zip-limit: maxCompressionRatio \d+ > 200$/) });
    expect(r1.smtpCode).toBe(554);

    const xxe = Buffer.from(
      cda('fr/BIO-TROD_2024.01_COVID-19.xml')
        .toString('utf8')
        .replace('<ClinicalDocument', '<!DOCTYPE ClinicalDocument [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<ClinicalDocument'),
    );
    const r2 = refusalOf(() => applyXdmDocuments(mimeMessage([archive(buildXdm({ documents: [{ content: xxe }], now: NOW }))])));
    expect(r2).toMatchObject({ code: 'xdm-refused', detail: 'xml-unsafe: doctype' });

    const r3 = refusalOf(() => applyXdmDocuments(mimeMessage([archive(Buffer.from('not a zip'))])));
    expect(r3).toMatchObject({ code: 'xdm-refused', detail: 'zip-malformed' });
  });

  it('uses the configured limits', () => {
    const r = refusalOf(() => applyXdmDocuments(mimeMessage([archive(letterXdm)]), { limits: { maxEntryBytes: 1000 } }));
    expect(r).toMatchObject({ code: 'xdm-refused', detail: expect.stringMatching(/^zip-limit: maxEntryBytes \d+ > 1000$/) });
  });
});
