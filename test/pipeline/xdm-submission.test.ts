import { readFileSync } from 'node:fs';
import path from 'node:path';
import { unzipSync, zipSync } from 'fflate';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildXdm } from '../../src/mime/xdm/build.js';
import { DEMO, passwordOf, startOperator, type TestOperator } from '../helpers/operator.js';

/**
 * The structured-documents stage through SMTP submission: a discharge report in an IHE_XDM.ZIP gets
 * X-MSS-CODECDA and X-MSS-INS computed by the server (whatever the sender wrote); a plain message loses
 * forged ones; a document altered after its metadata was written is refused 550 5.6.0.
 */

const CDA = readFileSync(path.join(import.meta.dirname, '../fixtures/cda/fr/BIO-CR-BIO_2024.01_TSH_1.xml'));

function withXdm(zip: Buffer, extraHeaders: string[] = []): string {
  const boundary = 'xdm-boundary-1';
  return [
    `From: ${DEMO.jean}`,
    `To: ${DEMO.claire}`,
    'Subject: XDM/1.0/DDM+Compte rendu de biologie DUPONT Jeanne 19700101',
    `Message-ID: <${Math.random().toString(36).slice(2)}@t>`,
    ...extraHeaders,
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Compte rendu joint.',
    `--${boundary}`,
    'Content-Type: application/zip; name="IHE_XDM.ZIP"',
    'Content-Disposition: attachment; filename="IHE_XDM.ZIP"',
    'Content-Transfer-Encoding: base64',
    '',
    zip.toString('base64').replace(/.{76}/g, '$&\r\n'),
    `--${boundary}--`,
    '',
  ].join('\r\n');
}

/** The package with its first document's bytes changed after the metadata recorded their size and SHA-1. */
function tampered(zip: Buffer): Buffer {
  const entries = unzipSync(zip);
  const name = Object.keys(entries).find((n) => /SUBSET01\/DOC0001\.XML$/i.test(n))!;
  const doc = Buffer.from(entries[name]!);
  doc[doc.indexOf('TSH')] = 'X'.charCodeAt(0);
  entries[name] = doc;
  return Buffer.from(zipSync(entries));
}

describe('structured documents (IHE XDM) at submission', () => {
  let op: TestOperator;
  beforeAll(async () => {
    op = await startOperator();
  });
  afterAll(async () => {
    await op?.stop();
  });

  const send = (raw: string) =>
    nodemailer
      .createTransport({ host: '127.0.0.1', port: op.ports.submission, requireTLS: true, auth: { user: DEMO.jean, pass: passwordOf(op, DEMO.jean) }, tls: { ca: op.ca, servername: 'localhost' } })
      .sendMail({ envelope: { from: DEMO.jean, to: [DEMO.claire] }, raw });

  async function lastHeaders(): Promise<string> {
    const client = new ImapFlow({ host: '127.0.0.1', port: op.ports.imaps, secure: true, auth: { user: DEMO.claire, pass: passwordOf(op, DEMO.claire) }, tls: { ca: op.ca, servername: 'localhost' }, logger: false });
    await client.connect();
    try {
      const box = await client.mailboxOpen('INBOX');
      const msg = await client.fetchOne(String(box.exists), { headers: true });
      return msg ? msg.headers!.toString() : '';
    } finally {
      await client.logout();
    }
  }

  it('computes X-MSS-CODECDA and X-MSS-INS from the CDA, replacing what the sender wrote', async () => {
    const zip = buildXdm({ documents: [{ content: CDA }] });
    const info = await send(withXdm(zip, ['X-MSS-CODECDA: forged', 'X-MSS-INS: O']));
    expect(info.response).toMatch(/^250 /);
    const headers = await lastHeaders();
    expect(headers).toMatch(/^X-MSS-CODECDA: 11502-2\r?$/m);
    expect(headers).toMatch(/^X-MSS-INS: [ON]\r?$/m);
    expect(headers).not.toMatch(/forged/);
  });

  it('removes the headers from a message that carries no XDM archive', async () => {
    const raw = [`From: ${DEMO.jean}`, `To: ${DEMO.claire}`, 'Subject: sans document', 'X-MSS-CODECDA: 11502-2', 'X-MSS-INS: O', '', 'Bonjour.', ''].join('\r\n');
    expect((await send(raw)).response).toMatch(/^250 /);
    const headers = await lastHeaders();
    expect(headers).toMatch(/Subject: sans document/);
    expect(headers).not.toMatch(/X-MSS-CODECDA|X-MSS-INS/i);
  });

  it('refuses a document that does not match its metadata (550 5.6.0), delivering nothing', async () => {
    const before = await lastHeaders();
    const zip = tampered(buildXdm({ documents: [{ content: CDA }] }));
    await expect(send(withXdm(zip))).rejects.toMatchObject({ responseCode: 550, response: expect.stringMatching(/5\.6\.0 .*\[xdm-integrity\]/) });
    expect(await lastHeaders()).toBe(before);
  });
});
