/**
 * `mss pki …`: the keystore from the command line. The commands are registered on the program by `cli.ts`,
 * which hands over how it reads the configuration and opens the store, so they behave like `mss mailbox …`.
 */
import { readFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import type { Config } from '../config/schema.js';
import { openKeyring, pkiOptions } from '../init.js';
import type { Store } from '../store/types.js';
import { DevPkiError } from './devpki.js';
import {
  type CredentialInfo,
  type CredentialUsage,
  Keystore,
  KeystoreError,
  REVOCATION_REASONS,
  type RevocationReason,
} from './keystore.js';
import { SealError } from './seal.js';
import { Certificate } from './smime/index.js';

/** A refusal to print as `mss: <message>` (exit status 2), like the other usage errors of `cli.ts`. */
export class PkiCommandError extends Error {}

export interface PkiCliContext {
  /** The configuration of a command (its `--config` option, else the defaults). */
  configOf(cmd: Command): Config;
  /** Opens the store of an initialised operator, runs `work`, closes the store. */
  withStore<T>(config: Config, work: (store: Store) => Promise<T>): Promise<T>;
  /** Where output lines go (default: standard output). */
  print?(line: string): void;
}

const X509_USAGES = ['auth', 'sign', 'encrypt'] as const;
const USAGES: readonly CredentialUsage[] = [...X509_USAGES, 'openpgp'];

function withConfig(cmd: Command): Command {
  return cmd.option('-c, --config <file>', 'configuration file (default ./config.json, else built-in defaults)');
}

function readInput(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new PkiCommandError(`cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** A password file holds one line; its line ending is not part of the password. */
function readPassword(file: string): string {
  return readInput(file, 'password file').toString('utf8').replace(/\r?\n$/, '');
}

/** Keystore and dev PKI refusals are the user's to fix: report them as usage errors, not crashes. */
async function reported<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof KeystoreError || err instanceof DevPkiError) throw new PkiCommandError(err.message, { cause: err });
    if (err instanceof SealError) {
      throw new PkiCommandError(`a sealed private key does not open (${err.message}): is this the master key that sealed it?`, { cause: err });
    }
    throw err;
  }
}

function day(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** The most specific name: the certificate's CN, or the OpenPGP user ID. */
function shortSubject(c: CredentialInfo): string {
  if (c.format !== 'x509') return c.subject;
  try {
    return Certificate.from(c.certificate).subjectValues('2.5.4.3')[0] ?? c.subject;
  } catch {
    return c.subject;
  }
}

export function formatCredentialTable(rows: readonly CredentialInfo[], withAddress: boolean): string[] {
  const header = [...(withAddress ? ['ADDRESS'] : []), 'USAGE', 'SUBJECT', 'SERIAL', 'NOT AFTER', 'FINGERPRINT', 'REVOKED'];
  const lines = rows.map((c) => [
    ...(withAddress ? [c.address] : []),
    c.usage,
    shortSubject(c),
    c.serial,
    c.notAfter === null ? 'never' : `${day(c.notAfter)}${c.status === 'expired' ? ' (expired)' : ''}`,
    c.fingerprint.slice(0, 16),
    c.revokedAt === null ? 'no' : `${day(c.revokedAt)} ${c.revocationReason ?? ''}`.trimEnd(),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  return [header, ...lines].map((cells) => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
}

export function registerPkiCommands(program: Command, ctx: PkiCliContext): Command {
  const print = ctx.print ?? ((line: string) => console.log(line));
  const withKeystore = <T>(cmd: Command, work: (keystore: Keystore) => Promise<T>): Promise<T> => {
    const config = ctx.configOf(cmd);
    return ctx.withStore(config, (store) => {
      const keyring = openKeyring(config);
      return reported(() => work(new Keystore({ store, keyring, pki: pkiOptions(config, keyring) })));
    });
  };

  const pki = program.command('pki').description('mailbox keys and certificates (keystore) and the dev PKI');

  withConfig(pki.command('issue <address>'))
    .description('issue what a mailbox lacks from the dev PKI: practitioner auth + sign certificates (PER, CAB) or organisation certificate (ORG, APP), and an OpenPGP key')
    .option('--given-name <name>', 'practitioner given name (default from the address: jean.dupont → Jean)')
    .option('--surname <name>', 'practitioner surname (default from the address: jean.dupont → DUPONT)')
    .option('--organisation <name>', 'practitioner organisation (default the mail domain)')
    .addOption(new Option('--openpgp <algorithm>', 'OpenPGP key algorithm').choices(['curve25519Legacy', 'rsa3072', 'rsa4096']).default('curve25519Legacy'))
    .option('--no-openpgp', 'no OpenPGP key')
    .action(async (address: string, opts: { givenName?: string; surname?: string; organisation?: string; openpgp: 'curve25519Legacy' | 'rsa3072' | 'rsa4096' | false }, cmd: Command) => {
      await withKeystore(cmd, async (keystore) => {
        const result = await keystore.issueDev(address, {
          ...(opts.givenName !== undefined ? { givenName: opts.givenName } : {}),
          ...(opts.surname !== undefined ? { surname: opts.surname } : {}),
          ...(opts.organisation !== undefined ? { organisation: opts.organisation } : {}),
          openpgp: opts.openpgp,
        });
        for (const c of result.credentials) {
          print(`${c.created ? 'issued ' : 'present'}  ${c.usage.padEnd(7)}  serial ${c.serial}  fingerprint ${c.fingerprint.slice(0, 16)}`);
        }
        const created = result.credentials.filter((c) => c.created).length;
        print(created ? `${result.address}: ${created} credential${created === 1 ? '' : 's'} issued` : `${result.address}: nothing to issue`);
      });
    });

  withConfig(pki.command('import <address>'))
    .description('import a certificate and its private key: --cert and --key (PEM), or --p12 and --password-file; --usage openpgp --key for an OpenPGP private key')
    .option('--cert <file>', 'certificate (PEM or DER); certificates after the first are its chain')
    .option('--key <file>', 'private key (PEM or DER PKCS#8, not encrypted), or an OpenPGP private key with --usage openpgp')
    .option('--chain <file>', 'intermediate certificates (PEM)')
    .option('--p12 <file>', 'PKCS#12 file (key, certificate and chain)')
    .option('--password-file <file>', 'file holding the PKCS#12 password (or the OpenPGP passphrase)')
    .addOption(new Option('--usage <usage>', 'what the key is for (default for --p12: what the certificate allows)').choices([...USAGES]))
    .option('--force', 'accept an expired or not yet valid certificate, or one that does not name the address')
    .action(
      async (
        address: string,
        opts: { cert?: string; key?: string; chain?: string; p12?: string; passwordFile?: string; usage?: CredentialUsage; force?: boolean },
        cmd: Command,
      ) => {
        const force = { force: opts.force === true };
        const load = async (keystore: Keystore) => {
          if (opts.usage === 'openpgp') {
            if (!opts.key || opts.cert || opts.p12 || opts.chain) throw new PkiCommandError('--usage openpgp takes --key <armored private key> (and --password-file if it is protected)');
            const passphrase = opts.passwordFile ? readPassword(opts.passwordFile) : undefined;
            return keystore.importOpenPgp(address, readInput(opts.key, 'OpenPGP key'), passphrase, force);
          }
          if (opts.p12) {
            if (opts.cert || opts.key || opts.chain) throw new PkiCommandError('--p12 is used alone (the file holds the key, certificate and chain)');
            if (!opts.passwordFile) throw new PkiCommandError('--p12 needs --password-file <file>');
            return keystore.importPkcs12(address, readInput(opts.p12, 'PKCS#12 file'), readPassword(opts.passwordFile), opts.usage, force);
          }
          if (!opts.cert || !opts.key) throw new PkiCommandError('give --cert <file> and --key <file>, or --p12 <file> --password-file <file>');
          if (!opts.usage) throw new PkiCommandError(`--usage is required with --cert/--key (${X509_USAGES.join(', ')})`);
          const chain = opts.chain ? readInput(opts.chain, 'chain file') : undefined;
          return keystore.importPem(address, opts.usage, readInput(opts.cert, 'certificate file'), readInput(opts.key, 'key file'), chain, force);
        };
        await withKeystore(cmd, async (keystore) => {
          const { credential: c, created } = await load(keystore);
          print(`${created ? 'imported' : 'already present'}: ${c.address} ${c.usage} ${shortSubject(c)} serial ${c.serial} fingerprint ${c.fingerprint.slice(0, 16)}`);
        });
      },
    );

  withConfig(pki.command('list [address]'))
    .description('list the keys and certificates of one mailbox, or of every mailbox')
    .action(async (address: string | undefined, _opts, cmd: Command) => {
      await withKeystore(cmd, async (keystore) => {
        const rows = await keystore.list(address);
        if (rows.length === 0) {
          print('no credentials');
          return;
        }
        for (const line of formatCredentialTable(rows, address === undefined)) print(line);
        print(`${rows.length} credential${rows.length === 1 ? '' : 's'}`);
      });
    });

  withConfig(pki.command('revoke <address> <ref>'))
    .description('revoke a certificate or key by serial or fingerprint (a dev PKI certificate also goes on its CRL)')
    .addOption(new Option('--reason <reason>', 'revocation reason').choices([...REVOCATION_REASONS]).default('unspecified'))
    .action(async (address: string, ref: string, opts: { reason: RevocationReason }, cmd: Command) => {
      await withKeystore(cmd, async (keystore) => {
        const r = await keystore.revoke(address, ref, opts.reason);
        const what = `${r.address} ${r.usages.join('+')} serial ${r.serial} (fingerprint ${r.fingerprint.slice(0, 16)})`;
        print(r.alreadyRevoked ? `already revoked: ${what}` : `revoked: ${what}, reason ${opts.reason}`);
        if (r.crlFile) print(`CRL updated: ${r.crlFile}`);
      });
    });

  return pki;
}
