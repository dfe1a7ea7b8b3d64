import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Authenticator, patientMayUse } from '../../src/accounts/authenticator.js';
import { createMailbox } from '../../src/accounts/mailboxes.js';
import { Keyring } from '../../src/crypto/seal.js';
import type { Store } from '../../src/store/types.js';
import { openTestStore, type TestStore } from '../helpers/engines.js';

/** Where patients log in: never by SMTP, by IMAP only when configured, and never while pending or opposed. */
describe('patient logins', () => {
  let t: TestStore;
  let store: Store;
  const via = (protocol: string) => ({ protocol, remote: '192.0.2.7' });

  beforeEach(async () => {
    t = await openTestStore('sqlite');
    store = t.store;
    const keyring = new Keyring(randomBytes(32));
    await createMailbox(store, keyring, { address: '279035121518989@patient.test', type: 'PATIENT', ownerId: '279035121518989', password: 'mot de passe patient' });
    await createMailbox(store, keyring, { address: 'jean@h.test', type: 'PER', password: 'mot de passe jean' });
  });
  afterEach(() => t.dispose());

  it('knows which protocols a patient may use', () => {
    expect(patientMayUse('smtp', { allowImap: true })).toBe(false);
    expect(patientMayUse('imap', { allowImap: false })).toBe(false);
    expect(patientMayUse('imap', { allowImap: true })).toBe(true);
    expect(patientMayUse('webmail', { allowImap: false })).toBe(true);
  });

  it('refuses an active patient over SMTP, and over IMAP unless allowed; professionals are not concerned', async () => {
    const strict = new Authenticator(store, { maxFailures: 5, lockoutMs: 60_000 });
    const open = new Authenticator(store, { maxFailures: 5, lockoutMs: 60_000 }, { allowImap: true });
    const patient = '279035121518989@patient.test';
    expect(await strict.login(patient, 'mot de passe patient', via('smtp'))).toEqual({ ok: false, reason: 'disabled' });
    expect(await strict.login(patient, 'mot de passe patient', via('imap'))).toEqual({ ok: false, reason: 'disabled' });
    expect(await strict.login(patient, 'mot de passe patient', via('webmail'))).toMatchObject({ ok: true });
    expect(await open.login(patient, 'mot de passe patient', via('imap'))).toMatchObject({ ok: true });
    expect(await open.login(patient, 'mot de passe patient', via('smtp'))).toEqual({ ok: false, reason: 'disabled' });
    expect(await strict.login('jean@h.test', 'mot de passe jean', via('smtp'))).toMatchObject({ ok: true });
    const outcomes = (await store.readAudit(0, 100)).filter((r) => r.action === 'login-failed').map((r) => r.outcome);
    expect(outcomes).toEqual(['patient-no-smtp', 'patient-no-imap', 'patient-no-smtp']);
  });

  it('refuses a pending or opposed patient everywhere', async () => {
    const auth = new Authenticator(store, { maxFailures: 5, lockoutMs: 60_000 }, { allowImap: true });
    const patient = (await store.getMailbox('279035121518989@patient.test'))!;
    for (const state of ['pending', 'disabled'] as const) {
      await store.transaction((tx) => tx.updateMailbox(patient.id, { state }));
      for (const protocol of ['webmail', 'imap']) {
        expect(await auth.login(patient.address, 'mot de passe patient', via(protocol))).toEqual({ ok: false, reason: 'disabled' });
      }
    }
  });
});
