#!/usr/bin/env node
import 'reflect-metadata';
import cluster from 'node:cluster';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createMailbox, MailboxError, setMailboxPassword } from './accounts/mailboxes.js';
import { generatePassword } from './accounts/password.js';
import { verifyJournal } from './audit/journal.js';
import { PkiCommandError, registerPkiCommands } from './crypto/pki-cli.js';
import { registerDirectoryCommands } from './directory/cli.js';
import { registerTrustCommands } from './policy/trust-cli.js';
import { registerQueueCommands } from './queue/cli.js';
import { registerPatientCommands } from './policy/patient-cli.js';
import { checkMailboxOwner } from './pipeline/check-directory.js';
import { Refusal } from './pipeline/refusal.js';
import { openDirectoryStore } from './store/directory.js';
import { ConfigError, loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { initOperator, isInitialised, openKeyring } from './init.js';
import { createLogger } from './log.js';
import { ProgressBar } from './progress.js';
import type { RunningServer } from './server.js';
import { IMAP_PROTOCOLS } from './connection-dispatch.js';
import { reportReady, runPrimary, type Announced } from './cluster.js';
import type { Logger } from 'pino';
import { TargetNotEmptyError } from './store/dump.js';
import {
  copyStore,
  describeLocation,
  MigrationRefusedError,
  openDumpSource,
  openDumpTarget,
  parseStoreLocation,
  verifyCopy,
  type StoreLocation,
} from './store/migrate.js';
import { describeStore, openStore, StoreUnavailableError } from './store/open.js';
import { SourceMissingError } from './store/sqlite/dump.js';
import { MAILBOX_TYPES, type MailboxType, type Store } from './store/types.js';

class UsageError extends Error {}

function configOf(cmd: Command): Config {
  const opts = cmd.optsWithGlobals<{ config?: string }>();
  return loadConfig(opts.config);
}

function withConfig(cmd: Command): Command {
  return cmd.option('-c, --config <file>', 'configuration file (default ./config.json, else built-in defaults)');
}

async function withStore<T>(config: Config, work: (store: Store) => Promise<T>): Promise<T> {
  if (!(await isInitialised(config))) {
    throw new UsageError(`no operator in ${config.dataDir} with database ${describeStore(config)}: run "mss init" first`);
  }
  const store = await openStore(config);
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new UsageError('--password-stdin expects the password on standard input (e.g. a pipe)');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (password.length < 8) throw new UsageError('the password must have at least 8 characters');
  if (/[\r\n]/.test(password)) throw new UsageError('the password must be one line');
  return password;
}

function printAccounts(accounts: { address: string; password: string }[]): void {
  for (const a of accounts) console.log(`${a.address}  password: ${a.password}`);
}

const program = new Command('mss')
  .description('Secure health messaging server (MSSanté model): SMTP submission, IMAP, sealed store, audit journal')
  .showHelpAfterError();
withConfig(program);

withConfig(program.command('init'))
  .description('create the data dir, master key, dev PKI, database and (first run) the demo operator')
  .action(async (_opts, cmd: Command) => {
    const report = await initOperator(configOf(cmd));
    if (!report.changed) {
      console.log('already initialised: nothing changed');
      return;
    }
    for (const line of report.lines) console.log(line);
    printAccounts(report.accounts);
  });

withConfig(program.command('start'))
  .description('initialise if needed, then serve SMTP submission and IMAP')
  .action(async (_opts, cmd: Command) => {
    const config = configOf(cmd);
    if (cluster.isWorker) return serve(config, true);
    if (!(await isInitialised(config))) {
      const report = await initOperator(config);
      for (const line of report.lines) console.log(line);
      printAccounts(report.accounts);
    }
    if (config.processes > 1) return runProcesses(config);
    return serve(config, false);
  });

function announce(config: Config, listeners: readonly Announced[]): void {
  for (const l of listeners) console.log(`listening  ${l.protocol.padEnd(27)} ${l.host}:${l.port}`);
  const https = listeners.find((l) => l.protocol.startsWith('https'));
  if (https) {
    const host = https.host === '127.0.0.1' || https.host === '::1' ? 'localhost' : https.host;
    console.log(`webmail    https://${host}:${https.port}/ (a patient first activates the mailbox there with the code "mss init" printed)`);
  }
  console.log(
    `log in with a mailbox address and its password (printed by "mss init"; reset with "mss mailbox passwd <address> --password-stdin");` +
      ` TLS certificates chain to ${config.certsDir}/ca/root.pem`,
  );
  console.log('ready');
}

/** The primary of `processes` > 1: forks the workers and speaks for them. */
async function runProcesses(config: Config): Promise<void> {
  // Pending migrations run here, once, rather than in every server process at the same moment.
  await (await openStore(config)).close();
  console.log(`starting   ${config.processes} server processes`);
  const imap = {
    listeners: {
      plain: { ...config.imap.plain, protocol: IMAP_PROTOCOLS.plain },
      tls: { ...config.imap.tls, protocol: IMAP_PROTOCOLS.tls },
    },
    limits: { maxConnections: config.imap.maxConnections, maxConnectionsPerIp: config.imap.maxConnectionsPerIp },
  };
  runPrimary(config.processes, imap, {
    onReady: (listeners) => announce(config, listeners),
    onStopping: (signal) => console.log(`${signal}: stopping (finishing transactions in flight)`),
    onStopped: (ok) => {
      console.log(ok ? 'stopped' : 'stopped (a server process did not stop cleanly)');
      process.exit(ok ? 0 : 1);
    },
    onWorkerExit: (pid, code, signal, replaced) => {
      if (code === 0) return;
      console.error(`server process ${pid} exited (${signal ?? `code ${code}`})${replaced ? '; starting another' : ''}`);
    },
  });
}

/**
 * A whole server in this process, stopped by SIGTERM or SIGINT. Alone, it speaks on the terminal; as a worker of
 * `processes` > 1 it is quiet (the primary speaks), reports to the primary when ready, and stops when the primary
 * is gone (nobody would relay its events or stop it any more).
 */
async function serve(config: Config, worker: boolean): Promise<void> {
  const log = createLogger(config.log.level);
  // Signal handlers go in before anything is announced: a SIGTERM that arrives before a JS listener exists
  // takes the default action and kills the process without a clean shutdown.
  let server: RunningServer | null = null;
  let stopping: string | null = null;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = signal;
    if (server) shutdown(server, signal, log, !worker);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  if (worker) process.on('disconnect', () => stop('disconnect'));
  // Imported here: the other commands (and the primary of several processes) never load the server's modules.
  const { startServer } = await import('./server.js');
  server = await startServer(config, log);
  if (worker) reportReady(server.listeners);
  else announce(config, server.listeners);
  if (stopping) shutdown(server, stopping, log, !worker);
}

function shutdown(server: RunningServer, signal: string, log: Logger, speak: boolean): void {
  if (speak) console.log(`${signal}: stopping (finishing transactions in flight)`);
  server.close().then(
    () => {
      if (speak) console.log('stopped');
      log.flush();
      process.exit(0);
    },
    (err: unknown) => {
      console.error(`error while stopping: ${(err as Error).message}`);
      process.exit(1);
    },
  );
}

const mailbox = program.command('mailbox').description('manage mailboxes');

withConfig(mailbox.command('add <address>'))
  .description('create a mailbox; prints a generated password unless --password-stdin is given')
  .addOption(
    new Option('--type <type>', 'mailbox type').choices([...MAILBOX_TYPES]).makeOptionMandatory(),
  )
  .option('--owner <id>', 'national identifier of the owner (8+RPPS, 1+FINESS, INS...)')
  .option('--name <displayName>', 'display name')
  .option('--password-stdin', 'read the password from standard input')
  .action(async (address: string, opts: { type: MailboxType; owner?: string; name?: string; passwordStdin?: boolean }, cmd: Command) => {
    const config = configOf(cmd);
    const password = opts.passwordStdin ? await readStdin() : generatePassword();
    await withStore(config, async (store) => {
      const verdict = await checkMailboxOwner(openDirectoryStore(store), { address, type: opts.type, ownerId: opts.owner ?? null }, config.directory.senderCheck);
      for (const w of verdict.warnings) console.error(`mss: warning: ${w.message}`);
      const row = await createMailbox(store, openKeyring(config), {
        address,
        type: opts.type,
        ownerId: opts.owner ?? null,
        displayName: opts.name ?? null,
        password,
      });
      if (opts.passwordStdin) console.log(`created ${row.address} (${row.type})`);
      else printAccounts([{ address: row.address, password }]);
    });
  });

withConfig(mailbox.command('list'))
  .description('list mailboxes')
  .action(async (_opts, cmd: Command) => {
    await withStore(configOf(cmd), async (store) => {
      const rows = await store.listMailboxes();
      for (const m of rows) console.log([m.address, m.type, m.state, m.ownerId ?? '-', m.displayName ?? ''].join('\t').trimEnd());
      console.log(`${rows.length} mailbox${rows.length === 1 ? '' : 'es'}`);
    });
  });

withConfig(mailbox.command('passwd <address>'))
  .description('set a mailbox password (read from standard input) and clear its lockout')
  .requiredOption('--password-stdin', 'read the password from standard input')
  .action(async (address: string, _opts, cmd: Command) => {
    const config = configOf(cmd);
    const password = await readStdin();
    await withStore(config, (store) => setMailboxPassword(store, address, password));
    console.log(`password changed for ${address.toLowerCase()}`);
  });

registerPkiCommands(program, { configOf, withStore });
registerDirectoryCommands(program, {
  withStore: (cmd, work) => withStore(configOf(cmd), work),
  importMaxBadRatio: (cmd) => configOf(cmd).directory.importMaxBadRatio,
});
registerTrustCommands(program, { withStore: (cmd, work) => withStore(configOf(cmd), work), configOf });
registerQueueCommands(program, { withStore: (cmd, work) => withStore(configOf(cmd), work), keyringOf: (cmd) => openKeyring(configOf(cmd)) });
registerPatientCommands(program, { withStore: (cmd, work) => withStore(configOf(cmd), work), keyringOf: (cmd) => openKeyring(configOf(cmd)), configOf });

const auditCmd = program.command('audit').description('the audit journal');

withConfig(auditCmd.command('verify'))
  .description('check the hash chain of the audit journal')
  .action(async (_opts, cmd: Command) => {
    await withStore(configOf(cmd), async (store) => {
      const result = await verifyJournal(store);
      if (result.ok) {
        console.log(`ok ${result.records} records`);
      } else {
        console.log(`broken at record ${result.brokenSeq}: ${result.reason} (${result.records} records verified before it)`);
        process.exitCode = 1;
      }
    });
  });

const storeCmd = program.command('store').description('the database');

/** A database of the migration that cannot be reached: say which (without the password) and why. */
async function reachingLocation<T>(location: StoreLocation, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (location.engine !== 'postgres' || typeof (err as { code?: unknown }).code !== 'string') throw err;
    throw new StoreUnavailableError(`cannot use the PostgreSQL database ${describeLocation(location)}: ${(err as Error).message}`, { cause: err });
  }
}

storeCmd
  .command('migrate')
  .description('copy a whole operator from SQLite to an empty PostgreSQL database, then verify the copy (stop the server first)')
  .requiredOption('--from <source>', 'sqlite:<path> (e.g. sqlite:data/mss.sqlite)')
  .requiredOption('--to <target>', 'postgres:<url> (e.g. postgres:postgres://mss@127.0.0.1:5432/mss), an empty database')
  .option('--verify-only', 'copy nothing: compare a target migrated before with the source')
  .action(async (opts: { from: string; to: string; verifyOnly?: boolean }) => {
    const from = parseStoreLocation(opts.from);
    const to = parseStoreLocation(opts.to);
    if (from.engine !== 'sqlite') throw new MigrationRefusedError(`--from ${opts.from}: the source must be sqlite:<path>`);
    if (to.engine !== 'postgres') throw new MigrationRefusedError(`--to ${opts.to}: the target must be postgres:<url>`);
    const source = await openDumpSource(from);
    try {
      const target = await reachingLocation(to, () => openDumpTarget(to));
      try {
        const bars = { copy: new ProgressBar(process.stderr, 'copying'), verify: new ProgressBar(process.stderr, 'verifying') };
        const onProgress = (phase: 'copy' | 'verify', done: number, total: number, table: string) => bars[phase].update(done, total, table);
        if (!opts.verifyOnly) {
          try {
            await copyStore(source, target, { onProgress });
          } catch (err) {
            bars.copy.finish();
            if (err instanceof TargetNotEmptyError || err instanceof MigrationRefusedError) throw err;
            console.error(`mss: the copy failed and was rolled back: ${describeLocation(to)} holds no operator data; fix the cause and run the same command again`);
            throw err;
          }
          bars.copy.finish();
        }
        const outcome = await verifyCopy(source, target, { onProgress });
        bars.verify.finish();
        if (!outcome.ok) {
          console.log(`mismatch: ${outcome.mismatch}`);
          console.log(
            opts.verifyOnly
              ? 'the target does not match the source'
              : `the target does not match the source: drop ${describeLocation(to)} and create a fresh database before migrating again (the source was only read)`,
          );
          process.exitCode = 1;
          return;
        }
        const c = outcome.counts;
        console.log(
          `${opts.verifyOnly ? 'compared' : 'migrated'} ${c.mailboxes} mailboxes, ${c.folders} folders, ${c.messages} messages, ${c.blobs} blobs, ${c.audit} audit records; verified`,
        );
        console.log(
          `(schema version ${outcome.schemaVersion}, ${c.queue} queue items, ${c.auth_failures} login-failure counters, last audit hash ${outcome.lastAuditHash ?? 'none'})`,
        );
        console.log(
          `next: point the config at the target — store: { "engine": "postgres", "url": "${describeLocation(to).slice('postgres:'.length)}" } — and keep the same dataDir ` +
            `(its master.key unlocks the copied mailbox keys), certsDir and store.blobs (bodies stored as files in the blob directory are ` +
            `not copied: the target refers to the same files); the SQLite file is left as it was`,
        );
      } finally {
        await target.close();
      }
    } finally {
      await source.close();
    }
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (
    err instanceof ConfigError ||
    err instanceof PkiCommandError ||
    err instanceof Refusal ||
    err instanceof UsageError ||
    err instanceof MailboxError ||
    err instanceof InvalidArgumentError ||
    err instanceof StoreUnavailableError ||
    err instanceof MigrationRefusedError ||
    err instanceof TargetNotEmptyError ||
    err instanceof SourceMissingError
  ) {
    console.error(`mss: ${err.message}`);
  } else {
    console.error(`mss: unexpected error: ${(err as Error).stack ?? String(err)}`);
  }
  process.exit(2);
});
