import { Command } from 'commander';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openKeyring } from '../../src/init.js';
import { parseDsn } from '../../src/mime/dsn.js';
import { registerPatientCommands } from '../../src/policy/patient-cli.js';
import { openStore } from '../../src/store/open.js';
import { DEMO, passwordOf, startOperator, type TestOperator } from '../helpers/operator.js';
import { activatePatient, withPatients } from './helpers.js';

/**
 * Patient mailboxes on a running operator, driven as an operator and a clinician would: `mss patient …` commands,
 * SMTP submission (nodemailer) and IMAP (imapflow).
 */
describe.each(['sqlite', 'postgres'] as const)('patient mailboxes on a running operator (%s)', (engine) => {
  let op: TestOperator;
  beforeAll(async () => {
    op = await startOperator({}, engine);
  });
  afterAll(() => op?.dispose());

  /** Runs `mss patient <args>` in-process; returns what it printed and the exit code it set. */
  async function mss(...args: string[]): Promise<{ out: string[]; err: string[]; code: number }> {
    const out: string[] = [];
    const err: string[] = [];
    const program = new Command('mss').exitOverride();
    registerPatientCommands(program, {
      withStore: async (_cmd, work) => {
        const store = await openStore(op.config);
        try {
          return await work(store);
        } finally {
          await store.close();
        }
      },
      keyringOf: () => openKeyring(op.config),
      configOf: () => op.config,
      out: (l) => out.push(l),
      err: (l) => err.push(l),
    });
    const before = process.exitCode;
    process.exitCode = 0;
    try {
      await program.parseAsync(['patient', ...args], { from: 'user' });
      return { out, err, code: Number(process.exitCode ?? 0) };
    } finally {
      process.exitCode = before;
    }
  }

  const send = (to: string[], subject: string) =>
    nodemailer
      .createTransport({ host: '127.0.0.1', port: op.ports.submission, requireTLS: true, auth: { user: DEMO.jean, pass: passwordOf(op, DEMO.jean) }, tls: { ca: op.ca, servername: 'localhost' } })
      .sendMail({ from: DEMO.jean, to, subject, text: 'Bonjour, voici vos résultats.' });

  async function inbox(user: string, password = passwordOf(op, user)): Promise<{ subject: string; source: Buffer }[]> {
    const client = new ImapFlow({ host: '127.0.0.1', port: op.ports.imaps, secure: true, auth: { user, pass: password }, tls: { ca: op.ca, servername: 'localhost' }, logger: false });
    await client.connect();
    try {
      await client.mailboxOpen('INBOX');
      const out: { subject: string; source: Buffer }[] = [];
      for await (const m of client.fetch('1:*', { envelope: true, source: true })) out.push({ subject: m.envelope?.subject ?? '', source: m.source! });
      return out;
    } finally {
      await client.logout();
    }
  }

  it('the demo patient starts pending: it receives mail, cannot log in by IMAP, and mss patient status says so', async () => {
    expect((await mss('status', DEMO.patient.split('@')[0]!)).out[0]).toBe(`${DEMO.patient}: pending`);
    expect((await send([DEMO.patient], 'Résultats en attente')).response).toMatch(/^250 /);
    const count = await withPatients(op, async (_p, store) => {
      const mailbox = (await store.getMailbox(DEMO.patient))!;
      return (await store.listMessages((await store.getFolder(mailbox.id, 'INBOX'))!.id)).length;
    });
    expect(count).toBe(1);
    await expect(inbox(DEMO.patient, 'anything at all')).rejects.toThrow();
  });

  it('activate-code prints a code for the letter; errors are plain and exit 2', async () => {
    const issued = await mss('activate-code', DEMO.patient);
    expect(issued.out[0]).toMatch(new RegExp(`^${DEMO.patient}  activation code: [A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}  valid until \\d{4}-`));
    const bad = await mss('activate-code', '295109912611199');
    expect(bad.code).toBe(2);
    expect(bad.err[0]).toMatch(/^mss: Not a patient address.*\[invalid-address\]$/);
    expect((await mss('status', '295109912611193')).err[0]).toMatch(/no mailbox for this patient/);
  });

  it('Opposition: opposing closes the mailbox; the next sender gets the failure DSN', async () => {
    const opposed = await mss('oppose', DEMO.patient);
    expect(opposed.code).toBe(0);
    expect(opposed.out[0]).toMatch(/opposed; the mailbox is closed/);
    expect((await mss('status', DEMO.patient)).out[0]).toBe(`${DEMO.patient}: opposed`);
    expect((await mss('oppose', DEMO.patient)).err[0]).toMatch(/already closed.*\[already-opposed\]/);

    const before = (await inbox(DEMO.jean)).length;
    const info = await send([DEMO.patient, DEMO.claire], 'Compte rendu');
    // The transaction is accepted for the other recipient; the patient's part comes back as a DSN.
    expect(info.response).toMatch(/^250 /);
    expect((await inbox(DEMO.claire)).map((m) => m.subject)).toContain('Compte rendu');
    const jean = await inbox(DEMO.jean);
    expect(jean).toHaveLength(before + 1);
    const dsn = jean[jean.length - 1]!;
    expect(dsn.subject).toMatch(/^Message non remis \/ Undelivered message : Compte rendu$/);
    const report = parseDsn(dsn.source);
    expect(report.recipients).toEqual([expect.objectContaining({ finalRecipient: DEMO.patient, action: 'failed', status: '5.2.1' })]);
    expect(report.recipients[0]!.diagnostic).toMatch(/patient opposed/);
    // Nothing new reached the closed mailbox.
    const held = await withPatients(op, async (_p, store) => {
      const mailbox = (await store.getMailbox(DEMO.patient))!;
      return (await store.listMessages((await store.getFolder(mailbox.id, 'INBOX'))!.id)).length;
    });
    expect(held).toBe(1);
  });

  it('an active patient may not log in by IMAP or SMTP (webmail only, by default)', async () => {
    const address = `253072b07300470@${op.config.patients.domain}`;
    await activatePatient(op, address, 'un mot de passe sûr');
    await expect(inbox(address, 'un mot de passe sûr')).rejects.toThrow();
    const smtp = nodemailer.createTransport({ host: '127.0.0.1', port: op.ports.submission, requireTLS: true, auth: { user: address, pass: 'un mot de passe sûr' }, tls: { ca: op.ca, servername: 'localhost' } });
    await expect(smtp.verify()).rejects.toMatchObject({ responseCode: 535 });
  });
});
