import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAddressList } from '../../src/mime/address.js';
import { buildMessageMeta } from '../../src/mime/meta.js';

describe('parseAddressList', () => {
  it('parses names, quoted names with commas, and bare addresses', () => {
    expect(parseAddressList('Greg Meyer <gm@example.com>, "Meyer, Greg" <g2@example.com>, bare@example.com')).toEqual([
      { name: 'Greg Meyer', adl: null, mailbox: 'gm', host: 'example.com' },
      { name: 'Meyer, Greg', adl: null, mailbox: 'g2', host: 'example.com' },
      { name: null, adl: null, mailbox: 'bare', host: 'example.com' },
    ]);
  });

  it('keeps encoded words raw and uses a comment as name', () => {
    expect(parseAddressList('=?UTF-8?Q?Dr_M=C3=BCller?= <m@h.fr>, x@h.fr (Xavier)')).toEqual([
      { name: '=?UTF-8?Q?Dr_M=C3=BCller?=', adl: null, mailbox: 'm', host: 'h.fr' },
      { name: 'Xavier', adl: null, mailbox: 'x', host: 'h.fr' },
    ]);
  });

  it('produces group markers', () => {
    expect(parseAddressList('Team: a@x.org, b@x.org;, undisclosed-recipients:;')).toEqual([
      { name: null, adl: null, mailbox: 'Team', host: null },
      { name: null, adl: null, mailbox: 'a', host: 'x.org' },
      { name: null, adl: null, mailbox: 'b', host: 'x.org' },
      { name: null, adl: null, mailbox: null, host: null },
      { name: null, adl: null, mailbox: 'undisclosed-recipients', host: null },
      { name: null, adl: null, mailbox: null, host: null },
    ]);
  });

  it('gives a placeholder host to an address without domain, null for nothing', () => {
    expect(parseAddressList('postmaster')).toEqual([{ name: null, adl: null, mailbox: 'postmaster', host: 'MISSING_DOMAIN' }]);
    expect(parseAddressList('')).toBeNull();
    expect(parseAddressList(null)).toBeNull();
  });
});

describe('buildMessageMeta', () => {
  it('builds the envelope, defaulting sender and reply-to to from', () => {
    const raw = Buffer.from(
      'Date: Thu, 03 Jun 2010 07:57:27 -0500\r\nFrom: Greg <gm@x.com>\r\nTo: a@y.com,\r\n b@y.com\r\nSubject: =?UTF-8?Q?caf=C3=A9?=\r\nMessage-ID: <1@x.com>\r\nIn-Reply-To: <0@x.com>\r\nReferences: <a@x> <0@x.com>\r\n\r\nbody\r\n',
    );
    const meta = buildMessageMeta(raw);
    expect(meta.envelope).toMatchObject({
      date: 'Thu, 03 Jun 2010 07:57:27 -0500',
      subject: '=?UTF-8?Q?caf=C3=A9?=',
      messageId: '<1@x.com>',
      inReplyTo: '<0@x.com>',
      cc: null,
      bcc: null,
    });
    expect(meta.envelope.sender).toEqual(meta.envelope.from);
    expect(meta.envelope.replyTo).toEqual(meta.envelope.from);
    expect(meta.envelope.to).toHaveLength(2);
    expect(meta.thread).toEqual({ messageId: '<1@x.com>', inReplyTo: '<0@x.com>', references: ['<a@x>', '<0@x.com>'], subject: 'café' });
    expect(JSON.parse(JSON.stringify(meta))).toEqual(meta);
  });

  it('keeps the decoded values of the fields SEARCH reads, leaving out a field too long to keep', () => {
    const many = Array.from({ length: 120 }, (_, i) => `dr.correspondant${i}@hopital.test`).join(', ');
    const raw = Buffer.from(
      `From: =?UTF-8?Q?Ren=C3=A9e_Dupr=C3=A9?= <rd@labo.test>\r\nTo: ${many}\r\nCc: a@x.test\r\nCc: b@x.test\r\nSubject: Bilan\r\n sanguin\r\n\r\nbody\r\n`,
    );
    expect(buildMessageMeta(raw).searchHeaders).toEqual({
      from: ['Renée Dupré <rd@labo.test>'],
      cc: ['a@x.test', 'b@x.test'],
      bcc: [],
      subject: ['Bilan sanguin'],
    });
  });

  it('keeps 8-bit UTF-8 header values', () => {
    const meta = buildMessageMeta(readFileSync(new URL('../fixtures/email/ans-mdn-ko-902.eml', import.meta.url)));
    expect(meta.envelope.subject).toMatch(/^\[KO Intégration système !\]/);
    expect(meta.thread.subject).toBe(meta.envelope.subject);
  });

  it('reads Latin-1 header bytes without losing them', () => {
    const meta = buildMessageMeta(Buffer.concat([Buffer.from('Subject: caf'), Buffer.from([0xe9]), Buffer.from('\n\nx')]));
    expect(meta.envelope.subject).toBe('café');
  });
});
