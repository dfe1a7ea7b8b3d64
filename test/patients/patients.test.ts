import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMailbox } from '../../src/accounts/mailboxes.js';
import { verifyPassword } from '../../src/accounts/password.js';
import { Keyring } from '../../src/crypto/seal.js';
import { buildMessageMeta } from '../../src/mime/meta.js';
import { configSchema } from '../../src/config/schema.js';
import { PatientError, Patients, totpCode } from '../../src/policy/patients.js';
import { SealedMail } from '../../src/store/sealed-mail.js';
import type { MailboxRow, Store } from '../../src/store/types.js';
import { ENGINES, openTestStore, type TestStore } from '../helpers/engines.js';

const INS = '279035121518989';
const OTHER_INS = '295109912611193';
const DOMAIN = 'patient.mssante.test';
const ADDRESS = `${INS}@${DOMAIN}`;
const DAY = 24 * 60 * 60_000;
const T0 = Date.UTC(2026, 10, 26, 8, 0, 0);

const patientsConfig = configSchema.parse({}).patients;

async function rejection(p: Promise<unknown>): Promise<PatientError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof PatientError) return e;
    throw e;
  }
  throw new Error('expected a PatientError');
}

describe('patient addresses (INS matricule at the patient domain)', () => {
  const patients = new Patients({
    store: {} as Store,
    mail: {} as SealedMail,
    keyring: new Keyring(randomBytes(32)),
    config: patientsConfig,
    log: pino({ level: 'silent' }),
  });

  it('reads the INS of a valid address, case and Corsican departments included', () => {
    expect(patients.domain).toBe(DOMAIN);
    expect(patients.insOf(ADDRESS)).toBe(INS);
    expect(patients.insOf(`${INS}@PATIENT.mssante.test`)).toBe(INS);
    expect(patients.insOf('253072b07300470@patient.mssante.test')).toBe('253072B07300470');
    expect(patients.insOf('295109912611199@patient.mssante.test')).toBeNull(); // wrong key
    expect(patients.insOf(`${INS}@hopital.test`)).toBeNull(); // other domain
    expect(patients.insOf(`2790351215189@${DOMAIN}`)).toBeNull(); // 13 characters
    expect(patients.insOf(`jean@${DOMAIN}`)).toBeNull();
  });

  it('turns an INS or an address into the normalised address', () => {
    expect(patients.addressOf(INS)).toBe(ADDRESS);
    expect(patients.addressOf(` ${INS.toUpperCase()} `)).toBe(ADDRESS);
    expect(patients.addressOf(ADDRESS.toUpperCase())).toBe(ADDRESS);
    expect(patients.addressOf('295109912611199')).toBeNull();
    expect(patients.addressOf(`${INS}@elsewhere.test`)).toBeNull();
    expect(patients.addressOf('')).toBeNull();
  });
});

describe.each(ENGINES)('patient life cycle (%s)', (engine) => {
  let t: TestStore;
  let store: Store;
  let keyring: Keyring;
  let now: number;
  let patients: Patients;

  beforeEach(async () => {
    t = await openTestStore(engine);
    store = t.store;
    keyring = new Keyring(randomBytes(32));
    now = T0;
    patients = new Patients({
      store,
      mail: new SealedMail(store, keyring),
      keyring,
      config: { ...patientsConfig, activationCodeHours: 48, opposeWindowDays: 30, graceDays: 10 },
      log: pino({ level: 'silent' }),
      now: () => now,
      limits: { maxFailures: 3, lockoutMs: 60_000 },
    });
  });
  afterEach(() => t.dispose());

  async function activate(password = 'un mot de passe sûr', secret = randomBytes(20)): Promise<{ mailbox: MailboxRow; secret: Buffer }> {
    const { code } = await patients.issueActivationCode(INS, 'cli');
    const mailbox = await patients.completeActivation({ addressOrIns: INS, code, password, totpSecret: secret, totp: totpCode(secret, now), remote: '192.0.2.1' });
    return { mailbox, secret };
  }

  it('creates a pending mailbox with an activation code; the code checks once typed loosely, and is audited', async () => {
    const issued = await patients.issueActivationCode(INS, 'cli');
    expect(issued.address).toBe(ADDRESS);
    expect(issued.code).toMatch(/^[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}$/);
    expect(issued.expiresAt).toBe(T0 + 48 * 60 * 60_000);
    const mailbox = (await store.getMailbox(ADDRESS))!;
    expect(mailbox).toMatchObject({ type: 'PATIENT', state: 'pending', ownerId: INS, passwordHash: null });
    expect(await patients.status(mailbox)).toBe('pending');
    const account = (await store.getPatientAccount(mailbox.id))!;
    expect(account.opposeUntil).toBe(T0 + 30 * DAY);
    // Only a keyed hash of the code is stored.
    expect(account.activationHash).not.toContain(issued.code.replace(/-/g, ''));
    const typed = ` ${issued.code.toLowerCase().replace(/-/g, ' ')} `;
    expect((await patients.checkActivationCode(ADDRESS, typed, '192.0.2.1')).id).toBe(mailbox.id);
    const actions = (await store.readAudit(0, 100)).map((r) => `${r.action}:${r.outcome}`);
    expect(actions).toEqual(expect.arrayContaining(['mailbox-create:ok', 'patient-activation-code:issued']));
  });

  it('refuses a wrong code, then locks the address out after the limit, even for the right code', async () => {
    const { code } = await patients.issueActivationCode(INS, 'cli');
    expect((await rejection(patients.checkActivationCode(INS, 'AAAA-AAAA-AAAA', 'r'))).code).toBe('invalid-code');
    expect((await rejection(patients.checkActivationCode(INS, 'not a code', 'r'))).code).toBe('invalid-code');
    const third = await rejection(patients.checkActivationCode(INS, 'BBBB-BBBB-BBBB', 'r'));
    expect(third.code).toBe('locked');
    expect(third.fr).toMatch(/Trop de tentatives/);
    expect((await rejection(patients.checkActivationCode(INS, code, 'r'))).code).toBe('locked');
    now += 60_001;
    expect((await patients.checkActivationCode(INS, code, 'r')).address).toBe(ADDRESS);
    expect((await store.readAudit(0, 100)).filter((r) => r.action === 'patient-activate' && r.outcome === 'bad-code')).toHaveLength(3);
  });

  it('refuses an expired code and an unknown address alike (no hint the mailbox exists)', async () => {
    const { code } = await patients.issueActivationCode(INS, 'cli');
    now += 48 * 60 * 60_000;
    expect((await rejection(patients.checkActivationCode(INS, code, 'r'))).code).toBe('code-expired');
    expect((await rejection(patients.checkActivationCode(OTHER_INS, code, 'r'))).code).toBe('invalid-code');
    expect((await rejection(patients.checkActivationCode('jean@hopital.test', code, 'r'))).code).toBe('invalid-address');
    // A new code replaces the old one.
    const again = await patients.issueActivationCode(INS, 'cli');
    expect((await rejection(patients.checkActivationCode(INS, code, 'r'))).code).toBe('invalid-code');
    expect((await patients.checkActivationCode(INS, again.code, 'r')).address).toBe(ADDRESS);
  });

  it('activates with password and TOTP: the mailbox logs in, the code is spent, the secret sealed', async () => {
    const secret = randomBytes(20);
    const { code } = await patients.issueActivationCode(INS, 'cli');
    const base = { addressOrIns: ADDRESS, code, totpSecret: secret, remote: 'r' };
    expect((await rejection(patients.completeActivation({ ...base, password: 'court', totp: totpCode(secret, now) }))).code).toBe('weak-password');
    expect((await rejection(patients.completeActivation({ ...base, password: 'x'.repeat(1025), totp: totpCode(secret, now) }))).code).toBe('weak-password');
    expect((await rejection(patients.completeActivation({ ...base, totpSecret: randomBytes(15), password: 'un mot de passe sûr', totp: '123456' }))).code).toBe('bad-totp-secret');
    expect((await rejection(patients.completeActivation({ ...base, totpSecret: randomBytes(65), password: 'un mot de passe sûr', totp: '123456' }))).code).toBe('bad-totp-secret');
    const wrong = totpCode(secret, now + 5 * 30_000);
    expect((await rejection(patients.completeActivation({ ...base, password: 'un mot de passe sûr', totp: wrong }))).code).toBe('bad-totp');
    const mailbox = await patients.completeActivation({ ...base, password: 'un mot de passe sûr', totp: totpCode(secret, now) });
    expect(mailbox.state).toBe('active');
    const row = (await store.getMailbox(ADDRESS))!;
    expect(row.state).toBe('active');
    expect(await verifyPassword('un mot de passe sûr', row.passwordHash)).toBe(true);
    expect(await patients.status(row)).toBe('active');
    const account = (await store.getPatientAccount(row.id))!;
    expect(account).toMatchObject({ activatedAt: T0, activationHash: null, activationExpires: null });
    expect(account.totp!.includes(secret)).toBe(false);
    expect((await rejection(patients.checkActivationCode(INS, code, 'r'))).code).toBe('invalid-code');
    expect((await rejection(patients.issueActivationCode(INS, 'cli'))).code).toBe('not-pending');
  });

  it('verifies TOTP codes within one step of drift, never the same step twice, and locks out', async () => {
    const { mailbox, secret } = await activate();
    // The activation used the current step: the same code is a replay.
    expect(await patients.verifyTotp(mailbox, totpCode(secret, now), 'r')).toBe(false);
    now += 30_000;
    expect(await patients.verifyTotp(mailbox, totpCode(secret, now + 30_000), 'r')).toBe(true); // one step ahead
    expect(await patients.verifyTotp(mailbox, totpCode(secret, now), 'r')).toBe(false); // a step before the last one used
    now += 5 * 30_000;
    expect(await patients.verifyTotp(mailbox, totpCode(secret, now - 2 * 30_000), 'r')).toBe(false); // two steps late
    expect(await patients.verifyTotp(mailbox, 'abcdef', 'r')).toBe(false);
    // Three failures since the last success: locked, even with a good code.
    expect(await patients.verifyTotp(mailbox, totpCode(secret, now), 'r')).toBe(false);
    now += 60_001;
    expect(await patients.verifyTotp(mailbox, totpCode(secret, now), 'r')).toBe(true);
    const outcomes = (await store.readAudit(0, 200)).filter((r) => r.action === 'patient-totp').map((r) => r.outcome);
    expect(outcomes).toEqual(['replayed', 'ok', 'replayed', 'bad-code', 'bad-code', 'locked', 'ok']);
  });

  it('refuses TOTP for a mailbox that never enrolled one; an activation code sends it back to pending for the patient to enrol', async () => {
    const manual = await createMailbox(store, keyring, { address: `${OTHER_INS}@${DOMAIN}`, type: 'PATIENT', ownerId: OTHER_INS, password: 'un mot de passe sûr' });
    expect(await patients.status(manual)).toBe('active');
    expect(await patients.verifyTotp(manual, '123456', 'r')).toBe(false);
    expect((await store.readAudit(0, 100)).some((r) => r.action === 'patient-totp' && r.outcome === 'not-enrolled')).toBe(true);
    const { code } = await patients.issueActivationCode(OTHER_INS, 'cli');
    const pending = (await store.getMailbox(manual.address))!;
    expect(pending.state).toBe('pending');
    expect(await patients.status(pending)).toBe('pending');
    const secret = randomBytes(20);
    await patients.completeActivation({ addressOrIns: OTHER_INS, code, password: 'un autre mot de passe', totpSecret: secret, totp: totpCode(secret, now), remote: 'r' });
    now += 30_000;
    expect(await patients.verifyTotp(manual, totpCode(secret, now), 'r')).toBe(true);
    expect((await rejection(patients.issueActivationCode(OTHER_INS, 'cli'))).code).toBe('not-pending');
  });

  it('opposition closes the mailbox within the window, once; after the window only on the operator’s say', async () => {
    await patients.issueActivationCode(INS, 'cli');
    await patients.oppose(INS, 'cli');
    const row = (await store.getMailbox(ADDRESS))!;
    expect(row.state).toBe('disabled');
    expect(await patients.status(row)).toBe('opposed');
    expect(await patients.isOpposed(row)).toBe(true);
    expect((await store.getPatientAccount(row.id))!).toMatchObject({ opposedAt: T0, purgeAfter: T0 + 10 * DAY, activationHash: null });
    expect((await rejection(patients.oppose(INS, 'cli'))).code).toBe('already-opposed');

    // Another patient, active, past the window.
    await patients.issueActivationCode(OTHER_INS, 'cli');
    now += 30 * DAY + 1;
    const late = await rejection(patients.oppose(OTHER_INS, 'webmail'));
    expect(late.code).toBe('oppose-window-closed');
    await patients.oppose(OTHER_INS, 'cli', { outsideWindow: true });
    expect(await patients.status((await store.getMailbox(`${OTHER_INS}@${DOMAIN}`))!)).toBe('opposed');
    expect((await store.readAudit(0, 100)).filter((r) => r.action === 'patient-oppose').map((r) => r.actor)).toEqual(['cli', 'cli']);
  });

  it('an INS with no mailbox can be opposed before any message: a closed mailbox is created', async () => {
    await patients.oppose(ADDRESS, 'cli');
    expect(await patients.status((await store.getMailbox(ADDRESS))!)).toBe('opposed');
  });

  it('purges the messages of an opposed mailbox after the grace period, not before', async () => {
    const mail = new SealedMail(store, keyring);
    await patients.issueActivationCode(INS, 'cli');
    const mailbox = (await store.getMailbox(ADDRESS))!;
    await store.transaction(async (tx) => {
      await mail.append(tx, mailbox, 'INBOX', Buffer.from('From: jean@h.test\r\nSubject: a\r\n\r\nx\r\n'));
      await mail.append(tx, mailbox, 'INBOX', Buffer.from('From: jean@h.test\r\nSubject: b\r\n\r\ny\r\n'));
      await tx.upsertPatientThread(mailbox.id, 'T', now, null);
    });
    await patients.oppose(INS, 'cli');
    const inbox = (await store.getFolder(mailbox.id, 'INBOX'))!;
    now += 10 * DAY - 1;
    expect(await patients.purgeDue()).toBe(0);
    expect(await store.listMessages(inbox.id)).toHaveLength(2);
    now += 1;
    expect(await patients.purgeDue()).toBe(1);
    expect(await store.listMessages(inbox.id)).toHaveLength(0);
    expect(await store.getPatientThread(mailbox.id, 'T')).toBeNull();
    expect(await patients.status((await store.getMailbox(ADDRESS))!)).toBe('purged');
    expect(await patients.purgeDue()).toBe(0);
    const purge = (await store.readAudit(0, 100)).find((r) => r.action === 'patient-purge')!;
    expect(JSON.parse(purge.detail)).toEqual({ messages: 2 });
  });

  it('routes the patient domain: valid INS (created pending for a professional), anything else 5.1.1', async () => {
    expect(await patients.recipient('claire@hopital.test', 'jean@hopital.test')).toBeNull();
    await expect(patients.recipient(`jean@${DOMAIN}`, 'jean@hopital.test')).rejects.toMatchObject({ code: 'unknown-recipient' });
    await expect(patients.recipient(`295109912611199@${DOMAIN}`, 'jean@hopital.test')).rejects.toMatchObject({ code: 'unknown-recipient' });
    await expect(patients.recipient(ADDRESS, null)).rejects.toMatchObject({ code: 'unknown-recipient' });
    const created = (await patients.recipient(ADDRESS.toUpperCase(), 'jean@hopital.test'))!;
    expect(created).toMatchObject({ address: ADDRESS, state: 'pending', type: 'PATIENT' });
    expect((await patients.recipient(ADDRESS, 'claire@hopital.test'))!.id).toBe(created.id);
    const record = (await store.readAudit(0, 10)).find((r) => r.action === 'mailbox-create')!;
    expect(record.actor).toBe('jean@hopital.test');
    expect(JSON.parse(record.detail)).toMatchObject({ by: 'first-message', state: 'pending' });

    const manual = new Patients({ store, mail: new SealedMail(store, keyring), keyring, config: { ...patientsConfig, autoCreate: false }, log: pino({ level: 'silent' }) });
    await expect(manual.recipient(`${OTHER_INS}@${DOMAIN}`, 'jean@hopital.test')).rejects.toMatchObject({ code: 'unknown-recipient' });
  });

  it('replyPermission: only for a message a professional sent in an open conversation', async () => {
    const { mailbox } = await activate();
    const meta = (headers: string) => buildMessageMeta(Buffer.from(`${headers}\r\n\r\nx\r\n`));
    const pro = meta('From: Dr Jean <jean@hopital.test>\r\nReply-To: secretariat@hopital.test\r\nMessage-ID: <m1@hopital.test>\r\nSubject: Résultats');
    expect(await patients.replyPermission(mailbox, pro)).toMatchObject({ allowed: false, code: 'patient-unknown-thread' });
    await store.transaction((tx) => patients.threads.recordProfessionalMessage(tx, mailbox, pro, false, now));
    expect(await patients.replyPermission(mailbox, pro)).toEqual({ allowed: true, to: ['secretariat@hopital.test'] });
    const fin = meta('From: jean@hopital.test\r\nMessage-ID: <m2@hopital.test>\r\nIn-Reply-To: <m1@hopital.test>\r\nReferences: <m1@hopital.test>');
    await store.transaction((tx) => patients.threads.recordProfessionalMessage(tx, mailbox, fin, true, now));
    const closed = await patients.replyPermission(mailbox, pro);
    expect(closed).toMatchObject({ allowed: false, code: 'patient-thread-closed' });
    expect(closed.allowed === false && closed.fr).toMatch(/clos cette conversation/);
    expect(await patients.replyPermission(mailbox, meta('From: x@y.test\r\nSubject: sans identifiant'))).toMatchObject({ allowed: false });
  });
});
