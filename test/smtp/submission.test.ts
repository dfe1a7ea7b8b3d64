import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyJournal } from '../../src/audit/journal.js';
import { openStore } from '../../src/store/open.js';
import { ENGINES } from '../helpers/engines.js';
import { LineClient } from '../helpers/line-client.js';
import { DEMO, passwordOf, startOperator, type TestOperator } from '../helpers/operator.js';
import { activatePatient } from '../patients/helpers.js';

const MAX_SIZE = 64 * 1024;

function rawMessage(from: string, to: string, subject: string, body: string): Buffer {
  return Buffer.from(
    [
      `From: Dr Jean DUPONT <${from}>`,
      `To: <${to}>`,
      `Subject: ${subject}`,
      `Date: Wed, 25 Nov 2026 10:00:00 +0100`,
      `Message-ID: <${Math.random().toString(36).slice(2)}@hopital-demo.mssante.test>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      body,
      '',
    ].join('\r\n'),
  );
}

describe.each(ENGINES)('SMTP submission (%s)', (engine) => {
  let op: TestOperator;

  beforeAll(async () => {
    op = await startOperator({ smtp: { maxMessageSize: MAX_SIZE, maxConnectionsPerIp: 4 } }, engine);
  });
  afterAll(() => op?.dispose());

  function transport(user: string, password = passwordOf(op, user), port = op.ports.submission) {
    return nodemailer.createTransport({
      host: '127.0.0.1',
      port,
      secure: port === op.ports.submissionTls,
      requireTLS: true,
      auth: { user, pass: password },
      tls: { ca: op.ca, servername: 'localhost' },
    });
  }

  function imap(user: string) {
    return new ImapFlow({
      host: '127.0.0.1',
      port: op.ports.imaps,
      secure: true,
      auth: { user, pass: passwordOf(op, user) },
      tls: { ca: op.ca, servername: 'localhost' },
      logger: false,
    });
  }

  async function auditRows() {
    const store = await openStore(op.config);
    try {
      return await store.readAudit(0, 100_000);
    } finally {
      await store.close();
    }
  }

  it('delivers from one practitioner to another over STARTTLS; IMAP reads it byte for byte; flags persist across a restart', async () => {
    const raw = rawMessage(DEMO.jean, DEMO.claire, 'Compte rendu – échographie', 'Bonjour Claire,\r\nLe compte rendu est joint. Résultats normaux.\r\n');
    const info = await transport(DEMO.jean).sendMail({ envelope: { from: DEMO.jean, to: [DEMO.claire] }, raw });
    expect(info.accepted).toEqual([DEMO.claire]);
    expect(info.response).toMatch(/^250 2\.6\.0 /);

    const client = imap(DEMO.claire);
    await client.connect();
    const lock = await client.getMailboxLock('INBOX');
    let uid: number;
    try {
      const msg = await client.fetchOne('*', { source: true, envelope: true, flags: true, uid: true });
      expect(msg).toBeTruthy();
      if (!msg) throw new Error('no message');
      uid = msg.uid;
      const source = msg.source!;
      // What was submitted is stored unchanged after our trace header.
      expect(source.subarray(source.length - raw.length).equals(raw)).toBe(true);
      expect(source.toString('utf8')).toMatch(/^Received: from .* \(\[127\.0\.0\.1\]\)\r\n\tby localhost \(mss\) \(using TLSv1\.3/);
      expect(msg.envelope!.subject).toBe('Compte rendu – échographie');
      expect(msg.envelope!.from![0]!.address).toBe(DEMO.jean);
      expect([...msg.flags!]).toEqual([]);
      await client.messageFlagsAdd({ uid: String(uid) }, ['\\Seen', '\\Flagged'], { uid: true });
    } finally {
      lock.release();
      await client.logout();
    }

    await op.restart();

    const again = imap(DEMO.claire);
    await again.connect();
    const lock2 = await again.getMailboxLock('INBOX');
    try {
      const msg = await again.fetchOne(String(uid), { flags: true }, { uid: true });
      expect(msg && [...msg.flags!].sort()).toEqual(['\\Flagged', '\\Seen']);
    } finally {
      lock2.release();
      await again.logout();
    }
  });

  it('accepts submission over implicit TLS too', async () => {
    const info = await transport(DEMO.claire, undefined, op.ports.submissionTls).sendMail({
      from: DEMO.claire,
      to: DEMO.jean,
      subject: 'Réponse',
      text: 'Merci.',
    });
    expect(info.accepted).toEqual([DEMO.jean]);
  });

  it('does not offer AUTH before STARTTLS and refuses it with 538 5.7.0', async () => {
    const c = await LineClient.connect(op.ports.submission);
    try {
      expect((await c.reply()).join()).toMatch(/^220 /);
      const ehlo = await c.command('EHLO client.test');
      expect(ehlo).toMatch(/STARTTLS/);
      expect(ehlo).not.toMatch(/AUTH/);
      expect(await c.command(`AUTH PLAIN ${Buffer.from(`\0${DEMO.jean}\0x`).toString('base64')}`)).toMatch(/^538 5\.7\.0 /);
      expect(await c.command(`MAIL FROM:<${DEMO.jean}>`)).toMatch(/^530 5\.7\.0 /);
    } finally {
      c.close();
    }
  });

  it('refuses a wrong password with 535 5.7.8 and audits the failure', async () => {
    await expect(transport(DEMO.jean, 'not-the-password').verify()).rejects.toMatchObject({ responseCode: 535 });
    const rows = await auditRows();
    expect(rows.some((r) => r.action === 'login-failed' && r.actor === DEMO.jean && r.outcome === 'bad-credentials')).toBe(true);
    expect(JSON.stringify(rows)).not.toContain('not-the-password');
  });

  it('closes a connection after repeated failed AUTH attempts (421 4.7.0), whatever the addresses tried', async () => {
    const c = await LineClient.connect(op.ports.submissionTls, { tls: true, ca: op.ca });
    try {
      await c.reply();
      await c.command('EHLO client.test');
      const attempt = (user: string) => c.command(`AUTH PLAIN ${Buffer.from(`\0${user}\0wrong-password`).toString('base64')}`);
      expect(await attempt('spray1@hopital-demo.mssante.test')).toMatch(/^535 5\.7\.8 /);
      expect(await attempt('spray2@hopital-demo.mssante.test')).toMatch(/^535 5\.7\.8 /);
      expect(await attempt('spray3@hopital-demo.mssante.test')).toMatch(/^421 4\.7\.0 Too many failed authentication attempts/);
      await new Promise((r) => setTimeout(r, 200));
      expect(c.closed).toBe(true);
    } finally {
      c.close();
    }
  });

  it('locks an address out after repeated failures, without revealing whether it exists', async () => {
    const ghost = 'nobody@hopital-demo.mssante.test';
    for (let i = 0; i < op.config.auth.maxFailures; i++) {
      await expect(transport(ghost, 'wrong-password').verify()).rejects.toMatchObject({ responseCode: 535 });
    }
    await expect(transport(ghost, 'wrong-password').verify()).rejects.toMatchObject({ responseCode: 454 });
  });

  it('refuses sending as another address: MAIL FROM and From header, 550 5.7.1', async () => {
    const t = transport(DEMO.jean);
    await expect(t.sendMail({ envelope: { from: DEMO.claire, to: [DEMO.claire] }, raw: rawMessage(DEMO.claire, DEMO.claire, 's', 'b') })).rejects.toMatchObject({
      responseCode: 550,
      response: expect.stringMatching(/^550 5\.7\.1 .*\[sender-not-owned\]/),
    });
    await expect(t.sendMail({ envelope: { from: DEMO.jean, to: [DEMO.claire] }, raw: rawMessage(DEMO.claire, DEMO.claire, 's', 'b') })).rejects.toMatchObject({
      responseCode: 550,
      response: expect.stringMatching(/^550 5\.7\.1 /),
    });
    const rows = await auditRows();
    expect(rows.filter((r) => r.action === 'refuse' && r.outcome === 'sender-not-owned').length).toBeGreaterThanOrEqual(2);
  });

  it('refuses SMTP to a patient mailbox: pending, then active, it has no SMTP login (webmail only)', async () => {
    // Pending (the demo patient as init leaves it): no password yet, nobody logs in.
    await expect(transport(DEMO.patient, 'any password').verify()).rejects.toMatchObject({ responseCode: 535 });
    // Active, with the password the patient chose: still no SMTP (src/pipeline/identify-sender.ts refuses a patient's
    // MAIL FROM too, with a text the patient understands: test/pipeline/stages.test.ts).
    await activatePatient(op, DEMO.patient, 'le mot de passe du patient');
    await expect(transport(DEMO.patient, 'le mot de passe du patient').verify()).rejects.toMatchObject({ responseCode: 535 });
    const rows = await auditRows();
    expect(rows.some((r) => r.action === 'login-failed' && r.object === DEMO.patient && r.outcome === 'patient-no-smtp')).toBe(true);
  });

  it('refuses an unknown local recipient with 550 5.1.1 and a remote domain with 550 5.7.1', async () => {
    const c = await LineClient.connect(op.ports.submissionTls, { tls: true, ca: op.ca });
    try {
      await c.reply();
      await c.command('EHLO client.test');
      const auth = Buffer.from(`\0${DEMO.jean}\0${passwordOf(op, DEMO.jean)}`).toString('base64');
      expect(await c.command(`AUTH PLAIN ${auth}`)).toMatch(/^235 2\.7\.0 /);
      expect(await c.command(`MAIL FROM:<${DEMO.jean}>`)).toMatch(/^250 2\.1\.0 /);
      expect(await c.command('RCPT TO:<personne@hopital-demo.mssante.test>')).toMatch(/^550 5\.1\.1 .*\[unknown-recipient\]/);
      expect(await c.command('RCPT TO:<someone@example.org>')).toMatch(/^550 5\.7\.1 .*trust space.*\[domain-not-in-trust-space\]/);
      expect(await c.command('RCPT TO:<not an address>')).toMatch(/^5\d\d /);
      expect(await c.command(`RCPT TO:<${DEMO.claire}>`)).toMatch(/^250 2\.1\.5 /);
      expect(await c.command('QUIT')).toMatch(/^221 /);
    } finally {
      c.close();
    }
  });

  it('advertises SIZE and refuses an oversized message with 552 5.3.4, storing nothing', async () => {
    const c = await LineClient.connect(op.ports.submissionTls, { tls: true, ca: op.ca });
    try {
      await c.reply();
      expect(await c.command('EHLO client.test')).toContain(`SIZE ${MAX_SIZE}`);
      expect(await c.command(`AUTH PLAIN ${Buffer.from(`\0${DEMO.jean}\0${passwordOf(op, DEMO.jean)}`).toString('base64')}`)).toMatch(/^235/);
      expect(await c.command(`MAIL FROM:<${DEMO.jean}> SIZE=${MAX_SIZE + 1}`)).toMatch(/^552 5\.3\.4 /);
    } finally {
      c.close();
    }
    const before = (await auditRows()).filter((r) => r.action === 'deliver').length;
    const big = rawMessage(DEMO.jean, DEMO.claire, 'big', 'x'.repeat(MAX_SIZE + 10));
    await expect(transport(DEMO.jean).sendMail({ envelope: { from: DEMO.jean, to: [DEMO.claire] }, raw: big })).rejects.toMatchObject({
      responseCode: 552,
      response: expect.stringMatching(/^552 5\.3\.4 /),
    });
    const rows = await auditRows();
    expect(rows.filter((r) => r.action === 'deliver').length).toBe(before);
    expect(rows.some((r) => r.action === 'refuse' && r.outcome === 'message-too-large')).toBe(true);
  });

  it('answers malformed commands with clean errors and keeps serving', async () => {
    const c = await LineClient.connect(op.ports.submission);
    try {
      await c.reply();
      expect(await c.command('HELLO?')).toMatch(/^5\d\d /);
      expect(await c.command('MAIL FROM:<<<>>>')).toMatch(/^5\d\d /);
      expect(await c.command('\u0001\u0002 binary junk')).toMatch(/^5\d\d /);
      expect(await c.command('NOOP')).toMatch(/^250 /);
    } finally {
      c.close();
    }
    const info = await transport(DEMO.jean).sendMail({ from: DEMO.jean, to: DEMO.claire, subject: 'still alive', text: 'ok' });
    expect(info.accepted).toEqual([DEMO.claire]);
  });

  it('limits concurrent connections from one address with 421 4.7.0, and frees the slots on close', async () => {
    const open = await Promise.all(Array.from({ length: 4 }, () => LineClient.connect(op.ports.submission)));
    try {
      for (const c of open) expect((await c.reply()).join()).toMatch(/^220 /);
      const extra = await LineClient.connect(op.ports.submissionTls, { tls: true, ca: op.ca });
      expect((await extra.reply()).join()).toMatch(/^421 4\.7\.0 Too many connections/);
      extra.close();
    } finally {
      for (const c of open) c.close();
    }
    await new Promise((r) => setTimeout(r, 200));
    const info = await transport(DEMO.jean).sendMail({ from: DEMO.jean, to: DEMO.claire, subject: 'after', text: 'ok' });
    expect(info.accepted).toEqual([DEMO.claire]);
  });

  it('keeps an audit journal that verifies', async () => {
    const store = await openStore(op.config);
    try {
      const result = await verifyJournal(store);
      expect(result.ok).toBe(true);
      expect(result.records).toBeGreaterThan(5);
    } finally {
      await store.close();
    }
  });
});
