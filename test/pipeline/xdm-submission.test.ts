import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildXdm } from '../../src/mime/xdm/build.js';
import { DEMO, passwordOf, startOperator, type TestOperator } from '../helpers/operator.js';
import { tamperedXdm, xdmMessage } from '../mime/xdm-test-message.js';

/**
 * The structured-documents stage through SMTP submission: a discharge report in an IHE_XDM.ZIP gets
 * X-MSS-CODECDA and X-MSS-INS computed by the server (whatever the sender wrote); a plain message loses
 * forged ones; a document altered after its metadata was written is refused 550 5.6.0.
 */

const CDA = readFileSync(path.join(import.meta.dirname, '../fixtures/cda/fr/BIO-CR-BIO_2024.01_TSH_1.xml'));

const withXdm = (zip: Buffer, extra: string[] = []) =>
  xdmMessage(zip, { from: DEMO.jean, to: DEMO.claire, subject: 'XDM/1.0/DDM+Compte rendu de biologie DUPONT Jeanne 19700101', extra });

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
    const zip = tamperedXdm(buildXdm({ documents: [{ content: CDA }] }));
    await expect(send(withXdm(zip))).rejects.toMatchObject({ responseCode: 550, response: expect.stringMatching(/5\.6\.0 .*\[xdm-integrity\]/) });
    expect(await lastHeaders()).toBe(before);
  });
});
