import { Command } from 'commander';
import pino from 'pino';
import type { Keyring } from '../crypto/seal.js';
import { SealedMail } from '../store/sealed-mail.js';
import type { Store } from '../store/types.js';
import { PatientError, Patients, statusOf, type PatientsConfig } from './patients.js';

/**
 * `mss patient activate-code|oppose|status <ins|address>`: the operator's side of patient mailboxes. The activation
 * code is printed once (a real deployment mails it to the patient by post); nothing else secret is ever printed.
 * Registered on the `mss` program by `registerPatientCommands`.
 */

export interface PatientCliDeps {
  /** Runs `work` with the operator's open store (cli.ts: `withStore(configOf(cmd), work)`). */
  withStore<T>(cmd: Command, work: (store: Store) => Promise<T>): Promise<T>;
  /** The operator's keyring (cli.ts: `openKeyring(configOf(cmd))`). */
  keyringOf(cmd: Command): Keyring;
  configOf(cmd: Command): { patients: PatientsConfig; auth: { maxFailures: number; lockoutMs: number } };
  out?: (line: string) => void;
  err?: (line: string) => void;
  now?: () => number;
}

const iso = (ms: number | null) => (ms === null ? '—' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z'));

export function registerPatientCommands(program: Command, deps: PatientCliDeps): Command {
  const out = deps.out ?? ((line: string) => console.log(line));
  const err = deps.err ?? ((line: string) => console.error(line));
  const withConfig = (cmd: Command) => cmd.option('-c, --config <file>', 'configuration file (default ./config.json, else built-in defaults)');

  const run = async (cmd: Command, work: (patients: Patients, store: Store) => Promise<void>): Promise<void> => {
    try {
      const config = deps.configOf(cmd);
      const keyring = deps.keyringOf(cmd);
      await deps.withStore(cmd, (store) =>
        work(
          new Patients({
            store,
            mail: new SealedMail(store, keyring),
            keyring,
            config: config.patients,
            log: pino({ level: 'silent' }),
            limits: config.auth,
            ...(deps.now ? { now: deps.now } : {}),
          }),
          store,
        ),
      );
    } catch (e) {
      if (!(e instanceof PatientError)) throw e;
      err(`mss: ${e.en} / ${e.fr} [${e.code}]`);
      process.exitCode = 2;
    }
  };

  const patient = program.command('patient').description('patient mailboxes: activation codes, opposition, status');

  withConfig(patient.command('activate-code <insOrAddress>'))
    .description('issue a one-time activation code for a pending patient mailbox (created when there is none); print it for the letter to the patient')
    .action(async (insOrAddress: string, _opts, cmd: Command) => {
      await run(cmd, async (patients) => {
        const issued = await patients.issueActivationCode(insOrAddress, 'cli');
        out(`${issued.address}  activation code: ${issued.code}  valid until ${iso(issued.expiresAt)}`);
        out('send it to the patient (by post): they activate the mailbox in the webmail, choosing a password and a TOTP app; a new code replaces this one');
      });
    });

  withConfig(patient.command('oppose <insOrAddress>'))
    .description("record the patient's opposition: the mailbox is closed at once, its messages destroyed after the grace period, later senders told")
    .option('--outside-window', 'close it even though the opposition window is over (the patient asked the operator)')
    .action(async (insOrAddress: string, opts: { outsideWindow?: boolean }, cmd: Command) => {
      await run(cmd, async (patients) => {
        await patients.oppose(insOrAddress, 'cli', { outsideWindow: opts.outsideWindow === true });
        const address = patients.addressOf(insOrAddress);
        out(`${address}: opposed; the mailbox is closed and its messages will be destroyed in ${patients.config.graceDays} days ("mss patient status" shows when)`);
      });
    });

  withConfig(patient.command('status <insOrAddress>'))
    .description('show the state of a patient mailbox: pending, active, opposed or purged, and its dates')
    .action(async (insOrAddress: string, _opts, cmd: Command) => {
      await run(cmd, async (patients, store) => {
        const address = patients.addressOf(insOrAddress);
        if (!address) throw new PatientError('invalid-address', "Ce n'est pas une adresse de patient ni un matricule INS valide", 'Not a patient address nor a valid INS matricule');
        const mailbox = await store.getMailbox(address);
        if (!mailbox) throw new PatientError('unknown-patient', "Aucune messagerie n'existe pour ce patient", 'There is no mailbox for this patient');
        const account = await store.getPatientAccount(mailbox.id);
        out(`${address}: ${statusOf(mailbox, account)}`);
        if (!account) return;
        out(`  created        ${iso(account.createdAt)}`);
        out(`  oppose until   ${iso(account.opposeUntil)}`);
        out(`  code expires   ${account.activationHash ? iso(account.activationExpires) : '— (no code outstanding)'}`);
        out(`  activated      ${iso(account.activatedAt)}`);
        out(`  opposed        ${iso(account.opposedAt)}`);
        out(`  purge after    ${iso(account.purgeAfter)}`);
        out(`  purged         ${iso(account.purgedAt)}`);
        out(`  TOTP enrolled  ${account.totp ? 'yes' : 'no'}`);
      });
    });

  return patient;
}
