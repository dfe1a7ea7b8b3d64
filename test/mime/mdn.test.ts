import { readFileSync } from 'node:fs';
import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { headerValue, readHeader } from '../../src/mime/headers.js';
import { buildMdn, FINAL_DESTINATION_DELIVERY, MdnParseError, mdnPolicy, parseDisposition, parseMdn, type MdnInput } from '../../src/mime/mdn.js';
import { paramValue } from '../../src/mime/params.js';
import { parseMime } from '../../src/mime/structure.js';
import type { MimeNode } from '../../src/mime/types.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/email/${name}`, import.meta.url));
const crlf = (s: string) => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'utf8');

const ORIGINAL = crlf(
  [
    'Return-Path: <jean.dupont@hopital-a.mssante.test>',
    'From: Dr Jean Dupont <jean.dupont@hopital-a.mssante.test>',
    'To: <dpi@clinique-b.mssante.test>',
    'Subject: =?UTF-8?Q?XDM/1.0/DDM+Compte_rendu_op=C3=A9ratoire?= DUPONT Jean 01/02/1980',
    'Message-ID: <orig-1@hopital-a.mssante.test>',
    'Date: Mon, 05 Jan 2026 10:00:00 +0100',
    'Original-Recipient: rfc822;dpi@clinique-b.mssante.test',
    'Disposition-Notification-To: <jean.dupont@hopital-a.mssante.test>',
    'Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    'Compte rendu opératoire ci-joint.',
    '',
  ].join('\n'),
);

const base: MdnInput = {
  original: ORIGINAL,
  from: 'dpi@clinique-b.mssante.test',
  to: 'jean.dupont@hopital-a.mssante.test',
  finalRecipient: 'dpi@clinique-b.mssante.test',
  originalRecipient: 'dpi@clinique-b.mssante.test',
  reportingUa: { name: 'mss.clinique-b.mssante.test', product: 'mss 0.1.0' },
  disposition: 'processed',
  date: new Date('2026-01-05T09:01:02Z'),
  messageId: '<mdn-1@clinique-b.mssante.test>',
};

function body(raw: Buffer, node: MimeNode): string {
  return raw.subarray(node.bodyStart, node.bodyEnd).toString('utf8');
}

function withHeader(raw: Buffer, lines: string[]): Buffer {
  return Buffer.concat([crlf(lines.join('\n') + '\n'), raw]);
}

describe('mdnPolicy', () => {
  const plain = (extra: string[]) => crlf([...extra, 'From: a@x.test', 'Subject: s', '', 'body', ''].join('\n'));

  it('never sends an MDN without Disposition-Notification-To', () => {
    expect(mdnPolicy(plain(['Return-Path: <a@x.test>']))).toMatchObject({ requested: false, automatic: false, reason: 'not-requested' });
  });

  it('sends automatically when Disposition-Notification-To is the Return-Path (domain without case)', () => {
    const p = mdnPolicy(ORIGINAL);
    expect(p).toMatchObject({
      requested: true,
      automatic: true,
      reason: 'ok',
      notifyTo: 'jean.dupont@hopital-a.mssante.test',
      originalRecipient: 'dpi@clinique-b.mssante.test',
      finalDestinationDelivery: true,
    });
    expect(p.options).toEqual([{ name: FINAL_DESTINATION_DELIVERY, importance: 'optional', values: ['true'] }]);
    expect(mdnPolicy(plain(['Return-Path: <a@X.TEST>', 'Disposition-Notification-To: A person <a@x.test>'])).automatic).toBe(true);
  });

  it('compares the local part exactly and prefers the envelope sender the caller knows', () => {
    expect(mdnPolicy(plain(['Return-Path: <A@x.test>', 'Disposition-Notification-To: a@x.test']))).toMatchObject({ automatic: false, reason: 'return-path-differs' });
    expect(mdnPolicy(plain(['Return-Path: <other@x.test>', 'Disposition-Notification-To: a@x.test']), { returnPath: 'a@x.test' }).automatic).toBe(true);
    expect(mdnPolicy(plain(['Disposition-Notification-To: a@x.test']), { returnPath: 'b@x.test' })).toMatchObject({ reason: 'return-path-differs', notifyTo: 'a@x.test' });
  });

  it('refuses a null or missing Return-Path, several addresses, a report, an unknown required option', () => {
    expect(mdnPolicy(plain(['Disposition-Notification-To: a@x.test']))).toMatchObject({ requested: true, reason: 'no-return-path' });
    expect(mdnPolicy(plain(['Return-Path: <>', 'Disposition-Notification-To: a@x.test'])).reason).toBe('no-return-path');
    expect(mdnPolicy(plain(['Disposition-Notification-To: a@x.test']), { returnPath: '' }).reason).toBe('no-return-path');
    expect(mdnPolicy(plain(['Return-Path: <a@x.test>', 'Disposition-Notification-To: a@x.test, b@x.test'])).reason).toBe('bad-notify-address');
    expect(mdnPolicy(plain(['Return-Path: <a@x.test>', 'Disposition-Notification-To: a@x.test', 'Content-Type: multipart/report; report-type=delivery-status; boundary=x'])).reason).toBe(
      'is-report',
    );
    expect(
      mdnPolicy(plain(['Return-Path: <a@x.test>', 'Disposition-Notification-To: a@x.test', 'Disposition-Notification-Options: signed-receipt=required,pkcs7-signature'])).reason,
    ).toBe('unsupported-required-option');
  });

  it('reads the Direct option only when its value is true', () => {
    const with_ = (dno: string) => mdnPolicy(plain(['Return-Path: <a@x.test>', 'Disposition-Notification-To: a@x.test', `Disposition-Notification-Options: ${dno}`]));
    expect(with_('X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,false').finalDestinationDelivery).toBe(false);
    expect(with_('x-direct-final-destination-delivery=required,TRUE')).toMatchObject({ finalDestinationDelivery: true, automatic: true });
    expect(with_('X-DIRECT-FINAL-DESTINATION-DELIVERY=true').finalDestinationDelivery).toBe(false); // no importance: malformed, ignored
  });
});

describe('buildMdn', () => {
  it('builds the three RFC 8098 parts in order, with the MSSanté fields', () => {
    const mdn = buildMdn(base);
    const root = parseMime(mdn.raw);
    expect(root.type).toBe('multipart');
    expect(root.subtype).toBe('report');
    expect(paramValue(root.params, 'report-type')).toBe('disposition-notification');
    expect(root.children.map((c) => `${c.type}/${c.subtype}`)).toEqual(['text/plain', 'message/disposition-notification', 'message/rfc822']);

    const head = readHeader(mdn.raw, 0, mdn.raw.length).fields;
    expect(headerValue(head, 'disposition-notification-to')).toBeNull();
    expect(headerValue(head, 'from')).toBe('dpi@clinique-b.mssante.test');
    expect(headerValue(head, 'to')).toBe('jean.dupont@hopital-a.mssante.test');
    expect(headerValue(head, 'in-reply-to')).toBe('<orig-1@hopital-a.mssante.test>');
    expect(headerValue(head, 'auto-submitted')).toBe('auto-replied');
    expect(headerValue(head, 'date')).toBe('Mon, 05 Jan 2026 09:01:02 +0000');
    expect(mdn.envelope).toEqual({ from: '', to: ['jean.dupont@hopital-a.mssante.test'] });
    expect(mdn.messageId).toBe('<mdn-1@clinique-b.mssante.test>');

    const notification = body(mdn.raw, root.children[1]!);
    expect(notification).toBe(
      [
        'Reporting-UA: mss.clinique-b.mssante.test; mss 0.1.0',
        'Original-Recipient: rfc822; dpi@clinique-b.mssante.test',
        'Final-Recipient: rfc822; dpi@clinique-b.mssante.test',
        'Original-Message-ID: <orig-1@hopital-a.mssante.test>',
        'Disposition: automatic-action/MDN-sent-automatically; processed',
        '',
      ].join('\r\n'),
    );
    // The original comes back whole, 8-bit content declared as such.
    const original = root.children[2]!;
    expect(original.encoding).toBe('8bit');
    expect(body(mdn.raw, original)).toContain('Compte rendu opératoire ci-joint.');
    // One line ending throughout, and no line beyond the SMTP limit.
    expect(mdn.raw.toString('latin1')).not.toMatch(/[^\r]\n/);
    expect(mdn.raw.toString('latin1').split('\r\n').every((l) => l.length <= 998)).toBe(true);
  });

  it('round-trips through parseMdn', () => {
    const parsed = parseMdn(buildMdn(base).raw);
    expect(parsed).toMatchObject({
      reportingUa: 'mss.clinique-b.mssante.test; mss 0.1.0',
      originalRecipient: 'dpi@clinique-b.mssante.test',
      finalRecipient: 'dpi@clinique-b.mssante.test',
      originalMessageId: '<orig-1@hopital-a.mssante.test>',
      disposition: { actionMode: 'automatic-action', sendingMode: 'mdn-sent-automatically', type: 'processed', modifiers: [] },
      error: null,
      finalDestinationDelivery: false,
      originalSubject: 'XDM/1.0/DDM+Compte rendu opératoire DUPONT Jean 01/02/1980',
      message: { messageId: '<mdn-1@clinique-b.mssante.test>', from: 'dpi@clinique-b.mssante.test', to: ['jean.dupont@hopital-a.mssante.test'] },
    });
    // MSSanté: a success MDN keeps the original subject.
    expect(parsed.message.subject).toBe('XDM/1.0/DDM+Compte rendu opératoire DUPONT Jean 01/02/1980');
  });

  it('reads in mailparser with French and English text, and the report parts', async () => {
    const mail = await simpleParser(buildMdn(base).raw);
    expect(mail.subject).toBe('XDM/1.0/DDM+Compte rendu opératoire DUPONT Jean 01/02/1980');
    expect(mail.text).toContain('a été reçu et traité automatiquement');
    expect(mail.text).toContain('was received and processed automatically');
    expect(mail.text).toContain('Cet accusé ne signifie pas que le message a été lu.');
    expect(mail.headers.get('content-type')).toMatchObject({ value: 'multipart/report', params: { 'report-type': 'disposition-notification' } });
    const types = mail.attachments.map((a) => a.contentType);
    expect(types).toContain('message/disposition-notification');
    expect(types).toContain('message/rfc822');
  });

  it('reports an integration error the MSSanté way', async () => {
    const mdn = buildMdn({ ...base, error: { code: '902', label: 'Identifiant de patient inconnu' } });
    expect(mdn.subject).toBe('[KO Intégration système !][902] XDM/1.0/DDM+Compte rendu opératoire DUPONT Jean 01/02/1980');
    const parsed = parseMdn(mdn.raw);
    expect(parsed.disposition).toEqual({ actionMode: 'automatic-action', sendingMode: 'mdn-sent-automatically', type: 'processed', modifiers: ['error'] });
    expect(parsed.error).toEqual({ code: '902', label: 'Identifiant de patient inconnu', text: '902^Identifiant de patient inconnu' });
    expect(parsed.fields).toContainEqual(['disposition', 'automatic-action/MDN-sent-automatically; processed/Error: 902^Identifiant de patient inconnu']);
    const mail = await simpleParser(mdn.raw);
    expect(mail.subject).toBe(mdn.subject);
    expect(mail.text).toContain("n'a pas pu être intégré automatiquement pour la raison suivante");
    expect(mail.text).toContain('Identifiant de patient inconnu (code 902)');
    expect(mail.text).toContain('could not be integrated automatically');
  });

  it('keeps the machine part ASCII (accents folded) and folds long fields losslessly', () => {
    const label = 'Document refusé : la signature du CDA ne correspond à aucun professionnel connu du répertoire national';
    const mdn = buildMdn({ ...base, error: { code: 'XDM-07', label } });
    const root = parseMime(mdn.raw);
    const notification = mdn.raw.subarray(root.children[1]!.bodyStart, root.children[1]!.bodyEnd);
    expect([...notification].every((b) => b < 0x80)).toBe(true);
    expect(parseMdn(mdn.raw).error).toMatchObject({ code: 'XDM-07', label: label.normalize('NFD').replace(/[\u0300-\u036f]/g, '') });
    // The exact label is in the human-readable part.
    expect(body(mdn.raw, root.children[0]!)).toContain('r=C3=A9pertoire');
    expect(() => buildMdn({ ...base, error: { code: '9 0 2', label: 'x' } })).toThrow(RangeError);
  });

  it('adds the Direct extension field on the dispatched MDN only', () => {
    const dispatched = parseMdn(buildMdn({ ...base, disposition: 'dispatched', finalDestinationDelivery: true }).raw);
    expect(dispatched.disposition.type).toBe('dispatched');
    expect(dispatched.finalDestinationDelivery).toBe(true);
    expect(dispatched.fields).toContainEqual(['x-direct-final-destination-delivery', '']);
    expect(parseMdn(buildMdn({ ...base, disposition: 'dispatched' }).raw).finalDestinationDelivery).toBe(false);
    expect(() => buildMdn({ ...base, finalDestinationDelivery: true })).toThrow(/dispatched MDN only/);
  });

  it('returns the header only when asked, and the original attachments after the original', () => {
    const zip = Buffer.from('PK\x03\x04 not really a zip', 'latin1');
    const mdn = buildMdn({
      ...base,
      returnContent: 'headers',
      manual: true,
      disposition: 'displayed',
      attachments: [{ filename: 'IHE_XDM.zip', contentType: 'application/zip', content: zip }],
    });
    const root = parseMime(mdn.raw);
    expect(root.children.map((c) => `${c.type}/${c.subtype}`)).toEqual(['text/plain', 'message/disposition-notification', 'text/rfc822-headers', 'application/zip']);
    expect(body(mdn.raw, root.children[2]!)).toContain('Message-ID: <orig-1@hopital-a.mssante.test>');
    expect(body(mdn.raw, root.children[2]!)).not.toContain('ci-joint');
    expect(root.children[3]!.disposition).toEqual({ type: 'attachment', params: [['filename', 'IHE_XDM.zip']] });
    expect(Buffer.from(body(mdn.raw, root.children[3]!), 'base64').equals(zip)).toBe(true);
    expect(parseMdn(mdn.raw).disposition).toMatchObject({ actionMode: 'manual-action', sendingMode: 'mdn-sent-manually', type: 'displayed' });
  });

  it('turns a bare-LF original into CRLF and omits what the original lacks', () => {
    const lf = Buffer.from('From: a@x.test\nSubject: bare\n\nline 1\nline 2\n');
    const mdn = buildMdn({ ...base, original: lf, originalRecipient: null });
    expect(mdn.raw.toString('latin1')).not.toMatch(/[^\r]\n/);
    const parsed = parseMdn(mdn.raw);
    expect(parsed.originalMessageId).toBeNull();
    expect(parsed.originalRecipient).toBeNull();
    expect(headerValue(readHeader(mdn.raw, 0, mdn.raw.length).fields, 'in-reply-to')).toBeNull();
  });

  it('is not itself answered: it asks for no MDN and is a report', () => {
    const mdn = buildMdn(base).raw;
    expect(mdnPolicy(mdn).reason).toBe('not-requested');
    expect(mdnPolicy(withHeader(mdn, ['Return-Path: <a@x.test>', 'Disposition-Notification-To: a@x.test'])).reason).toBe('is-report');
  });

  it('refuses unusable addresses', () => {
    expect(() => buildMdn({ ...base, to: 'not an address' })).toThrow(RangeError);
    expect(() => buildMdn({ ...base, from: 'a@x.test\r\nBcc: evil@y.test' })).toThrow(RangeError);
  });
});

describe('parseMdn on published samples', () => {
  it('reads the ANS integration-error MDN (volet struct-msg-mdn)', () => {
    const parsed = parseMdn(fixture('ans-mdn-ko-902.eml'));
    expect(parsed).toMatchObject({
      originalRecipient: 'serviceY_auto@chb.mssante.fr',
      finalRecipient: 'serviceY_auto@chb.mssante.fr',
      originalMessageId: '<20240219230100.23456@chb.mssante.fr>',
      disposition: { actionMode: 'automatic-action', sendingMode: 'mdn-sent-automatically', type: 'processed', modifiers: ['error'] },
      error: { code: '902', label: 'Identifiant de patient inconnu', text: '902^Identifiant de patient inconnu^messageErrorCondition| E^Error^errorSeverity' },
      message: {
        subject: '[KO Intégration système !][902] XDM/1.0/DDM+ECHOGRAPHIE ABDOMINOPELVIENNE CORSE FIGATELLIX 12/10/1988',
        from: 'serviceY_auto@chb.mssante.fr',
        messageId: '<20240220001900.12345@chb.mssante.fr>',
      },
    });
  });

  // DirectProject/nhin-d (commit 2c49d290880d, BSD-style licence), byte for byte:
  // java/agent/src/test/resources/org/nhindirect/stagent/MDNMessage.txt (CRLF) and
  // java/direct-common/src/test/resources/messages/MDNDispatchedTimeAndReliable.txt (LF, no closing delimiter,
  // no final line break). Lower-case header names, no address type in Final-Recipient.
  const nhindHead = [
    'to: User1@Cerner.com',
    'content-type: multipart/report; report-type=disposition-notification; boundary="----=_Part_5_31697654.1295630438108"',
    'message-id: 0c796d0e-4c76-43e8-be40-2cd5e30c1005',
    'subject: Processed: I-D ACTION:draft-ietf-mailext-pipeline-01.txt',
    'From: externUser1@starugh-stateline.com',
  ];
  const nhindParts = (disposition: string) => [
    '',
    '------=_Part_5_31697654.1295630438108',
    '',
    'This is a CDATA subject',
    '------=_Part_5_31697654.1295630438108',
    'Content-Type: message/disposition-notification',
    '',
    `Disposition: automatic-action/MDN-sent-automatically;${disposition}`,
    'Reporting-UA: starugh-stateline.com;NHIN Direct Security Agent',
    'Final-Recipient: externUser1@starugh-stateline.com',
  ];

  it('reads the Direct processed MDN of the reference implementation', () => {
    const raw = Buffer.from([...nhindHead, ...nhindParts('processed'), 'Original-Message-ID: <9501051053.aa04167@IETF.CNR I.Reston.VA.US>', '', ''].join('\r\n'));
    expect(raw.length).toBe(704);
    expect(parseMdn(raw)).toMatchObject({
      reportingUa: 'starugh-stateline.com;NHIN Direct Security Agent',
      finalRecipient: 'externUser1@starugh-stateline.com',
      originalMessageId: '<9501051053.aa04167@IETF.CNR I.Reston.VA.US>',
      disposition: { type: 'processed', modifiers: [] },
      finalDestinationDelivery: false,
      message: { subject: 'Processed: I-D ACTION:draft-ietf-mailext-pipeline-01.txt', to: ['User1@Cerner.com'] },
    });
  });

  it('reads the Direct dispatched MDN with X-DIRECT-FINAL-DESTINATION-DELIVERY', () => {
    const head = [...nhindHead.slice(0, 5), 'In-Reply-To: <9501051053.aa04167@IETF.CNR I.Reston.VA.US>'];
    const raw = Buffer.from([...head, ...nhindParts('dispatched'), 'X-DIRECT-FINAL-DESTINATION-DELIVERY:'].join('\n'));
    expect(raw.length).toBe(715);
    expect(parseMdn(raw)).toMatchObject({ disposition: { type: 'dispatched' }, finalDestinationDelivery: true, message: { inReplyTo: '<9501051053.aa04167@IETF.CNR I.Reston.VA.US>' } });
  });

  it('finds an MDN wrapped in message/rfc822 (as a security agent hands it over) and refuses what is not one', () => {
    const inner = buildMdn(base).raw;
    const wrapped = Buffer.concat([crlf('From: x@y.test\nContent-Type: message/rfc822\n\n'), inner]);
    expect(parseMdn(wrapped).originalMessageId).toBe('<orig-1@hopital-a.mssante.test>');
    expect(() => parseMdn(ORIGINAL)).toThrow(MdnParseError);
    const noDisposition = crlf('Content-Type: multipart/report; report-type=disposition-notification; boundary=b\n\n--b\n\nhi\n--b\nContent-Type: message/disposition-notification\n\nFinal-Recipient: rfc822; a@b.test\n--b--\n');
    expect(() => parseMdn(noDisposition)).toThrow(/without a Disposition/);
  });

  it('parses Disposition values leniently', () => {
    expect(parseDisposition('  Manual-Action / MDN-Sent-Manually ;  Deleted / expired , warning ').disposition).toEqual({
      actionMode: 'manual-action',
      sendingMode: 'mdn-sent-manually',
      type: 'deleted',
      modifiers: ['expired', 'warning'],
    });
    expect(() => parseDisposition('processed')).toThrow(MdnParseError);
  });
});
