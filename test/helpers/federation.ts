/**
 * Operators that exchange mail with each other in one test (issue 7): each its own dev PKI made before it
 * starts (so the others' configurations can name its CA certificates and CRLs), the `mss trust`, `mss directory`
 * and `mss queue` commands run in process against an operator's store (the same code as src/cli.ts), and
 * mailbox reading over IMAP.
 */
import path from 'node:path';
import { Writable } from 'node:stream';
import { Command } from 'commander';
import { ImapFlow } from 'imapflow';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { devPkiPaths, ensureDevPki } from '../../src/crypto/devpki.js';
import { createMasterKey } from '../../src/crypto/seal.js';
import { registerDirectoryCommands } from '../../src/directory/cli.js';
import { openKeyring, pkiOptions } from '../../src/init.js';
import { registerTrustCommands } from '../../src/policy/trust-cli.js';
import { registerQueueCommands } from '../../src/queue/cli.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/types.js';
import { passwordOf, type TestOperator } from './operator.js';

/** Where an operator's data and dev PKI live, and the CA files another operator configures to trust it. */
export interface OperatorPki {
  dataDir: string;
  certsDir: string;
  /** Its dev root CA certificate (PEM file). */
  root: string;
  /** Its persons and organisations CA certificates (PEM files). */
  intermediates: string[];
  /** The CRLs of its three CAs (PEM files, rewritten in place when it revokes a certificate). */
  crls: string[];
}

/**
 * The master key and dev PKI of an operator to be started with `{ dataDir, certsDir, hostname }` from this
 * result: what `mss init` would create first, made early so that the peers' configurations can point at its CA
 * certificates and CRLs. `mss init` then finds them and creates only the database and the demo.
 */
export async function prepareOperatorPki(dir: string, hostname: string): Promise<OperatorPki> {
  const dataDir = path.join(dir, 'data');
  const certsDir = path.join(dir, 'certs');
  const config = parseConfig({ dataDir, certsDir, hostname }, dir);
  createMasterKey(dataDir);
  await ensureDevPki(pkiOptions(config, openKeyring(config)));
  return { dataDir, certsDir, ...devPkiFiles(certsDir) };
}

/** The CA certificate and CRL files of a dev PKI, as another operator configures them to trust it. */
export type PkiFiles = Pick<OperatorPki, 'root' | 'intermediates' | 'crls'>;

export function devPkiFiles(certsDir: string): PkiFiles {
  const p = devPkiPaths(certsDir);
  return {
    root: p.caCert('root'),
    intermediates: [p.caCert('persons'), p.caCert('organisations')],
    crls: [p.caCrl('root'), p.caCrl('persons'), p.caCrl('organisations')],
  };
}

/**
 * `security` settings of an operator whose S/MIME trust covers its own dev PKI (kept: setting these keys
 * replaces the defaults) and the practitioners' PKIs of `peers`.
 */
export function smimeTrust(own: PkiFiles, peers: readonly PkiFiles[]): NonNullable<ConfigInput['security']> {
  const all = [own, ...peers];
  return {
    trustAnchors: all.map((p) => p.root),
    intermediates: all.flatMap((p) => p.intermediates),
    crlFiles: all.flatMap((p) => p.crls),
  };
}

export interface CliResult {
  out: string[];
  err: string[];
  exitCode: number;
}

/** Runs `work` with a store of its own on the operator's database (the server may be running or stopped). */
export async function withOperatorStore<T>(op: TestOperator, work: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(op.config);
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

/** `mss trust|directory|queue …` for this operator, in process: the lines printed and the exit code. */
export async function mss(op: TestOperator, ...args: string[]): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const program = new Command('mss').exitOverride();
  const withStore = <T>(_cmd: Command, work: (store: Store) => Promise<T>) => withOperatorStore(op, work);
  const io = { out: (l: string) => out.push(l), err: (l: string) => err.push(l) };
  registerTrustCommands(program, { withStore, configOf: () => op.config, ...io });
  const progressStream = new Writable({ write: (_chunk, _encoding, done) => done() });
  registerDirectoryCommands(program, { withStore, importMaxBadRatio: () => op.config.directory.importMaxBadRatio, progressStream, ...io });
  registerQueueCommands(program, { withStore, keyringOf: () => openKeyring(op.config), ...io });
  const before = process.exitCode;
  process.exitCode = 0;
  try {
    await program.parseAsync(['node', 'mss', ...args]);
    return { out, err, exitCode: Number(process.exitCode ?? 0) };
  } finally {
    process.exitCode = before;
  }
}

/** The messages of one folder of `user`'s mailbox, oldest first, as an IMAP client reads them. */
export async function folderMessages(op: TestOperator, user: string, folder = 'INBOX'): Promise<Buffer[]> {
  const client = new ImapFlow({
    host: '127.0.0.1',
    port: op.ports.imaps,
    secure: true,
    auth: { user, pass: passwordOf(op, user) },
    tls: { ca: op.ca, servername: 'localhost' },
    logger: false,
  });
  await client.connect();
  try {
    const box = await client.mailboxOpen(folder);
    const out: Buffer[] = [];
    if (box.exists === 0) return out;
    for await (const msg of client.fetch('1:*', { source: true })) out.push(msg.source!);
    return out;
  } finally {
    await client.logout();
  }
}
