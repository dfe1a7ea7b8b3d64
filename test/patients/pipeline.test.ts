import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMailbox } from '../../src/accounts/mailboxes.js';
import { verifyJournal } from '../../src/audit/journal.js';
import { configSchema } from '../../src/config/schema.js';
import { Keyring } from '../../src/crypto/seal.js';
import { parseDsn } from '../../src/mime/dsn.js';
import { decodeWords } from '../../src/mime/encoded-words.js';
import { buildMessageMeta } from '../../src/mime/meta.js';
import { buildXdm } from '../../src/mime/xdm/build.js';
import { Pipeline } from '../../src/pipeline/index.js';
import { Receipts } from '../../src/pipeline/receipts.js';
import { Refusal } from '../../src/pipeline/refusal.js';
import { RelayPipeline, type RelayedMessage } from '../../src/pipeline/relay.js';
import type { Submission } from '../../src/pipeline/types.js';
import { Patients, totpCode } from '../../src/policy/patients.js';
import { LocalNotifier } from '../../src/store/notifier.js';
import { SealedMail } from '../../src/store/sealed-mail.js';
import type { MailboxRow, Store } from '../../src/store/types.js';
import { ENGINES, openTestStore, type TestStore } from '../helpers/engines.js';
import { xdmMessage } from '../mime/xdm-test-message.js';

/**
 * The patient rules in the pipeline, whatever the channel: professionals write first (a patient address gets its
 * mailbox, pending), patients only reply from the webmail to the professional of an open conversation, documents go
 * to their own patient only, and a sender to a patient who opposed gets a failure DSN.
 */

const INS = '279035121518989';
const OTHER_INS = '295109912611193';
const DOMAIN = 'patient.mssante.test';
const PATIENT = `${INS}@${DOMAIN}`;
const OTHER = `${OTHER_INS}@${DOMAIN}`;
const CDA = readFileSync(path.join(import.meta.dirname, '../fixtures/cda/fr/BIO-CR-BIO_2024.01_TSH_1.xml'), 'utf8');

describe.each(ENGINES)('patient rules in the pipeline (%s)', (engine) => {
  let t: TestStore;
  let store: Store;
  let keyring: Keyring;
  let mail: SealedMail;
  let patients: Patients;
  let pipeline: Pipeline;
  let jean: MailboxRow;
  let claire: MailboxRow;
  let cab: MailboxRow;

  beforeEach(async () => {
    t = await openTestStore(engine);
    store = t.store;
    keyring = new Keyring(randomBytes(32));
    mail = new SealedMail(store, keyring);
    const log = pino({ level: 'silent' });
    patients = new Patients({ store, mail, keyring, config: configSchema.parse({}).patients, log });
    pipeline = new Pipeline({
      mail,
      notifier: new LocalNotifier(),
      hostname: 'mx.h.test',
      localDomains: ['h.test', DOMAIN],
      limits: { maxMessageSize: 1_000_000, maxRecipients: 5 },
      log,
      patients,
    });
    jean = await createMailbox(store, keyring, { address: 'jean@h.test', type: 'PER' });
    claire = await createMailbox(store, keyring, { address: 'claire@h.test', type: 'PER' });
    cab = await createMailbox(store, keyring, { address: 'cabinet@h.test', type: 'CAB' });
  });
  afterEach(() => t.dispose());

  const submission = (raw: string, rcptTo: string[], sender: MailboxRow, channel: Submission['channel'] = 'submission'): Submission => ({
    channel,
    sessionId: 's1',
    remoteAddress: '127.0.0.1',
    clientName: 'client.test',
    protocol: channel === 'webmail' ? 'HTTPS' : 'ESMTPSA',
    tls: null,
    sender,
    envelope: { mailFrom: sender.address, rcptTo },
    raw: Buffer.from(raw),
    receivedAt: new Date(),
  });
  const message = (from: string, to: string, id: string, extra: string[] = []) =>
    [`From: ${from}`, `To: ${to}`, `Message-ID: <${id}@h.test>`, 'Subject: Consultation', ...extra, '', 'Texte.', ''].join('\r\n');

  async function refusal(p: Promise<unknown>): Promise<Refusal> {
    try {
      await p;
    } catch (e) {
      if (e instanceof Refusal) return e;
      throw e;
    }
    throw new Error('expected a refusal');
  }

  async function inbox(mailbox: MailboxRow): Promise<Buffer[]> {
    const folder = (await store.getFolder(mailbox.id, 'INBOX'))!;
    const rows = await store.getMessages(folder.id, (await store.listMessages(folder.id)).map((m) => m.uid));
    return Promise.all(rows.map((r) => mail.openBody(mailbox, r)));
  }

  /** The patient, activated with a password and TOTP (as the webmail does it). */
  async function activePatient(address = PATIENT): Promise<MailboxRow> {
    const { code } = await patients.issueActivationCode(address, 'test');
    const secret = randomBytes(20);
    return patients.completeActivation({ addressOrIns: address, code, password: 'un mot de passe sûr', totpSecret: secret, totp: totpCode(secret, Date.now()), remote: 'r' });
  }

  it("a professional's first message to a valid INS creates the mailbox, pending, and delivers it there", async () => {
    const route = await pipeline.checkRecipient(jean, PATIENT.toUpperCase(), { remote: 'r' });
    expect(route).toMatchObject({ kind: 'local', address: PATIENT });
    const accepted = await pipeline.submit(submission(message(jean.address, PATIENT, 'm1'), [PATIENT], jean));
    expect(accepted.delivered.map((d) => d.address)).toEqual([PATIENT]);
    const mailbox = (await store.getMailbox(PATIENT))!;
    expect(mailbox).toMatchObject({ state: 'pending', type: 'PATIENT' });
    expect((await inbox(mailbox)).map((m) => m.toString())).toEqual([expect.stringContaining('Subject: Consultation')]);
    expect((await verifyJournal(store)).ok).toBe(true);
  });

  it('anything else at the patient domain is 550 5.1.1; a non-professional never creates a patient mailbox', async () => {
    for (const rcpt of [`295109912611199@${DOMAIN}`, `secretariat@${DOMAIN}`]) {
      const r = await refusal(pipeline.checkRecipient(jean, rcpt, { remote: 'r' }));
      expect(r.code).toBe('unknown-recipient');
      expect(r.smtpText).toMatch(/^5\.1\.1 /);
    }
    expect((await refusal(pipeline.checkRecipient(cab, PATIENT, { remote: 'r' }))).code).toBe('unknown-recipient');
    expect(await store.getMailbox(PATIENT)).toBeNull();
  });

  it('only PER, ORG and APP mailboxes write to a patient', async () => {
    await activePatient();
    const r = await refusal(pipeline.submit(submission(message(cab.address, PATIENT, 'c1'), [PATIENT], cab)));
    expect(r.code).toBe('patient-sender-not-professional');
    expect(() => patients.checkWriter('PER', 1)).toThrow(/directory/);
    expect(() => patients.checkWriter(null, 0)).not.toThrow();
  });

  it('a patient never sends by SMTP, only replies from the webmail to the professional who wrote', async () => {
    const patient = await activePatient();
    await pipeline.submit(submission(message(jean.address, PATIENT, 'm1', ['Reply-To: secretariat@h.test, jean@h.test']), [PATIENT], jean));
    const reply = (to: string, extra: string[] = []) => message(PATIENT, to, `r${randomBytes(4).toString('hex')}`, extra);
    const answer = ['In-Reply-To: <m1@h.test>', 'References: <m1@h.test>'];

    expect((await refusal(pipeline.submit(submission(reply(jean.address, answer), [jean.address], patient, 'submission')))).code).toBe('patient-may-not-initiate');
    const start = await refusal(pipeline.submit(submission(reply(jean.address), [jean.address], patient, 'webmail')));
    expect(start.code).toBe('patient-not-a-reply');
    expect(start.message).toMatch(/only a health professional can write first/);
    const unknown = ['In-Reply-To: <nothing@h.test>', 'References: <nothing@h.test>'];
    expect((await refusal(pipeline.submit(submission(reply(jean.address, unknown), [jean.address], patient, 'webmail')))).code).toBe('patient-unknown-thread');
    expect((await refusal(pipeline.submit(submission(reply(claire.address, answer), [claire.address], patient, 'webmail')))).code).toBe('patient-reply-recipients');
    expect((await refusal(pipeline.submit(submission(reply(jean.address, answer), [jean.address, claire.address], patient, 'webmail')))).code).toBe(
      'patient-reply-recipients',
    );
    expect((await refusal(pipeline.submit(submission(reply(jean.address, [...answer, `Cc: ${claire.address}`]), [jean.address], patient, 'webmail')))).code).toBe(
      'patient-reply-recipients',
    );
    expect(await inbox(jean)).toHaveLength(0);

    const accepted = await pipeline.submit(submission(reply(jean.address, answer), [jean.address], patient, 'webmail'));
    expect(accepted.delivered.map((d) => d.address)).toEqual([jean.address]);
    const outcomes = (await store.readAudit(0, 200)).filter((r) => r.action === 'refuse').map((r) => r.outcome);
    expect(outcomes).toEqual([
      'patient-may-not-initiate',
      'patient-not-a-reply',
      'patient-unknown-thread',
      'patient-reply-recipients',
      'patient-reply-recipients',
      'patient-reply-recipients',
    ]);
  });

  it('a reply to the patient’s own reply stays in the conversation; X-MSS-MES: FIN closes it', async () => {
    const patient = await activePatient();
    await pipeline.submit(submission(message(jean.address, PATIENT, 'm1'), [PATIENT], jean));
    await pipeline.submit(submission(message(PATIENT, jean.address, 'p1', ['In-Reply-To: <m1@h.test>', 'References: <m1@h.test>']), [jean.address], patient, 'webmail'));
    // The professional answers the patient's message; the patient may answer again.
    await pipeline.submit(submission(message(jean.address, PATIENT, 'm2', ['In-Reply-To: <p1@h.test>']), [PATIENT], jean));
    await pipeline.submit(submission(message(PATIENT, jean.address, 'p2', ['In-Reply-To: <m2@h.test>']), [jean.address], patient, 'webmail'));
    // The professional ends the conversation.
    await pipeline.submit(submission(message(jean.address, PATIENT, 'm3', ['In-Reply-To: <p2@h.test>', 'X-MSS-MES: FIN']), [PATIENT], jean));
    for (const parent of ['m1', 'm2', 'm3']) {
      const r = await refusal(pipeline.submit(submission(message(PATIENT, jean.address, `late-${parent}`, [`In-Reply-To: <${parent}@h.test>`]), [jean.address], patient, 'webmail')));
      expect(r.code).toBe('patient-thread-closed');
    }
    // A new conversation the professional opens is open.
    await pipeline.submit(submission(message(jean.address, PATIENT, 'n1'), [PATIENT], jean));
    await pipeline.submit(submission(message(PATIENT, jean.address, 'q1', ['In-Reply-To: <n1@h.test>']), [jean.address], patient, 'webmail'));
    expect(await inbox(jean)).toHaveLength(3);
  });

  it('documents reach only the patient they are about: 550 5.7.1 otherwise, one patient per message', async () => {
    await activePatient();
    await activePatient(OTHER);
    const xdm = (ins: string, to: string) => xdmMessage(buildXdm({ documents: [{ content: Buffer.from(CDA.replaceAll(INS, ins)) }] }), { from: jean.address, to });
    const ok = await pipeline.submit(submission(xdm(INS, PATIENT), [PATIENT], jean));
    expect(ok.delivered.map((d) => d.address)).toEqual([PATIENT]);

    const wrong = await refusal(pipeline.submit(submission(xdm(OTHER_INS, PATIENT), [PATIENT], jean)));
    expect(wrong.code).toBe('patient-document-mismatch');
    expect(wrong.smtpCode).toBe(550);
    expect(wrong.smtpText).toMatch(/^5\.7\.1 /);
    const both = await refusal(pipeline.submit(submission(xdm(INS, `${PATIENT}, ${OTHER}`), [PATIENT, OTHER], jean)));
    expect(both.code).toBe('patient-documents-several-patients');
    // Between professionals, the document rule does not apply.
    expect((await pipeline.submit(submission(xdm(OTHER_INS, claire.address), [claire.address], jean))).delivered).toHaveLength(1);
    expect(await inbox((await store.getMailbox(OTHER))!)).toHaveLength(0);
    expect(await inbox((await store.getMailbox(PATIENT))!)).toHaveLength(1);
  });

  it('opposition: the other recipients get the message, the sender a failure DSN saying the patient opposed', async () => {
    await pipeline.submit(submission(message(jean.address, PATIENT, 'm1'), [PATIENT], jean));
    await patients.oppose(INS, 'cli');
    const patient = (await store.getMailbox(PATIENT))!;
    expect(patient.state).toBe('disabled');
    // RCPT TO is accepted: the notice comes with the transaction.
    expect(await pipeline.checkRecipient(jean, PATIENT, { remote: 'r' })).toMatchObject({ kind: 'local', address: PATIENT });
    const accepted = await pipeline.submit(submission(message(jean.address, `${PATIENT}, ${claire.address}`, 'm2'), [PATIENT, claire.address], jean));
    expect(accepted.delivered.map((d) => d.address)).toEqual([claire.address]);
    expect(await inbox(claire)).toHaveLength(1);
    expect(await inbox(patient)).toHaveLength(1); // only the message from before the opposition
    const [dsn] = await inbox(jean);
    const parsed = parseDsn(dsn!);
    expect(parsed.recipients).toEqual([expect.objectContaining({ finalRecipient: PATIENT, action: 'failed', status: '5.2.1' })]);
    expect(parsed.originalMessageId).toBe('<m2@h.test>');
    expect(dsn!.toString('utf8')).toMatch(/From: Mail Delivery System <MAILER-DAEMON@h\.test>/);
    // The human part (quoted-printable) says it in French first.
    const human = dsn!.toString('latin1').replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
    expect(Buffer.from(human, 'latin1').toString('utf8')).toContain("Le patient s'est opposé à l'ouverture de sa messagerie de santé");
    expect(parsed.recipients[0]!.diagnostic).toMatch(/^550 5\.2\.1 .*opposed/);
    const refused = (await store.readAudit(0, 200)).filter((r) => r.action === 'refuse');
    expect(refused.map((r) => [r.outcome, JSON.parse(r.detail).recipient])).toEqual([['patient-opposed', PATIENT]]);

    // Every recipient opposed: still accepted, nothing delivered, one more notice.
    const alone = await pipeline.submit(submission(message(jean.address, PATIENT, 'm3'), [PATIENT], jean));
    expect(alone.delivered).toEqual([]);
    expect(await inbox(jean)).toHaveLength(2);
    expect((await verifyJournal(store)).ok).toBe(true);
  });

  it('an application that asked for MDNs gets an error MDN for a document about another patient; nothing is delivered', async () => {
    await activePatient();
    const dpi = await createMailbox(store, keyring, { address: 'dpi@h.test', type: 'APP' });
    const withReceipts = new Pipeline({
      mail,
      notifier: new LocalNotifier(),
      hostname: 'mx.h.test',
      localDomains: ['h.test', DOMAIN],
      limits: { maxMessageSize: 1_000_000, maxRecipients: 5 },
      log: pino({ level: 'silent' }),
      patients,
      receipts: new Receipts({ mail, hostname: 'mx.h.test', localDomains: ['h.test', DOMAIN], log: pino({ level: 'silent' }) }),
    });
    const zip = buildXdm({ documents: [{ content: Buffer.from(CDA.replaceAll(INS, OTHER_INS)) }] });
    const raw = xdmMessage(zip, { from: dpi.address, to: PATIENT, extra: [`Disposition-Notification-To: ${dpi.address}`] });
    const accepted = await withReceipts.submit(submission(raw, [PATIENT], dpi));
    expect(accepted.delivered).toEqual([]);
    expect(await inbox((await store.getMailbox(PATIENT))!)).toHaveLength(0);
    const [mdn] = await inbox(dpi);
    const unfolded = mdn!.toString('utf8').replace(/\r\n[ \t]+/g, ' ');
    expect(unfolded).toMatch(/Disposition: automatic-action\/MDN-sent-automatically; processed\/Error: 204\^Patient du document/);
    const subject = /^Subject: (.*)$/m.exec(unfolded)![1]!;
    expect(decodeWords(subject)).toMatch(/^\[KO Intégration système !\]\[204\] XDM\/1\.0\/DDM\+/);
    const refused = (await store.readAudit(0, 200)).filter((r) => r.action === 'refuse');
    expect(refused.map((r) => [r.outcome, JSON.parse(r.detail).answer])).toEqual([['patient-document-mismatch', 'error-mdn']]);
  });

  it('from another operator: the professional opens a conversation, documents are checked, an opposed patient is refused at RCPT TO with 550 5.2.1', async () => {
    const relay = new RelayPipeline({
      mail,
      notifier: new LocalNotifier(),
      hostname: 'mx.h.test',
      localDomains: ['h.test', DOMAIN],
      limits: { maxMessageSize: 1_000_000, maxRecipients: 5 },
      log: pino({ level: 'silent' }),
      requireProtection: false,
      reporter: pipeline,
      patients,
    });
    const created = await relay.routeRecipient(PATIENT);
    expect(created.mailbox).toMatchObject({ state: 'pending', type: 'PATIENT' });
    const relayed = (raw: string): RelayedMessage => ({
      sessionId: 'r1',
      remoteAddress: '192.0.2.9',
      clientName: 'mx.clinique.test',
      tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' },
      peerDn: 'CN=mx.clinique.test',
      envelope: { mailFrom: 'dr.b@clinique.test', rcptTo: [PATIENT] },
      raw: Buffer.from(raw),
      receivedAt: new Date(),
      authorizeDomain: async () => undefined,
    });
    const wrong = xdmMessage(buildXdm({ documents: [{ content: Buffer.from(CDA.replaceAll(INS, OTHER_INS)) }] }), { from: 'dr.b@clinique.test', to: PATIENT });
    expect((await refusal(relay.accept(relayed(wrong)))).code).toBe('patient-document-mismatch');
    const outcome = await relay.accept(relayed(message('dr.b@clinique.test', PATIENT, 'x1', ['Reply-To: dr.b@clinique.test'])));
    expect(outcome.kind).toBe('delivered');
    const mailbox = (await store.getMailbox(PATIENT))!;
    expect(await inbox(mailbox)).toHaveLength(1);
    const original = buildMessageMeta(Buffer.from(message('dr.b@clinique.test', PATIENT, 'x1')));
    expect(await patients.replyPermission(mailbox, original)).toEqual({ allowed: true, to: ['dr.b@clinique.test'] });
    await patients.oppose(PATIENT, 'cli');
    const r = await refusal(relay.routeRecipient(PATIENT));
    expect(r.code).toBe('patient-opposed');
    expect(r.smtpCode).toBe(550);
    expect(r.smtpText).toMatch(/^5\.2\.1 .*opposed/);
    expect((await refusal(relay.routeRecipient(`jean@${DOMAIN}`))).code).toBe('unknown-recipient');
  });
});
