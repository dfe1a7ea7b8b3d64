import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headerValue, readHeader } from '../../src/mime/headers.js';
import { buildMdn, parseMdn } from '../../src/mime/mdn.js';
import { parseMime } from '../../src/mime/structure.js';
import { buildXdm } from '../../src/mime/xdm/build.js';
import { openStore } from '../../src/store/open.js';
import type { AuditRow } from '../../src/store/types.js';
import { DEMO, passwordOf, startOperator, type TestOperator } from '../helpers/operator.js';
import { tamperedXdm, xdmMessage } from '../mime/xdm-test-message.js';

/**
 * Automatic MDNs between two mailboxes of one operator, through SMTP submission and IMAP: a processed MDN when
 * Disposition-Notification-To is the Return-Path, none otherwise, processed + dispatched for the Direct option,
 * never one for a message that is itself an MDN; an application's document that cannot be integrated is answered
 * by an error MDN instead of a refusal when the application asked for MDNs.
 */

const CDA = readFileSync(path.join(import.meta.dirname, '../fixtures/cda/fr/BIO-CR-BIO_2024.01_TSH_1.xml'));
const XDM_SUBJECT = 'XDM/1.0/DDM+Compte rendu de biologie DUPONT Jeanne 19700101';

function messageId(): string {
  return `<${randomBytes(8).toString('hex')}@hopital-demo.mssante.test>`;
}

function plain(from: string, to: string, subject: string, extra: string[], id = messageId()): string {
  return [`From: ${from}`, `To: ${to}`, `Subject: ${subject}`, `Message-ID: ${id}`, 'Date: Wed, 25 Nov 2026 10:00:00 +0100', ...extra, '', 'Bonjour.', ''].join('\r\n');
}

describe('automatic MDNs between local mailboxes', () => {
  let op: TestOperator;
  beforeAll(async () => {
    op = await startOperator();
  });
  afterAll(async () => {
    await op?.dispose();
  });

  const send = (user: string, to: string[], raw: string) =>
    nodemailer
      .createTransport({ host: '127.0.0.1', port: op.ports.submission, requireTLS: true, auth: { user, pass: passwordOf(op, user) }, tls: { ca: op.ca, servername: 'localhost' } })
      .sendMail({ envelope: { from: user, to }, raw });

  /** Every message of the user's INBOX after the first `after`, whole. */
  async function inbox(user: string, after = 0): Promise<Buffer[]> {
    const client = new ImapFlow({ host: '127.0.0.1', port: op.ports.imaps, secure: true, auth: { user, pass: passwordOf(op, user) }, tls: { ca: op.ca, servername: 'localhost' }, logger: false });
    await client.connect();
    try {
      const box = await client.mailboxOpen('INBOX');
      if (box.exists <= after) return [];
      const out: Buffer[] = [];
      for await (const msg of client.fetch(`${after + 1}:*`, { source: true })) out.push(msg.source!);
      return out;
    } finally {
      await client.logout();
    }
  }
  const count = async (user: string) => (await inbox(user)).length;

  async function auditRows(): Promise<AuditRow[]> {
    const store = await openStore(op.config);
    try {
      return await store.readAudit(0, 100_000);
    } finally {
      await store.close();
    }
  }

  const header = (raw: Buffer, name: string) => headerValue(readHeader(raw, 0, raw.length).fields, name);

  it('sends a processed MDN when Disposition-Notification-To is the Return-Path', async () => {
    const before = await count(DEMO.jean);
    const id = messageId();
    const info = await send(DEMO.jean, [DEMO.claire], plain(DEMO.jean, DEMO.claire, 'Résultats du bilan', [`Disposition-Notification-To: <${DEMO.jean}>`], id));
    expect(info.response).toMatch(/^250 /);
    const arrived = await inbox(DEMO.jean, before);
    expect(arrived).toHaveLength(1);
    const mdn = parseMdn(arrived[0]!);
    expect(mdn.disposition).toEqual({ actionMode: 'automatic-action', sendingMode: 'mdn-sent-automatically', type: 'processed', modifiers: [] });
    expect(mdn.finalRecipient).toBe(DEMO.claire);
    expect(mdn.originalMessageId).toBe(id);
    expect(mdn.error).toBeNull();
    expect(mdn.finalDestinationDelivery).toBe(false);
    expect(mdn.originalSubject).toBe('Résultats du bilan');
    expect(mdn.message.from).toContain(DEMO.claire);
    expect(header(arrived[0]!, 'disposition-notification-to')).toBeNull();
    // Three parts in the MSSanté order, the original returned whole.
    const root = parseMime(arrived[0]!);
    expect(root.children.map((c) => `${c.type}/${c.subtype}`)).toEqual(['text/plain', 'message/disposition-notification', 'message/rfc822']);
    const rows = await auditRows();
    expect(rows.filter((r) => r.action === 'mdn').at(-1)).toMatchObject({ actor: DEMO.claire, outcome: 'sent' });
  });

  it('sends none when Disposition-Notification-To is not the Return-Path, nor when it is missing', async () => {
    const jeanBefore = await count(DEMO.jean);
    const claireBefore = await count(DEMO.claire);
    await send(DEMO.jean, [DEMO.claire], plain(DEMO.jean, DEMO.claire, 'Autre adresse', [`Disposition-Notification-To: <${DEMO.claire}>`]));
    await send(DEMO.jean, [DEMO.claire], plain(DEMO.jean, DEMO.claire, 'Sans demande', []));
    expect(await count(DEMO.claire)).toBe(claireBefore + 2);
    expect(await count(DEMO.jean)).toBe(jeanBefore);
  });

  it('sends processed then dispatched (with X-DIRECT-FINAL-DESTINATION-DELIVERY) for the Direct option', async () => {
    const before = await count(DEMO.jean);
    const id = messageId();
    await send(
      DEMO.jean,
      [DEMO.claire],
      plain(DEMO.jean, DEMO.claire, 'Direct', [`Disposition-Notification-To: ${DEMO.jean}`, 'Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true'], id),
    );
    const mdns = (await inbox(DEMO.jean, before)).map((raw) => parseMdn(raw));
    expect(mdns.map((m) => [m.disposition.type, m.finalDestinationDelivery])).toEqual([
      ['processed', false],
      ['dispatched', true],
    ]);
    expect(mdns.every((m) => m.originalMessageId === id && m.finalRecipient === DEMO.claire)).toBe(true);
  });

  it('never answers a message that is itself an MDN', async () => {
    const jeanBefore = await count(DEMO.jean);
    const claireBefore = await count(DEMO.claire);
    const original = Buffer.from(plain(DEMO.claire, DEMO.jean, 'Question', [`Disposition-Notification-To: ${DEMO.claire}`]));
    const mdn = buildMdn({
      original,
      from: DEMO.jean,
      to: DEMO.claire,
      finalRecipient: DEMO.jean,
      reportingUa: { name: 'client.test' },
      disposition: 'displayed',
      manual: true,
    });
    // A client's MDN that (wrongly) asks for one back.
    const raw = Buffer.concat([Buffer.from(`Disposition-Notification-To: ${DEMO.jean}\r\n`), mdn.raw]).toString('latin1');
    expect((await send(DEMO.jean, [DEMO.claire], raw)).response).toMatch(/^250 /);
    expect(await count(DEMO.claire)).toBe(claireBefore + 1);
    expect(await count(DEMO.jean)).toBe(jeanBefore);
  });

  it("answers an application's document that cannot be integrated with an error MDN, delivering nothing", async () => {
    const dpiBefore = await count(DEMO.dpi);
    const claireBefore = await count(DEMO.claire);
    const zip = tamperedXdm(buildXdm({ documents: [{ content: CDA }] }));
    const info = await send(DEMO.dpi, [DEMO.claire], xdmMessage(zip, { from: DEMO.dpi, to: DEMO.claire, subject: XDM_SUBJECT, extra: [`Disposition-Notification-To: ${DEMO.dpi}`] }));
    expect(info.response).toMatch(/^250 /);
    expect(await count(DEMO.claire)).toBe(claireBefore);
    const arrived = await inbox(DEMO.dpi, dpiBefore);
    expect(arrived).toHaveLength(1);
    const mdn = parseMdn(arrived[0]!);
    expect(mdn.disposition).toMatchObject({ type: 'processed', modifiers: ['error'] });
    expect(mdn.error).toMatchObject({ code: '207' });
    expect(mdn.finalRecipient).toBe(DEMO.claire);
    expect(mdn.message.subject).toBe(`[KO Intégration système !][207] ${XDM_SUBJECT}`);
    // The original and its attachment are returned.
    const root = parseMime(arrived[0]!);
    expect(root.children.map((c) => `${c.type}/${c.subtype}`)).toEqual(['text/plain', 'message/disposition-notification', 'message/rfc822', 'application/zip']);
    const rows = await auditRows();
    expect(rows.filter((r) => r.action === 'refuse').at(-1)).toMatchObject({ actor: DEMO.dpi, outcome: 'xdm-integrity' });
    expect(rows.filter((r) => r.action === 'mdn').at(-1)).toMatchObject({ actor: 'MAILER-DAEMON@hopital-demo.mssante.test', outcome: 'sent' });
  });

  it('still refuses over SMTP without an MDN request, or from a practitioner (550 5.6.0)', async () => {
    const dpiBefore = await count(DEMO.dpi);
    const zip = tamperedXdm(buildXdm({ documents: [{ content: CDA }] }));
    await expect(send(DEMO.dpi, [DEMO.claire], xdmMessage(zip, { from: DEMO.dpi, to: DEMO.claire, subject: XDM_SUBJECT, extra: [] }))).rejects.toMatchObject({ responseCode: 550 });
    await expect(send(DEMO.jean, [DEMO.claire], xdmMessage(zip, { from: DEMO.jean, to: DEMO.claire, subject: XDM_SUBJECT, extra: [`Disposition-Notification-To: ${DEMO.jean}`] }))).rejects.toMatchObject({
      responseCode: 550,
      response: expect.stringMatching(/\[xdm-integrity\]/),
    });
    expect(await count(DEMO.dpi)).toBe(dpiBefore);
  });
});
