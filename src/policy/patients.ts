import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import type { Logger } from 'pino';
import { DEFAULT_FOLDERS } from '../accounts/mailboxes.js';
import { hashPassword } from '../accounts/password.js';
import { appendAudit, audit } from '../audit/journal.js';
import type { Config } from '../config/schema.js';
import { open, seal, type Keyring } from '../crypto/seal.js';
import { isNir } from '../directory/identifiers.js';
import { buildDsn, type BuiltDsn } from '../mime/dsn.js';
import type { MessageMeta } from '../mime/types.js';
import type { XdmCdaSummary } from '../mime/xdm/headers.js';
import { Refusal, REFUSALS } from '../pipeline/refusal.js';
import type { PatientAccountRow } from '../store/patient-types.js';
import type { SealedMail } from '../store/sealed-mail.js';
import type { MailboxRow, Store, StoreTx } from '../store/types.js';
import { PatientThreads } from './patient-threads.js';

/**
 * Patient mailboxes (DOMAIN.md §1.5): `<INS matricule>@<patient domain>`, created `pending` by a professional's
 * first message (or by `mss patient activate-code`), activated by the patient with a one-time code (mailed by
 * post in a real deployment), a password and a TOTP second factor (RFC 6238), or closed by the patient's
 * opposition: then the messages it held are destroyed after a grace period, and later senders are told.
 *
 * The mailbox row's `state` says who may log in (`pending` and `disabled` may not); `patient_accounts` keeps the
 * life cycle. Activation codes are kept as keyed hashes, the TOTP secret sealed under the mailbox key. Failed codes
 * are counted with the login failures (`auth_failures`, every process sees them) and lock the address out.
 */

export type PatientStatus = 'pending' | 'active' | 'opposed' | 'purged';

export type PatientsConfig = Config['patients'];

/** An error a person can act on: `fr` and `en` are shown to the patient (the webmail) or the operator (the CLI). */
export class PatientError extends Error {
  constructor(
    readonly code: string,
    readonly fr: string,
    readonly en: string,
  ) {
    super(en);
    this.name = 'PatientError';
  }
}

const ERRORS = {
  'invalid-address': {
    fr: "Ce n'est pas une adresse de patient : un matricule INS de 15 caractères (NIR ou NIA avec sa clé), suivi de @{domain} si vous donnez l'adresse",
    en: 'Not a patient address: a 15-character INS matricule (NIR or NIA with its key), followed by @{domain} when the address is given',
  },
  'invalid-code': {
    fr: "Code d'activation incorrect. Vérifiez le courrier reçu et saisissez le code tel qu'il est écrit.",
    en: 'Wrong activation code. Check the letter you received and type the code as it is written.',
  },
  'code-expired': {
    fr: "Ce code d'activation a expiré : demandez-en un nouveau.",
    en: 'This activation code has expired: ask for a new one.',
  },
  locked: {
    fr: 'Trop de tentatives incorrectes : réessayez plus tard.',
    en: 'Too many wrong attempts: try again later.',
  },
  'not-pending': {
    fr: "Cette messagerie n'attend pas d'activation (elle est déjà activée ou fermée).",
    en: 'This mailbox is not waiting for activation (it is already active or closed).',
  },
  'weak-password': {
    fr: 'Le mot de passe doit contenir au moins 10 caractères (et au plus 1024).',
    en: 'The password must have at least 10 characters (and at most 1024).',
  },
  'bad-totp-secret': {
    fr: "La clé de l'application d'authentification est invalide : recommencez l'enrôlement.",
    en: 'The authenticator app key is invalid: start the enrolment again.',
  },
  'bad-totp': {
    fr: "Le code à 6 chiffres de l'application d'authentification est incorrect : vérifiez l'heure de votre téléphone et saisissez le code affiché.",
    en: 'The 6-digit code of the authenticator app is wrong: check the time on your phone and type the code shown.',
  },
  'already-opposed': {
    fr: 'Cette messagerie est déjà fermée : vous vous êtes opposé à son ouverture.',
    en: 'This mailbox is already closed: you opposed to its opening.',
  },
  'oppose-window-closed': {
    fr: "Le délai d'opposition est dépassé : contactez l'opérateur pour fermer cette messagerie.",
    en: 'The opposition period is over: contact the operator to close this mailbox.',
  },
  'unknown-patient': {
    fr: "Aucune messagerie n'existe pour ce patient.",
    en: 'There is no mailbox for this patient.',
  },
} as const;

export type PatientErrorCode = keyof typeof ERRORS;

function patientError(code: PatientErrorCode, domain: string): PatientError {
  const e = ERRORS[code];
  return new PatientError(code, e.fr.replace('{domain}', domain), e.en.replace('{domain}', domain));
}

const DAY_MS = 24 * 60 * 60_000;
const HOUR_MS = 60 * 60_000;
/** Activation codes: 12 characters of an alphabet without look-alikes (0/O, 1/I): 60 bits. */
const CODE_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
const CODE_LENGTH = 12;
const ACTIVATION_INFO = Buffer.from('mss patient activation v1');
/** TOTP (RFC 6238) as every authenticator app reads it: SHA-1, 6 digits, 30 s; one step of drift either side. */
const TOTP_PARAMS = { algorithm: 'SHA1', digits: 6, period: 30 } as const;
const TOTP_WINDOW = 1;
const TOTP_SECRET_MIN = 16;
const TOTP_SECRET_MAX = 64;
const PASSWORD_MIN = 10;
const PASSWORD_MAX = 1024;
/** Professionals who may write first (DOMAIN.md §1.4–1.5). */
export const PROFESSIONAL_TYPES: readonly MailboxRow['type'][] = ['PER', 'ORG', 'APP'];

const totpAad = (mailboxId: number) => `patient-totp|${mailboxId}`;

/** A new activation code, grouped by 4 for reading aloud: `ABCD-EFGH-JKLM`. */
function newCode(): string {
  const bytes = randomBytes(CODE_LENGTH);
  let code = '';
  for (let i = 0; i < CODE_LENGTH; i++) code += CODE_ALPHABET[bytes[i]! & 31];
  return `${code.slice(0, 4)}-${code.slice(4, 8)}-${code.slice(8)}`;
}

/** A typed code without spaces, dashes or case; null when it cannot be a code. */
function normaliseCode(input: string): string | null {
  const code = input.replace(/[\s-]/g, '').toUpperCase();
  return code.length === CODE_LENGTH && [...code].every((c) => CODE_ALPHABET.includes(c)) ? code : null;
}

function totpOf(secret: Buffer): TOTP {
  return new TOTP({ ...TOTP_PARAMS, secret: Secret.fromHex(secret.toString('hex')) });
}

/**
 * The TOTP step a 6-digit code is valid for at `now` (within ±1 step), or null. A code of another shape never
 * reaches the library.
 */
export function totpStep(secret: Buffer, code: string, now: number): number | null {
  const token = code.replace(/\s/g, '');
  if (!/^\d{6}$/.test(token)) return null;
  const totp = totpOf(secret);
  const delta = totp.validate({ token, timestamp: now, window: TOTP_WINDOW });
  return delta === null ? null : totp.counter({ timestamp: now }) + delta;
}

/** The code an authenticator app shows at `now` (tests, and a demo that has no phone). */
export function totpCode(secret: Buffer, now: number): string {
  return totpOf(secret).generate({ timestamp: now });
}

/** The status an account row gives (no row: a PATIENT mailbox made by `mss mailbox add`, whose mailbox state tells). */
export function statusOf(mailbox: MailboxRow, account: PatientAccountRow | null): PatientStatus {
  if (account?.purgedAt != null) return 'purged';
  if (account?.opposedAt != null) return 'opposed';
  if (account?.activatedAt != null) return 'active';
  if (!account) return mailbox.state === 'active' ? 'active' : mailbox.state === 'disabled' ? 'opposed' : 'pending';
  return 'pending';
}

export interface PatientsDeps {
  store: Store;
  mail: SealedMail;
  keyring: Keyring;
  config: PatientsConfig;
  log: Logger;
  now?: () => number;
  /** Wrong activation or TOTP codes before a lockout, and its length; default 5 and 15 minutes (the `auth` config). */
  limits?: { maxFailures: number; lockoutMs: number };
}

export class Patients {
  readonly domain: string;
  /** The conversations professionals opened with patients (the reply-only rule). */
  readonly threads: PatientThreads;
  readonly #store: Store;
  readonly #mail: SealedMail;
  readonly #keyring: Keyring;
  readonly #config: PatientsConfig;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #limits: { maxFailures: number; lockoutMs: number };

  constructor(deps: PatientsDeps) {
    this.domain = deps.config.domain.trim().toLowerCase();
    this.threads = new PatientThreads(deps.mail);
    this.#store = deps.store;
    this.#mail = deps.mail;
    this.#keyring = deps.keyring;
    this.#config = deps.config;
    this.#log = deps.log;
    this.#now = deps.now ?? Date.now;
    this.#limits = deps.limits ?? { maxFailures: 5, lockoutMs: 15 * 60_000 };
  }

  get config(): PatientsConfig {
    return this.#config;
  }

  /** Whether the address is at the patient domain (valid INS or not). */
  isPatientDomain(address: string): boolean {
    const a = address.trim().toLowerCase();
    return a.slice(a.lastIndexOf('@') + 1) === this.domain;
  }

  /** The INS matricule of an address at the patient domain with a valid key, else null. */
  insOf(address: string): string | null {
    const a = address.trim().toLowerCase();
    const at = a.lastIndexOf('@');
    if (at < 0 || a.slice(at + 1) !== this.domain) return null;
    const local = a.slice(0, at).toUpperCase();
    return isNir(local) ? local : null;
  }

  /** Accepts an INS matricule or a full address; returns the normalised address or null. */
  addressOf(addressOrIns: string): string | null {
    const v = addressOrIns.trim();
    if (v.includes('@')) return this.insOf(v) ? v.toLowerCase() : null;
    const ins = v.toUpperCase();
    return isNir(ins) ? `${ins.toLowerCase()}@${this.domain}` : null;
  }

  async status(mailbox: MailboxRow): Promise<PatientStatus> {
    return statusOf(mailbox, await this.#store.getPatientAccount(mailbox.id));
  }

  /**
   * Routing to the patient domain: the mailbox of a valid INS address (created `pending` when there is none, the
   * configuration allows it and `createdBy` names the professional writing), null for an address elsewhere.
   * Anything else at the patient domain is an unknown recipient (550 5.1.1).
   */
  async recipient(address: string, createdBy: string | null): Promise<MailboxRow | null> {
    if (!this.isPatientDomain(address)) return null;
    const normalised = address.trim().toLowerCase();
    if (!this.insOf(normalised)) throw new Refusal('unknown-recipient', 'not an INS matricule at the patient domain');
    const existing = await this.#store.getMailbox(normalised);
    if (existing) return existing;
    if (!this.#config.autoCreate || createdBy === null) throw new Refusal('unknown-recipient', 'no patient mailbox');
    return this.#create(normalised, createdBy, true);
  }

  /** Whether mail to this patient mailbox is answered by the opposition notice. */
  async isOpposed(mailbox: MailboxRow): Promise<boolean> {
    const status = await this.status(mailbox);
    return status === 'opposed' || status === 'purged';
  }

  async issueActivationCode(addressOrIns: string, actor: string): Promise<{ address: string; code: string; expiresAt: number }> {
    const address = this.#address(addressOrIns);
    const mailbox = (await this.#store.getMailbox(address)) ?? (await this.#create(address, actor, false));
    const code = newCode();
    const now = this.#now();
    const expiresAt = now + this.#config.activationCodeHours * HOUR_MS;
    await this.#store.transaction(async (tx) => {
      const current = (await tx.getMailbox(address)) ?? mailbox;
      const account = await this.#account(tx, current);
      const status = statusOf(current, account);
      // A mailbox `mss mailbox add` made active never enrolled a second factor: nobody can use it yet, so it goes
      // back to pending until the patient activates it.
      const unenrolled = status === 'active' && account.totp === null;
      if (status !== 'pending' && !unenrolled) throw patientError('not-pending', this.domain);
      if (unenrolled) await tx.updateMailbox(current.id, { state: 'pending' });
      await tx.updatePatientAccount(current.id, {
        activationHash: this.#codeHash(current, normaliseCode(code)!),
        activationExpires: expiresAt,
        ...(unenrolled ? { activatedAt: null } : {}),
      });
      await tx.clearAuthFailures(this.#failureKey('activation', address));
      await appendAudit(tx, { actor, action: 'patient-activation-code', object: address, outcome: 'issued', detail: { expiresAt } });
    });
    this.#log.info({ actor, expiresAt }, 'patient activation code issued');
    return { address, code, expiresAt };
  }

  /** Step 1 of activation: a valid, unexpired code for a pending mailbox (rate-limited per address). */
  async checkActivationCode(addressOrIns: string, code: string, remote: string): Promise<MailboxRow> {
    return (await this.#checkCode(addressOrIns, code, remote, 'check')).mailbox;
  }

  /** Step 2: same code again, the chosen password, the TOTP secret the patient enrolled and one current TOTP code. */
  async completeActivation(input: { addressOrIns: string; code: string; password: string; totpSecret: Buffer; totp: string; remote: string }): Promise<MailboxRow> {
    const { mailbox, address } = await this.#checkCode(input.addressOrIns, input.code, input.remote, 'complete');
    const refuse = async (code: PatientErrorCode, outcome: string): Promise<never> => {
      await audit(this.#store, { actor: address, action: 'patient-activate', object: address, outcome, detail: { remote: input.remote } });
      throw patientError(code, this.domain);
    };
    if (input.password.length < PASSWORD_MIN || input.password.length > PASSWORD_MAX) return refuse('weak-password', 'weak-password');
    if (input.totpSecret.length < TOTP_SECRET_MIN || input.totpSecret.length > TOTP_SECRET_MAX) return refuse('bad-totp-secret', 'bad-totp-secret');
    const now = this.#now();
    const step = totpStep(input.totpSecret, input.totp, now);
    if (step === null) {
      await this.#store.transaction((tx) => tx.recordAuthFailure(this.#failureKey('activation', address), now, this.#limits.maxFailures, this.#limits.lockoutMs));
      return refuse('bad-totp', 'bad-totp');
    }
    const passwordHash = await hashPassword(input.password);
    const sealedTotp = seal(this.#mail.key(mailbox), input.totpSecret, totpAad(mailbox.id));
    const activated = await this.#store.transaction(async (tx) => {
      const current = await tx.getMailbox(address);
      if (!current || statusOf(current, await tx.getPatientAccount(current.id)) !== 'pending') throw patientError('not-pending', this.domain);
      await tx.updateMailbox(current.id, { passwordHash, state: 'active' });
      await tx.updatePatientAccount(current.id, { activatedAt: now, activationHash: null, activationExpires: null, totp: sealedTotp, totpLastStep: step });
      for (const kind of ['activation', 'totp'] as const) await tx.clearAuthFailures(this.#failureKey(kind, address));
      await tx.clearAuthFailures(`login:${address}`);
      await appendAudit(tx, { actor: address, action: 'patient-activate', object: address, outcome: 'ok', detail: { remote: input.remote } });
      return { ...current, passwordHash, state: 'active' as const };
    });
    this.#log.info({ remote: input.remote }, 'patient mailbox activated');
    return activated;
  }

  /** TOTP second factor (RFC 6238, SHA-1, 6 digits, 30 s, ±1 step), no replay of a used step, rate-limited with lockout. */
  async verifyTotp(mailbox: MailboxRow, code: string, remote: string): Promise<boolean> {
    const key = this.#failureKey('totp', mailbox.address);
    const now = this.#now();
    const detail = { remote };
    const state = await this.#store.getAuthFailures(key);
    if (state.lockedUntil > now) {
      await audit(this.#store, { actor: mailbox.address, action: 'patient-totp', object: mailbox.address, outcome: 'locked', detail });
      return false;
    }
    const account = await this.#store.getPatientAccount(mailbox.id);
    const current = await this.#store.getMailbox(mailbox.address);
    let outcome = 'bad-code';
    let step: number | null = null;
    if (!account?.totp || !current || current.state !== 'active' || statusOf(current, account) !== 'active') outcome = 'not-enrolled';
    else step = totpStep(open(this.#mail.key(mailbox), account.totp, totpAad(mailbox.id)), code, now);
    const valid = step;
    const accepted =
      valid !== null &&
      (await this.#store.transaction(async (tx) => {
        if (!(await tx.acceptTotpStep(mailbox.id, valid))) return false;
        if (state.failures > 0) await tx.clearAuthFailures(key);
        await appendAudit(tx, { actor: mailbox.address, action: 'patient-totp', object: mailbox.address, outcome: 'ok', detail });
        return true;
      }));
    if (accepted) return true;
    if (step !== null) outcome = 'replayed';
    await this.#store.transaction(async (tx) => {
      await tx.recordAuthFailure(key, now, this.#limits.maxFailures, this.#limits.lockoutMs);
      await appendAudit(tx, { actor: mailbox.address, action: 'patient-totp', object: mailbox.address, outcome, detail });
    });
    return false;
  }

  /**
   * Opposition (CLI or the activation page's link): mailbox closed, held messages destroyed after the grace period.
   * Within the opposition window only, unless `outsideWindow` (the operator closing it at the patient's request).
   * An INS without a mailbox gets one, closed at once, so later senders are told.
   */
  async oppose(addressOrIns: string, actor: string, options: { outsideWindow?: boolean } = {}): Promise<void> {
    const address = this.#address(addressOrIns);
    const mailbox = (await this.#store.getMailbox(address)) ?? (await this.#create(address, actor, false));
    const now = this.#now();
    const purgeAfter = now + this.#config.graceDays * DAY_MS;
    await this.#store.transaction(async (tx) => {
      const current = (await tx.getMailbox(address)) ?? mailbox;
      const account = await this.#account(tx, current);
      const status = statusOf(current, account);
      if (status === 'opposed' || status === 'purged') throw patientError('already-opposed', this.domain);
      if (now > account.opposeUntil && !options.outsideWindow) throw patientError('oppose-window-closed', this.domain);
      await tx.updateMailbox(current.id, { state: 'disabled' });
      await tx.updatePatientAccount(current.id, { opposedAt: now, purgeAfter, activationHash: null, activationExpires: null });
      await appendAudit(tx, { actor, action: 'patient-oppose', object: address, outcome: 'ok', detail: { purgeAfter, was: status } });
    });
    this.#log.info({ actor, purgeAfter }, 'patient opposed: mailbox closed');
  }

  /**
   * Destroys the messages of opposed mailboxes whose grace period is over (and what the patient tables held about
   * them); the mailbox row stays, so later senders still learn of the opposition. Returns how many were purged.
   */
  async purgeDue(limit = 20): Promise<number> {
    const now = this.#now();
    let purged = 0;
    for (;;) {
      const done = await this.#store.transaction(async (tx) => {
        const [due] = await tx.listPatientsToPurge(now, 1);
        if (!due) return false;
        const mailbox = await tx.getMailboxById(due.mailboxId);
        let messages = 0;
        for (const folder of mailbox ? await tx.listFolders(mailbox.id) : []) {
          const uids = (await tx.listMessages(folder.id)).map((m) => m.uid);
          if (uids.length > 0) messages += (await tx.expunge(folder.id, uids)).length;
        }
        await tx.purgePatientData(due.mailboxId, now);
        await appendAudit(tx, { actor: 'server', action: 'patient-purge', object: mailbox?.address ?? `mailbox:${due.mailboxId}`, outcome: 'ok', detail: { messages } });
        return true;
      });
      if (!done) return purged;
      purged++;
      if (purged >= limit) return purged;
    }
  }

  /**
   * A patient's message (the webmail): it must answer a professional's message of an open conversation, and go only
   * to the addresses that message allows (Reply-To, else From), with no other recipient (envelope, To, Cc). Returns
   * the conversation to record the reply in; throws the `Refusal` the patient is shown.
   */
  async checkPatientMessage(sender: MailboxRow, meta: MessageMeta, recipients: readonly string[]): Promise<{ threadKey: string; allowed: string[] }> {
    if ((await this.status(sender)) !== 'active') throw new Refusal('patient-not-a-reply', 'patient mailbox not active');
    const check = await this.threads.checkReply(this.#store, sender, meta);
    if (!check.ok) {
      const code = check.reason === 'not-a-reply' ? 'patient-not-a-reply' : check.reason === 'thread-closed' ? 'patient-thread-closed' : 'patient-unknown-thread';
      throw new Refusal(code);
    }
    const headers = [...(meta.envelope.to ?? []), ...(meta.envelope.cc ?? [])]
      .filter((a) => a.mailbox && a.host)
      .map((a) => `${a.mailbox}@${a.host}`.toLowerCase());
    const all = [...new Set([...recipients.map((r) => r.trim().toLowerCase()), ...headers])];
    if (all.length === 0 || all.some((a) => !check.allowed.includes(a))) throw new Refusal('patient-reply-recipients', `${all.length} recipients`);
    return { threadKey: check.threadKey, allowed: check.allowed };
  }

  /**
   * Mail to a patient: only a professional's mailbox (PER, ORG, APP) whose directory check passed may write (a
   * relayed sender has no local type: the directory check alone speaks for it).
   */
  checkWriter(senderType: MailboxRow['type'] | null, directoryWarnings: number): void {
    if (senderType !== null && !PROFESSIONAL_TYPES.includes(senderType)) throw new Refusal('patient-sender-not-professional', `sender type ${senderType}`);
    if (directoryWarnings > 0) throw new Refusal('patient-sender-not-professional', 'the sender check against the directory did not pass');
  }

  /**
   * Documents for a patient: one patient per message, and every CDA document's INS must be the recipient's (a
   * document without an INS cannot be shown to be the patient's, so it is refused too).
   */
  checkDocuments(patients: readonly MailboxRow[], documents: readonly XdmCdaSummary[]): void {
    if (documents.length === 0 || patients.length === 0) return;
    if (patients.length > 1) throw new Refusal('patient-documents-several-patients', `${patients.length} patient recipients`);
    const patient = patients[0]!;
    const ins = (patient.ownerId && isNir(patient.ownerId) ? patient.ownerId : this.insOf(patient.address))?.toUpperCase() ?? null;
    const wrong = documents.filter((d) => !d.ins || ins === null || d.ins.matricule.toUpperCase() !== ins);
    if (wrong.length > 0) {
      const missing = wrong.filter((d) => !d.ins).length;
      throw new Refusal('patient-document-mismatch', `${wrong.length} of ${documents.length} documents (${missing} without INS)`);
    }
  }

  /**
   * What a sender learns of recipients who opposed: a failure DSN (RFC 3464) from MAILER-DAEMON of the sender's
   * domain, with the original's header, saying in French (then English) that the patient opposed.
   */
  oppositionNotice(input: { hostname: string; mailFrom: string; original: Buffer; recipients: readonly string[]; arrivalDate: Date; queueId: string }): BuiltDsn {
    const refusal = REFUSALS['patient-opposed'];
    return buildDsn({
      reportingMta: input.hostname,
      domain: input.mailFrom.slice(input.mailFrom.lastIndexOf('@') + 1),
      to: input.mailFrom,
      original: input.original,
      recipients: input.recipients.map((r) => ({
        finalRecipient: r,
        action: 'failed' as const,
        status: refusal.enhanced,
        diagnostic: `${refusal.smtp} ${refusal.enhanced} ${refusal.en}`,
        lastAttemptDate: new Date(this.#now()),
      })),
      arrivalDate: input.arrivalDate,
      originalEnvelopeId: input.queueId,
      explanation: {
        fr: "Le patient s'est opposé à l'ouverture de sa messagerie de santé : elle est fermée et le message ne lui a pas été remis. Contactez-le par un autre moyen.",
        en: 'The patient opposed to the opening of their health mailbox: it is closed and the message was not delivered. Reach them another way.',
      },
    });
  }

  /** Whether the patient may reply to the message with this meta, and to whom (the webmail's reply button). */
  async replyPermission(
    mailbox: MailboxRow,
    original: MessageMeta,
  ): Promise<{ allowed: true; to: string[] } | { allowed: false; code: string; fr: string; en: string }> {
    const refused = (code: 'patient-unknown-thread' | 'patient-thread-closed' | 'patient-not-a-reply') => ({ allowed: false as const, code, fr: REFUSALS[code].fr, en: REFUSALS[code].en });
    if (mailbox.type !== 'PATIENT') return refused('patient-not-a-reply');
    const check = await this.threads.replyTo(this.#store, mailbox, original);
    if (check.ok) return check.allowed.length > 0 ? { allowed: true, to: check.allowed } : refused('patient-unknown-thread');
    return refused(check.reason === 'thread-closed' ? 'patient-thread-closed' : 'patient-unknown-thread');
  }

  #address(addressOrIns: string): string {
    const address = this.addressOf(addressOrIns);
    if (!address) throw patientError('invalid-address', this.domain);
    return address;
  }

  #failureKey(kind: 'activation' | 'totp', address: string): string {
    return `patient-${kind}:${address}`;
  }

  #codeHash(mailbox: MailboxRow, code: string): string {
    const key = Buffer.from(hkdfSync('sha256', this.#mail.key(mailbox), Buffer.alloc(0), ACTIVATION_INFO, 32));
    return createHmac('sha256', key).update(code).digest('base64url');
  }

  /** The account row of a PATIENT mailbox, created when `mss mailbox add` made the mailbox without one. */
  async #account(tx: StoreTx, mailbox: MailboxRow): Promise<PatientAccountRow> {
    const found = await tx.getPatientAccount(mailbox.id);
    if (found) return found;
    const opposeUntil = mailbox.createdAt + this.#config.opposeWindowDays * DAY_MS;
    await tx.insertPatientAccount({ mailboxId: mailbox.id, createdAt: mailbox.createdAt, opposeUntil });
    const created = await tx.getPatientAccount(mailbox.id);
    if (!created) throw new Error(`patient account of mailbox ${mailbox.id} could not be created`);
    if (mailbox.state === 'active') {
      await tx.updatePatientAccount(mailbox.id, { activatedAt: mailbox.createdAt });
      return { ...created, activatedAt: mailbox.createdAt };
    }
    return created;
  }

  /**
   * A check of an activation code: the mailbox must be pending with an unexpired code equal to the one typed. A
   * wrong code counts as a failure for the address; too many lock it out. The answer never tells whether the
   * address has a mailbox.
   */
  async #checkCode(addressOrIns: string, typed: string, remote: string, stage: 'check' | 'complete'): Promise<{ mailbox: MailboxRow; address: string }> {
    const address = this.#address(addressOrIns);
    const key = this.#failureKey('activation', address);
    const now = this.#now();
    const detail = { remote, stage };
    const state = await this.#store.getAuthFailures(key);
    if (state.lockedUntil > now) {
      await audit(this.#store, { actor: address, action: 'patient-activate', object: address, outcome: 'locked', detail });
      throw patientError('locked', this.domain);
    }
    const mailbox = await this.#store.getMailbox(address);
    const account = mailbox ? await this.#store.getPatientAccount(mailbox.id) : null;
    const code = normaliseCode(typed);
    let good = false;
    if (mailbox && account && code && account.activationHash && statusOf(mailbox, account) === 'pending') {
      const expected = Buffer.from(account.activationHash);
      const actual = Buffer.from(this.#codeHash(mailbox, code));
      good = expected.length === actual.length && timingSafeEqual(expected, actual);
    }
    if (!good || !mailbox || !account) {
      const after = await this.#store.transaction(async (tx) => {
        const s = await tx.recordAuthFailure(key, now, this.#limits.maxFailures, this.#limits.lockoutMs);
        await appendAudit(tx, { actor: address, action: 'patient-activate', object: address, outcome: 'bad-code', detail });
        return s;
      });
      throw patientError(after.lockedUntil > now ? 'locked' : 'invalid-code', this.domain);
    }
    if (account.activationExpires === null || account.activationExpires <= now) {
      await audit(this.#store, { actor: address, action: 'patient-activate', object: address, outcome: 'code-expired', detail });
      throw patientError('code-expired', this.domain);
    }
    return { mailbox, address };
  }

  /** Creates a pending patient mailbox (its data key, default folders and account row) and audits it. */
  async #create(address: string, actor: string, byMessage: boolean): Promise<MailboxRow> {
    const ins = this.insOf(address);
    if (!ins) throw patientError('invalid-address', this.domain);
    const now = this.#now();
    try {
      const created = await createPatientMailbox(this.#store, this.#keyring, { address, ins, actor, now, opposeWindowDays: this.#config.opposeWindowDays, byMessage });
      this.#log.info({ actor, byMessage }, 'patient mailbox created, pending activation');
      return created;
    } catch (err) {
      // Created meanwhile by another delivery (another process): use it.
      const existing = await this.#store.getMailbox(address);
      if (existing) return existing;
      throw err;
    }
  }
}

/**
 * A pending patient mailbox in one unit of work: mailbox row (no password: nobody logs in before activation), data
 * key, default folders, account row with its opposition deadline, audit record. Throws when the address is taken.
 */
export async function createPatientMailbox(
  store: Store,
  keyring: Keyring,
  input: { address: string; ins: string; actor: string; now: number; opposeWindowDays: number; byMessage: boolean },
): Promise<MailboxRow> {
  const address = input.address.toLowerCase();
  return store.transaction(async (tx) => {
    if (await tx.getMailbox(address)) throw new Error(`mailbox already exists: ${address}`);
    const { wrapped } = keyring.newMailboxKey(address);
    const mailbox = await tx.insertMailbox({ address, type: 'PATIENT', ownerId: input.ins, displayName: null, passwordHash: null, state: 'pending', wrappedKey: wrapped });
    for (const folder of DEFAULT_FOLDERS) await tx.insertFolder({ mailboxId: mailbox.id, name: folder.name, specialUse: folder.specialUse, subscribed: true });
    await tx.insertPatientAccount({ mailboxId: mailbox.id, createdAt: input.now, opposeUntil: input.now + input.opposeWindowDays * DAY_MS });
    await appendAudit(tx, {
      actor: input.actor,
      action: 'mailbox-create',
      object: address,
      outcome: 'ok',
      detail: { type: 'PATIENT', state: 'pending', by: input.byMessage ? 'first-message' : 'operator' },
    });
    return mailbox;
  });
}
