import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMailbox } from '../../src/accounts/mailboxes.js';
import { Keyring } from '../../src/crypto/seal.js';
import type { MailboxRow, Store } from '../../src/store/types.js';
import { ENGINES, openTestStore, type TestStore } from '../helpers/engines.js';

/** The patient tables' port (migration 13) on both engines: accounts, TOTP steps, conversations, purge. */
describe.each(ENGINES)('patient store port (%s)', (engine) => {
  let t: TestStore;
  let store: Store;
  let patient: MailboxRow;

  beforeEach(async () => {
    t = await openTestStore(engine);
    store = t.store;
    patient = await createMailbox(store, new Keyring(randomBytes(32)), { address: '279035121518989@patient.test', type: 'PATIENT', ownerId: '279035121518989' });
  });
  afterEach(() => t.dispose());

  it('creates an account once, updates only the columns given, and reads it back', async () => {
    expect(await store.getPatientAccount(patient.id)).toBeNull();
    expect(await store.transaction((tx) => tx.insertPatientAccount({ mailboxId: patient.id, createdAt: 1000, opposeUntil: 2000 }))).toBe(true);
    expect(await store.transaction((tx) => tx.insertPatientAccount({ mailboxId: patient.id, createdAt: 5, opposeUntil: 6 }))).toBe(false);
    const totp = randomBytes(40);
    expect(await store.transaction((tx) => tx.updatePatientAccount(patient.id, { activationHash: 'h', activationExpires: 3000, totp }))).toBe(true);
    expect(await store.transaction((tx) => tx.updatePatientAccount(patient.id, { activationHash: null }))).toBe(true);
    expect(await store.getPatientAccount(patient.id)).toEqual({
      mailboxId: patient.id,
      createdAt: 1000,
      opposeUntil: 2000,
      activationHash: null,
      activationExpires: 3000,
      activatedAt: null,
      opposedAt: null,
      purgeAfter: null,
      purgedAt: null,
      totp,
      totpLastStep: null,
    });
    expect(await store.transaction((tx) => tx.updatePatientAccount(patient.id + 1000, { opposedAt: 1 }))).toBe(false);
    expect(await store.transaction((tx) => tx.updatePatientAccount(patient.id + 1000, {}))).toBe(false);
  });

  it('accepts a TOTP step only above the last one accepted (no replay, no going back)', async () => {
    await store.transaction((tx) => tx.insertPatientAccount({ mailboxId: patient.id, createdAt: 0, opposeUntil: 1 }));
    const accept = (step: number) => store.transaction((tx) => tx.acceptTotpStep(patient.id, step));
    expect(await accept(100)).toBe(true);
    expect(await accept(100)).toBe(false);
    expect(await accept(99)).toBe(false);
    expect(await accept(101)).toBe(true);
    expect((await store.getPatientAccount(patient.id))!.totpLastStep).toBe(101);
  });

  it('keeps a closed conversation closed and the first record of a message', async () => {
    await store.transaction(async (tx) => {
      await tx.upsertPatientThread(patient.id, 'T', 10, null);
      await tx.upsertPatientThread(patient.id, 'T', 20, 20);
      await tx.upsertPatientThread(patient.id, 'T', 30, null);
      await tx.insertPatientThreadMessage({ mailboxId: patient.id, messageKey: 'M', threadKey: 'T', allowed: Buffer.from('a'), createdAt: 10 });
      await tx.insertPatientThreadMessage({ mailboxId: patient.id, messageKey: 'M', threadKey: 'U', allowed: Buffer.from('b'), createdAt: 11 });
    });
    expect(await store.getPatientThread(patient.id, 'T')).toEqual({ mailboxId: patient.id, threadKey: 'T', closedAt: 20, updatedAt: 30 });
    expect(await store.getPatientThread(patient.id, 'nope')).toBeNull();
    expect(await store.getPatientThreadMessages(patient.id, ['M', 'X'])).toEqual([
      { mailboxId: patient.id, messageKey: 'M', threadKey: 'T', allowed: Buffer.from('a'), createdAt: 10 },
    ]);
    expect(await store.getPatientThreadMessages(patient.id, [])).toEqual([]);
  });

  it('lists accounts due for purge, then forgets their conversations and secrets', async () => {
    await store.transaction(async (tx) => {
      await tx.insertPatientAccount({ mailboxId: patient.id, createdAt: 0, opposeUntil: 1 });
      await tx.updatePatientAccount(patient.id, { opposedAt: 5, purgeAfter: 100, totp: Buffer.from('secret'), totpLastStep: 3 });
      await tx.upsertPatientThread(patient.id, 'T', 10, null);
      await tx.insertPatientThreadMessage({ mailboxId: patient.id, messageKey: 'M', threadKey: 'T', allowed: Buffer.from('a'), createdAt: 10 });
    });
    expect(await store.listPatientsToPurge(99, 10)).toEqual([]);
    expect((await store.listPatientsToPurge(100, 10)).map((a) => a.mailboxId)).toEqual([patient.id]);
    await store.transaction((tx) => tx.purgePatientData(patient.id, 150));
    const account = (await store.getPatientAccount(patient.id))!;
    expect(account).toMatchObject({ purgedAt: 150, totp: null, totpLastStep: null, opposedAt: 5 });
    expect(await store.getPatientThread(patient.id, 'T')).toBeNull();
    expect(await store.getPatientThreadMessages(patient.id, ['M'])).toEqual([]);
    expect(await store.listPatientsToPurge(1000, 10)).toEqual([]);
  });
});
