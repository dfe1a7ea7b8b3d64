import { audit } from '../audit/journal.js';
import type { MailboxRow, Store } from '../store/types.js';
import { verifyPassword } from './password.js';

export type LoginResult =
  | { ok: true; mailbox: MailboxRow }
  | { ok: false; reason: 'bad-credentials' | 'locked' | 'disabled' };

export interface LoginLimits {
  maxFailures: number;
  lockoutMs: number;
}

/** Where patients may log in (src/policy/patients.ts): never by SMTP (they reply from the webmail); IMAP when allowed. */
export interface PatientAccess {
  allowImap: boolean;
}

/** Whether a patient mailbox may log in over this protocol. */
export function patientMayUse(protocol: string, access: PatientAccess): boolean {
  if (protocol === 'smtp') return false;
  if (protocol === 'imap') return access.allowImap;
  return true;
}

/**
 * Password login shared by SMTP AUTH, IMAP LOGIN/AUTHENTICATE and later the webmail. Failures are counted per
 * address in the store (so every process sees them), lock the address out after `maxFailures`, and every
 * attempt is audited. The answer never tells whether the address exists. Only active mailboxes log in (a patient's
 * pending or opposed one does not), and a patient only where `patients` allows (default: neither SMTP nor IMAP).
 */
export class Authenticator {
  constructor(
    private readonly store: Store,
    private readonly limits: LoginLimits,
    private readonly patients: PatientAccess = { allowImap: false },
  ) {}

  async login(addressInput: string, password: string, via: { protocol: string; remote: string }): Promise<LoginResult> {
    const address = addressInput.trim().toLowerCase();
    const key = `login:${address}`;
    const now = Date.now();
    const state = await this.store.getAuthFailures(key);
    const detail = { protocol: via.protocol, remote: via.remote };
    if (state.lockedUntil > now) {
      await audit(this.store, { actor: address, action: 'login-failed', object: address, outcome: 'locked', detail });
      return { ok: false, reason: 'locked' };
    }
    const mailbox = await this.store.getMailbox(address);
    const good = await verifyPassword(password, mailbox?.passwordHash ?? null);
    if (!good || !mailbox) {
      await this.store.transaction(async (tx) => {
        await tx.recordAuthFailure(key, now, this.limits.maxFailures, this.limits.lockoutMs);
      });
      await audit(this.store, { actor: address, action: 'login-failed', object: address, outcome: 'bad-credentials', detail });
      return { ok: false, reason: 'bad-credentials' };
    }
    if (mailbox.state !== 'active') {
      await audit(this.store, { actor: address, action: 'login-failed', object: address, outcome: `mailbox-${mailbox.state}`, detail });
      return { ok: false, reason: 'disabled' };
    }
    if (mailbox.type === 'PATIENT' && !patientMayUse(via.protocol, this.patients)) {
      await audit(this.store, { actor: address, action: 'login-failed', object: address, outcome: `patient-no-${via.protocol}`, detail });
      return { ok: false, reason: 'disabled' };
    }
    if (state.failures > 0) await this.store.transaction((tx) => tx.clearAuthFailures(key));
    await audit(this.store, { actor: address, action: 'login', object: address, outcome: 'ok', detail });
    return { ok: true, mailbox };
  }
}
