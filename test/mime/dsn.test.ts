import { readFileSync } from 'node:fs';
import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { buildDsn, DsnParseError, parseDsn, type DsnInput } from '../../src/mime/dsn.js';
import { headerValue, readHeader } from '../../src/mime/headers.js';
import { paramValue } from '../../src/mime/params.js';
import { parseMime } from '../../src/mime/structure.js';
import type { MimeNode } from '../../src/mime/types.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/email/${name}`, import.meta.url));
const crlf = (s: string) => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'utf8');
const body = (raw: Buffer, node: MimeNode) => raw.subarray(node.bodyStart, node.bodyEnd).toString('utf8');

const ORIGINAL = crlf(
  [
    'From: Dr Jean Dupont <jean.dupont@hopital-a.mssante.test>',
    'To: <claire.martin@clinique-b.mssante.test>, <paul.durand@clinique-b.mssante.test>',
    'Subject: Résultats du bilan',
    'Message-ID: <orig-2@hopital-a.mssante.test>',
    'Date: Mon, 05 Jan 2026 10:00:00 +0100',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Données de santé : à ne pas renvoyer en entier.',
    '',
  ].join('\n'),
);

const failed: DsnInput = {
  reportingMta: 'mss.hopital-a.mssante.test',
  domain: 'hopital-a.mssante.test',
  to: 'jean.dupont@hopital-a.mssante.test',
  original: ORIGINAL,
  arrivalDate: new Date('2026-01-05T09:00:00Z'),
  originalEnvelopeId: 'Q-42',
  recipients: [
    {
      finalRecipient: 'claire.martin@clinique-b.mssante.test',
      originalRecipient: 'claire.martin@clinique-b.mssante.test',
      action: 'failed',
      status: '5.1.1',
      diagnostic: '550 5.1.1 Destinataire inconnu',
      remoteMta: 'mx.clinique-b.mssante.test',
      lastAttemptDate: new Date('2026-01-10T09:00:00Z'),
    },
  ],
  date: new Date('2026-01-10T09:00:05Z'),
  messageId: '<dsn-1@hopital-a.mssante.test>',
};

describe('buildDsn', () => {
  it('builds a RFC 3464 failure report with every required field', () => {
    const dsn = buildDsn(failed);
    const root = parseMime(dsn.raw);
    expect(`${root.type}/${root.subtype}`).toBe('multipart/report');
    expect(paramValue(root.params, 'report-type')).toBe('delivery-status');
    expect(root.children.map((c) => `${c.type}/${c.subtype}`)).toEqual(['text/plain', 'message/delivery-status', 'text/rfc822-headers']);
    expect(body(dsn.raw, root.children[1]!)).toBe(
      [
        'Reporting-MTA: dns; mss.hopital-a.mssante.test',
        'Original-Envelope-Id: Q-42',
        'Arrival-Date: Mon, 05 Jan 2026 09:00:00 +0000',
        '',
        'Original-Recipient: rfc822; claire.martin@clinique-b.mssante.test',
        'Final-Recipient: rfc822; claire.martin@clinique-b.mssante.test',
        'Action: failed',
        'Status: 5.1.1',
        'Remote-MTA: dns; mx.clinique-b.mssante.test',
        'Diagnostic-Code: smtp; 550 5.1.1 Destinataire inconnu',
        'Last-Attempt-Date: Sat, 10 Jan 2026 09:00:00 +0000',
        '',
      ].join('\r\n'),
    );
    // Headers only by default: the health data of the body does not travel back.
    const returned = body(dsn.raw, root.children[2]!);
    expect(returned).toContain('Message-ID: <orig-2@hopital-a.mssante.test>');
    expect(returned).not.toContain('Données de santé');
    expect(root.children[2]!.encoding).toBe('8bit');

    const head = readHeader(dsn.raw, 0, dsn.raw.length).fields;
    expect(headerValue(head, 'from')).toBe('Mail Delivery System <MAILER-DAEMON@hopital-a.mssante.test>');
    expect(headerValue(head, 'to')).toBe('jean.dupont@hopital-a.mssante.test');
    expect(headerValue(head, 'auto-submitted')).toBe('auto-replied');
    expect(headerValue(head, 'in-reply-to')).toBe('<orig-2@hopital-a.mssante.test>');
    expect(dsn.envelope).toEqual({ from: '', to: ['jean.dupont@hopital-a.mssante.test'] });
    expect(dsn.subject).toBe('Message non remis / Undelivered message : Résultats du bilan');
    expect(dsn.raw.toString('latin1')).not.toMatch(/[^\r]\n/);
  });

  it('round-trips through parseDsn', () => {
    expect(parseDsn(buildDsn(failed).raw)).toEqual({
      message: {
        messageId: '<dsn-1@hopital-a.mssante.test>',
        subject: 'Message non remis / Undelivered message : Résultats du bilan',
        from: 'MAILER-DAEMON@hopital-a.mssante.test',
        to: ['jean.dupont@hopital-a.mssante.test'],
        inReplyTo: '<orig-2@hopital-a.mssante.test>',
        date: 'Sat, 10 Jan 2026 09:00:05 +0000',
      },
      reportingMta: 'mss.hopital-a.mssante.test',
      arrivalDate: 'Mon, 05 Jan 2026 09:00:00 +0000',
      originalEnvelopeId: 'Q-42',
      originalMessageId: '<orig-2@hopital-a.mssante.test>',
      originalSubject: 'Résultats du bilan',
      recipients: [
        {
          finalRecipient: 'claire.martin@clinique-b.mssante.test',
          originalRecipient: 'claire.martin@clinique-b.mssante.test',
          action: 'failed',
          status: '5.1.1',
          diagnostic: '550 5.1.1 Destinataire inconnu',
          remoteMta: 'mx.clinique-b.mssante.test',
          lastAttemptDate: 'Sat, 10 Jan 2026 09:00:00 +0000',
          willRetryUntil: null,
          fields: expect.any(Array),
        },
      ],
      perMessageFields: [
        ['reporting-mta', 'dns; mss.hopital-a.mssante.test'],
        ['original-envelope-id', 'Q-42'],
        ['arrival-date', 'Mon, 05 Jan 2026 09:00:00 +0000'],
      ],
    });
  });

  it('reads in mailparser, with the explanation in French and English', async () => {
    const dsn = buildDsn({
      ...failed,
      explanation: { fr: "Le domaine n'est pas dans l'espace de confiance.", en: 'The domain is not in the trust space.' },
    });
    const mail = await simpleParser(dsn.raw);
    expect(mail.subject).toBe(dsn.subject);
    expect(mail.from?.value[0]).toMatchObject({ address: 'MAILER-DAEMON@hopital-a.mssante.test', name: 'Mail Delivery System' });
    expect(mail.text).toContain('claire.martin@clinique-b.mssante.test : non remis ; nous avons cessé les tentatives (statut 5.1.1).');
    expect(mail.text).toContain('claire.martin@clinique-b.mssante.test: not delivered; we have stopped trying (status 5.1.1).');
    expect(mail.text).toContain('Réponse du serveur mx.clinique-b.mssante.test : 550 5.1.1 Destinataire inconnu');
    expect(mail.text).toContain("Le domaine n'est pas dans l'espace de confiance.");
    expect(mail.text).toContain('The domain is not in the trust space.');
    // mailparser shows message/delivery-status inline, after the human text; the returned header is an attachment.
    expect(mail.text).toContain('Final-Recipient: rfc822; claire.martin@clinique-b.mssante.test\nAction: failed\nStatus: 5.1.1');
    expect(mail.attachments.map((a) => a.contentType)).toEqual(['text/rfc822-headers']);
  });

  it('reports a delay with Will-Retry-Until, several recipients, and the whole original on request', () => {
    const dsn = buildDsn({
      ...failed,
      returnContent: 'full',
      recipients: [
        { finalRecipient: 'claire.martin@clinique-b.mssante.test', action: 'delayed', status: '4.4.1', willRetryUntil: new Date('2026-01-10T09:00:00Z') },
        { finalRecipient: 'paul.durand@clinique-b.mssante.test', action: 'delivered', status: '2.0.0' },
      ],
    });
    expect(dsn.subject).toBe('Remise retardée / Delivery delayed : Résultats du bilan');
    const root = parseMime(dsn.raw);
    expect(`${root.children[2]!.type}/${root.children[2]!.subtype}`).toBe('message/rfc822');
    expect(body(dsn.raw, root.children[2]!)).toContain('Données de santé');
    const parsed = parseDsn(dsn.raw);
    expect(parsed.recipients.map((r) => [r.finalRecipient, r.action, r.status, r.willRetryUntil])).toEqual([
      ['claire.martin@clinique-b.mssante.test', 'delayed', '4.4.1', 'Sat, 10 Jan 2026 09:00:00 +0000'],
      ['paul.durand@clinique-b.mssante.test', 'delivered', '2.0.0', null],
    ]);
    expect(body(dsn.raw, root.children[0]!)).toContain("Nouvelles tentatives jusqu'au 2026-01-10T09:00:00.000Z.");
  });

  it('refuses a status that does not fit its action, and an empty report', () => {
    const one = (r: Partial<DsnInput['recipients'][number]>) => buildDsn({ ...failed, recipients: [{ ...failed.recipients[0]!, ...r }] });
    expect(() => one({ action: 'delayed', status: '5.4.1' })).toThrow(/does not fit/);
    expect(() => one({ action: 'delivered', status: '4.0.0' })).toThrow(/does not fit/);
    expect(() => one({ status: '5.1' })).toThrow(/x\.y\.z/);
    expect(() => one({ willRetryUntil: new Date() })).toThrow(/delayed recipient only/);
    expect(one({ status: '4.4.7' }).raw.toString()).toContain('Status: 4.4.7'); // failed after the maximum age
    expect(() => buildDsn({ ...failed, recipients: [] })).toThrow(/at least one/);
    expect(() => buildDsn({ ...failed, to: '' })).toThrow(RangeError);
  });
});

describe('parseDsn', () => {
  it('reads the Direct reference implementation sample (DirectProject/nhin-d DSNMessage.txt)', () => {
    expect(parseDsn(fixture('DSNMessage.txt'))).toMatchObject({
      reportingMta: 'Example.ORG',
      originalEnvelopeId: 'QQ314159',
      originalMessageId: '<9501051053.aa04167@IETF.CNR I.Reston.VA.US>',
      message: { subject: 'Delivery Notification (success) for Bob@Example.COM', from: 'externUser1@starugh-stateline.com' },
      recipients: [
        {
          finalRecipient: 'Carol@Ivory.EDU',
          originalRecipient: 'Carol@Ivory.EDU',
          action: 'failed',
          status: '5.0.0',
          diagnostic: '550 error - no such recipient',
        },
      ],
    });
  });

  it('tolerates a missing per-message group and a status comment; refuses what is not a DSN', () => {
    const raw = crlf(
      'Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\n\ntext\n--b\nContent-Type: message/delivery-status\n\n' +
        'Final-Recipient: a@b.test\nAction: Failed\nStatus: 5.2.2 (mailbox full)\n--b--\n',
    );
    expect(parseDsn(raw)).toMatchObject({ reportingMta: null, originalMessageId: null, recipients: [{ finalRecipient: 'a@b.test', action: 'failed', status: '5.2.2' }] });
    expect(() => parseDsn(ORIGINAL)).toThrow(DsnParseError);
    const empty = crlf('Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x\n--b--\n');
    expect(() => parseDsn(empty)).toThrow(/names no recipient/);
  });
});
