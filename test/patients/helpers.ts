import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { openKeyring } from '../../src/init.js';
import { Patients, totpCode } from '../../src/policy/patients.js';
import { openStore } from '../../src/store/open.js';
import { SealedMail } from '../../src/store/sealed-mail.js';
import type { Store } from '../../src/store/types.js';
import type { TestOperator } from '../helpers/operator.js';

/** Runs `work` with the operator's Patients service on a second connection to its database (as another process would). */
export async function withPatients<T>(op: TestOperator, work: (patients: Patients, store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(op.config);
  try {
    const keyring = openKeyring(op.config);
    const patients = new Patients({ store, mail: new SealedMail(store, keyring), keyring, config: op.config.patients, log: pino({ level: 'silent' }), limits: op.config.auth });
    return await work(patients, store);
  } finally {
    await store.close();
  }
}

/** Activates a patient mailbox as the webmail would (activation code, password, TOTP enrolment); returns the TOTP secret. */
export function activatePatient(op: TestOperator, addressOrIns: string, password: string): Promise<Buffer> {
  return withPatients(op, async (patients) => {
    const { code } = await patients.issueActivationCode(addressOrIns, 'test');
    const secret = randomBytes(20);
    await patients.completeActivation({ addressOrIns, code, password, totpSecret: secret, totp: totpCode(secret, Date.now()), remote: '127.0.0.1' });
    return secret;
  });
}
