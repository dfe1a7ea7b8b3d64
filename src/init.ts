import 'reflect-metadata';
import { existsSync, mkdirSync } from 'node:fs';
import pino from 'pino';
import { createMailbox } from './accounts/mailboxes.js';
import { generatePassword } from './accounts/password.js';
import { audit } from './audit/journal.js';
import type { Config } from './config/schema.js';
import { issueDemoCredentials } from './crypto/keystore.js';
import { seedDemoDirectory } from './directory/demo.js';
import { ensureDevPki, issueOrganisationCertificate, issuePractitionerCertificates, type DevPkiOptions } from './crypto/devpki.js';
import { createMasterKey, Keyring, masterKeyPath, readMasterKey } from './crypto/seal.js';
import { Patients } from './policy/patients.js';
import { SealedMail } from './store/sealed-mail.js';
import { describeStore, openStore, storeExists, withInitLock } from './store/open.js';
import type { Store } from './store/types.js';

export interface InitReport {
  changed: boolean;
  /** Human-readable lines: what was created. */
  lines: string[];
  /** Demo accounts created on this run, with their one-time printed password. */
  accounts: { address: string; password: string; type: string }[];
  /** Demo patient mailboxes created on this run, pending activation, with their one-time activation code. */
  activations: { address: string; code: string; expiresAt: number }[];
}

export function pkiOptions(config: Config, keyring: Keyring): DevPkiOptions {
  return {
    certsDir: config.certsDir,
    keyring,
    keyAlgorithm: config.pki.keyAlgorithm,
    hash: config.pki.hash,
    caValidityDays: config.pki.caValidityDays,
    leafValidityDays: config.pki.leafValidityDays,
    serverNames: [...new Set([config.hostname, ...config.serverNames])],
  };
}

/** The master key is present and the database holds a schema (SQLite file, or PostgreSQL schema_version). */
export async function isInitialised(config: Config): Promise<boolean> {
  return existsSync(masterKeyPath(config.dataDir)) && (await storeExists(config));
}

export function openKeyring(config: Config): Keyring {
  return new Keyring(readMasterKey(config.dataDir));
}

/**
 * Creates what a fresh operator needs: data dir, master key (0600), dev PKI, database and, on first run,
 * the demo hospital. Idempotent: a second run creates nothing. On PostgreSQL it runs under an advisory lock, so
 * processes started together on a fresh database (`mss start` initialises when needed) do not race: one
 * initialises, the others wait and find everything created.
 */
export interface InitOptions {
  /** Give the demo mailboxes their keystore credentials (S/MIME, OpenPGP); default true. */
  demoCredentials?: boolean;
}

export function initOperator(config: Config, options: InitOptions = {}): Promise<InitReport> {
  return withInitLock(config, () => initialise(config, options));
}

async function initialise(config: Config, options: InitOptions): Promise<InitReport> {
  const report: InitReport = { changed: false, lines: [], accounts: [], activations: [] };
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  if (!existsSync(masterKeyPath(config.dataDir))) {
    createMasterKey(config.dataDir);
    report.changed = true;
    report.lines.push(`created master key ${masterKeyPath(config.dataDir)} (mode 0600: back it up, it unlocks everything)`);
  }
  const keyring = openKeyring(config);
  const pki = await ensureDevPki(pkiOptions(config, keyring));
  if (pki.created) {
    report.changed = true;
    report.lines.push(`created dev PKI in ${config.certsDir} (trust ${config.certsDir}/ca/root.pem in your mail client)`);
  }
  const freshDb = !(await storeExists(config));
  const store = await openStore(config);
  try {
    if (freshDb) {
      report.changed = true;
      report.lines.push(`created database ${describeStore(config)}`);
      if (config.demo.enabled) await createDemo(config, store, keyring, report, options.demoCredentials ?? true);
      await audit(store, { actor: 'cli', action: 'init', object: config.hostname, outcome: 'ok', detail: { demo: config.demo.enabled } });
    }
  } finally {
    await store.close();
  }
  return report;
}

const DEMO = {
  practitioners: [
    // Identifiers with valid check keys (RPPS and FINESS end with a Luhn digit), as the directory requires.
    {
      local: 'jean.dupont',
      givenName: 'Jean',
      surname: 'DUPONT',
      rpps: '10001234565',
      title: 'Dr Jean DUPONT (cardiologie)',
      specialty: ['SM04', 'Cardiologie et maladies vasculaires'],
    },
    {
      local: 'claire.martin',
      givenName: 'Claire',
      surname: 'MARTIN',
      rpps: '10007654329',
      title: 'Dr Claire MARTIN (médecine générale)',
      specialty: ['SM26', 'Qualifié en Médecine Générale'],
    },
  ],
  application: { local: 'dpi', finess: '750000002', name: 'Hôpital Démo — DPI (comptes rendus)' },
  patientIns: '279035121518989',
} as const;

async function createDemo(config: Config, store: Store, keyring: Keyring, report: InitReport, credentials: boolean): Promise<void> {
  const { domain } = config.demo;
  const patientDomain = config.patients.domain;
  const pki = pkiOptions(config, keyring);
  for (const p of DEMO.practitioners) {
    const address = `${p.local}@${domain}`;
    const password = generatePassword();
    await createMailbox(store, keyring, { address, type: 'PER', ownerId: `8${p.rpps}`, displayName: p.title, password, actor: 'init' });
    await issuePractitionerCertificates(pki, { address, rpps: p.rpps, givenName: p.givenName, surname: p.surname, organisation: 'Hôpital Démo' });
    report.accounts.push({ address, password, type: 'PER' });
  }
  const app = DEMO.application;
  const appAddress = `${app.local}@${domain}`;
  const appPassword = generatePassword();
  await createMailbox(store, keyring, { address: appAddress, type: 'APP', ownerId: `1${app.finess}`, displayName: app.name, password: appPassword, actor: 'init' });
  await issueOrganisationCertificate(pki, { address: appAddress, idNatStruct: `1${app.finess}`, name: app.name });
  report.accounts.push({ address: appAddress, password: appPassword, type: 'APP' });

  // The demo patient: pending, as a professional's first message would leave it; the patient activates it in the
  // webmail with this code (a real deployment mails it by post), choosing a password and a TOTP second factor.
  const patients = new Patients({ store, mail: new SealedMail(store, keyring), keyring, config: config.patients, log: pino({ level: 'silent' }) });
  const activation = await patients.issueActivationCode(DEMO.patientIns, 'init');
  report.activations.push(activation);
  report.lines.push(
    `created demo patient ${activation.address}, pending activation: activation code ${activation.code} (valid until ${new Date(activation.expiresAt).toISOString()});` +
      ' the patient activates the mailbox in the webmail (choosing a password and a TOTP app), then reads and replies there (no IMAP or SMTP login by default)',
  );
  const directoryLines = await seedDemoDirectory(store, config.dataDir, {
    practitioners: DEMO.practitioners.map((p) => ({
      rpps: p.rpps,
      surname: p.surname,
      givenName: p.givenName,
      address: `${p.local}@${domain}`,
      profession: ['10', 'Médecin'],
      specialty: [...p.specialty],
    })),
    organisations: [{ finess: app.finess, name: 'HOPITAL DEMO', address: appAddress, type: 'APP', service: 'DPI' }],
    structureFiness: app.finess,
    structureName: 'HOPITAL DEMO',
  });
  report.lines.push(...directoryLines);
  const keys = !credentials
    ? { created: 0, lines: [] }
    : await issueDemoCredentials(store, keyring, pki, [...DEMO.practitioners.map((p) => `${p.local}@${domain}`), appAddress]);
  if (keys.created > 0) report.lines.push(`created keystore credentials (S/MIME certificates, OpenPGP keys) for ${keys.lines.length} demo mailboxes`);
  report.lines.push(`created demo operator for ${domain} and ${patientDomain}`);
}
