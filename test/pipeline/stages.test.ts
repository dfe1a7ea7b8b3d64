import { describe, expect, it } from 'vitest';
import { buildMessageMeta } from '../../src/mime/meta.js';
import { checkEnvelopeSender, checkHeaderSender } from '../../src/pipeline/identify-sender.js';
import { MAX_HEADER_BYTES, parseMessage } from '../../src/pipeline/parse.js';
import { checkLimits } from '../../src/pipeline/policy.js';
import { receivedHeader, rfc5322Date } from '../../src/pipeline/received.js';
import { Refusal, REFUSALS } from '../../src/pipeline/refusal.js';
import type { MailboxRow } from '../../src/store/types.js';

const jean = { address: 'jean.dupont@h.test' } as MailboxRow;
const msg = (headers: string) => Buffer.from(`${headers}\r\n\r\nbody\r\n`);
const refusalCode = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    if (e instanceof Refusal) return e.code;
    throw e;
  }
  return null;
};

describe('refusal table', () => {
  it('gives every code an SMTP reply with a matching enhanced class, in French and English', () => {
    for (const [code, r] of Object.entries(REFUSALS)) {
      expect(String(r.smtp)[0], code).toBe(r.enhanced[0]);
      expect(r.fr.length && r.en.length).toBeTruthy();
      const text = new Refusal(code as keyof typeof REFUSALS).smtpText;
      expect(text.startsWith(`${r.enhanced} `)).toBe(true);
      expect(text).toContain(`[${code}]`);
    }
  });
});

describe('parse stage', () => {
  it('parses a message and refuses one without From or with an endless header', () => {
    expect(parseMessage(msg('From: <a@h.test>\r\nSubject: x')).envelope.subject).toBe('x');
    expect(refusalCode(() => parseMessage(msg('Subject: no author')))).toBe('malformed-message');
    const endless = Buffer.from('X-Long: ' + 'a'.repeat(MAX_HEADER_BYTES + 10));
    expect(refusalCode(() => parseMessage(endless))).toBe('malformed-message');
  });
});

describe('identify-sender stage', () => {
  it('accepts the own address in any case, refuses anyone else', () => {
    expect(refusalCode(() => checkEnvelopeSender(jean, 'Jean.Dupont@H.test'))).toBeNull();
    expect(refusalCode(() => checkEnvelopeSender(jean, 'claire@h.test'))).toBe('sender-not-owned');
    expect(refusalCode(() => checkEnvelopeSender(jean, ''))).toBe('sender-not-owned');
    const patient = { address: '279035121518989@patient.test', type: 'PATIENT' } as MailboxRow;
    expect(refusalCode(() => checkEnvelopeSender(patient, patient.address))).toBe('patient-may-not-initiate');
    // From the webmail, the patient rules decide (src/policy/patients.ts): replies only.
    expect(refusalCode(() => checkEnvelopeSender(patient, patient.address, 'webmail'))).toBeNull();
  });

  it('checks From and Sender headers', () => {
    const meta = (h: string) => buildMessageMeta(msg(h));
    expect(refusalCode(() => checkHeaderSender(jean, meta('From: "Dr J" <JEAN.DUPONT@h.test>')))).toBeNull();
    expect(refusalCode(() => checkHeaderSender(jean, meta('From: claire@h.test')))).toBe('sender-not-owned');
    expect(refusalCode(() => checkHeaderSender(jean, meta('From: jean.dupont@h.test, claire@h.test')))).toBe('sender-not-owned');
    expect(refusalCode(() => checkHeaderSender(jean, meta('From: jean.dupont@h.test\r\nSender: claire@h.test')))).toBe('sender-not-owned');
    expect(refusalCode(() => checkHeaderSender(jean, meta('From: undisclosed:;')))).toBe('sender-not-owned');
  });
});

describe('policy stage', () => {
  const limits = { maxMessageSize: 100, maxRecipients: 2 };
  it('enforces size and recipient limits', () => {
    expect(refusalCode(() => checkLimits(limits, 100, 2))).toBeNull();
    expect(refusalCode(() => checkLimits(limits, 101, 1))).toBe('message-too-large');
    expect(refusalCode(() => checkLimits(limits, 10, 3))).toBe('too-many-recipients');
    expect(refusalCode(() => checkLimits(limits, 10, 0))).toBe('no-recipients');
  });
});

describe('received stage', () => {
  it('writes an RFC 5321 trace field that cannot be split by a hostile HELO name', () => {
    const header = receivedHeader(
      {
        channel: 'submission',
        sessionId: 's',
        remoteAddress: '127.0.0.1',
        clientName: 'evil\r\nBcc: x@y',
        protocol: 'ESMTPSA',
        tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' },
        sender: jean,
        envelope: { mailFrom: jean.address, rcptTo: ['c@h.test'] },
        raw: Buffer.alloc(0),
        receivedAt: new Date(Date.UTC(2026, 10, 25, 9, 5, 3)),
      },
      'mx.h.test',
      'Q1',
    );
    expect(header).toBe(
      'Received: from evil??Bcc:?x?y ([127.0.0.1])\r\n\tby mx.h.test (mss) (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n' +
        '\twith ESMTPSA id Q1\r\n\tfor <c@h.test>;\r\n\tWed, 25 Nov 2026 09:05:03 +0000\r\n',
    );
    expect(rfc5322Date(new Date(Date.UTC(2026, 0, 1, 0, 0, 0)))).toBe('Thu, 1 Jan 2026 00:00:00 +0000');
  });
});
