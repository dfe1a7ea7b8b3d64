import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { audit } from '../audit/journal.js';
import { Certificate } from '../crypto/cms/certificate.js';
import { devPkiPaths } from '../crypto/devpki.js';
import { openTrustStore } from '../store/trust.js';
import type { TrustDomainRow, TrustListRow, TrustStore } from '../store/trust-types.js';
import type { Store } from '../store/types.js';
import { certificateSubjectText } from './dn.js';
import type { TrustConfig } from './trust-config.js';
import { exportTrustList, type TrustDomain } from './trust-list.js';
import { CaBundleError, importTrustList, TrustListError, validateCaBundle } from './trust-store.js';

/**
 * `mss trust …`: import the trust-space list (with the CA bundle its operators chain to), show it, and export
 * this operator's own entries in the same format so another operator (or another instance in a test) can
 * trust us. Registered on the `mss` program by `registerTrustCommands`.
 */

/** The configuration keys these commands read (a `Config` fits). */
export interface TrustCliConfig {
  certsDir: string;
  hostname: string;
  localDomains: string[];
  trust?: Partial<Pick<TrustConfig, 'maxBytes' | 'maxSkippedRatio'>> & { export?: Partial<TrustConfig['export']> };
}

export interface TrustCliDeps {
  /** Runs `work` with the operator's open store (cli.ts: `withStore(configOf(cmd), work)`). */
  withStore<T>(cmd: Command, work: (store: Store) => Promise<T>): Promise<T>;
  configOf(cmd: Command): TrustCliConfig;
  out?: (line: string) => void;
  err?: (line: string) => void;
}

/** Errors of these commands that a person can act on: printed as `mss: …`, exit code 2. */
class TrustUsageError extends Error {}

const KNOWN_ERRORS = [TrustListError, CaBundleError, TrustUsageError, InvalidArgumentError];

function ratio(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('expected a number from 0 to 1');
  return n;
}

function readInput(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new TrustUsageError(`cannot read the ${what} ${file}: ${(e as Error).message}`);
  }
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

function listLine(l: TrustListRow): string {
  const ca = l.caBundle ? `${Certificate.parseAll(l.caBundle).length} CA certificates` : 'no CA bundle';
  return `list #${l.id}: generated ${iso(l.generatedAt)}, imported ${iso(l.importedAt)} from ${l.source}, ${l.domainCount} entries, ${ca}, sha256 ${l.sha256.slice(0, 16)}…`;
}

function domainLine(d: TrustDomainRow): string {
  return `${d.name}  ${d.operatorDn}${d.description ? `  (${d.description})` : ''}  updated ${iso(d.updatedAt)}`;
}

/** Our own entries: each served domain with the subject DN of our server certificate. */
export function ownTrustEntries(config: TrustCliConfig): { entries: TrustDomain[]; serverCertificate: Certificate } {
  const file = devPkiPaths(config.certsDir).serverCert;
  const [server] = Certificate.parseAll(readInput(file, 'server certificate'));
  if (!server) throw new TrustUsageError(`no certificate in ${file}: run "mss init" first`);
  const settings = config.trust?.export ?? {};
  const domains = settings.domains ?? config.localDomains;
  if (domains.length === 0) throw new TrustUsageError('no domain to export: set trust.export.domains or localDomains');
  const entries = domains.map((name) => ({
    name,
    description: settings.description ?? `Opérateur ${config.hostname}`,
    operatorDn: certificateSubjectText(server),
    responsableContact: settings.responsableContact ?? '',
    supportContact: settings.supportContact ?? '',
    updatedAt: server.notBefore.getTime(),
  }));
  return { entries, serverCertificate: server };
}

/** The CAs our server certificate chains to: the issuers in its file, then the dev PKI root. */
function ownCaBundle(config: TrustCliConfig): string {
  const paths = devPkiPaths(config.certsDir);
  const chain = Certificate.parseAll(readInput(paths.serverCert, 'server certificate')).slice(1);
  const root = Certificate.parseAll(readInput(paths.caCert('root'), 'root CA certificate'));
  const all = [...chain, ...root].filter((c, i, list) => list.findIndex((o) => o.equals(c)) === i);
  return validateCaBundle(all.map((c) => c.pem).join('')).pem;
}

export function registerTrustCommands(program: Command, deps: TrustCliDeps): Command {
  const out = deps.out ?? ((line: string) => console.log(line));
  const err = deps.err ?? ((line: string) => console.error(line));
  const withConfig = (cmd: Command) => cmd.option('-c, --config <file>', 'configuration file (default ./config.json, else built-in defaults)');

  /** Runs an action with the trust store of the operator's store; known errors become `mss: …` and exit code 2. */
  const run = async (cmd: Command, work: (trust: TrustStore, store: Store) => Promise<void>): Promise<void> => {
    try {
      await deps.withStore(cmd, (store) => work(openTrustStore(store), store));
    } catch (e) {
      if (!KNOWN_ERRORS.some((k) => e instanceof k)) throw e;
      err(`mss: ${(e as Error).message}`);
      process.exitCode = 2;
    }
  };

  const trust = program.command('trust').description('the trust space: operator domains and the certificates they present (liste blanche)');

  withConfig(trust.command('import <xml>'))
    .description('make this list (national XML format) the trust space, with the CA bundle its operators chain to; a list that fails to parse changes nothing')
    .option('--ca <pem>', 'PEM bundle of the CA certificates the operators\' certificates must chain to (default: keep the current one)')
    .option('--max-skipped-ratio <ratio>', 'refuse the list when a larger share of its entries is unusable (default: config trust.maxSkippedRatio, else 0.1)', ratio)
    .action(async (file: string, opts: { ca?: string; maxSkippedRatio?: number }, cmd: Command) => {
      const config = deps.configOf(cmd);
      await run(cmd, async (t, store) => {
        const object = path.basename(file);
        const xml = readInput(file, 'trust list');
        const caBundle = opts.ca === undefined ? undefined : readInput(opts.ca, 'CA bundle');
        const maxSkippedRatio = opts.maxSkippedRatio ?? config.trust?.maxSkippedRatio;
        let report;
        try {
          report = await importTrustList(t, xml, {
            source: object,
            ...(caBundle === undefined ? {} : { caBundle }),
            ...(config.trust?.maxBytes === undefined ? {} : { maxBytes: config.trust.maxBytes }),
            ...(maxSkippedRatio === undefined ? {} : { maxSkippedRatio }),
          });
        } catch (e) {
          if (e instanceof TrustListError) {
            await audit(store, { actor: 'cli', action: 'trust-import', object, outcome: 'refused', detail: { reason: e.message } });
            const active = await t.activeList();
            if (active) err(`the trust space stays as it was: ${listLine(active)}`);
          }
          throw e;
        }
        const { list } = report;
        await audit(store, {
          actor: 'cli',
          action: 'trust-import',
          object,
          outcome: report.replaced ? 'ok' : 'unchanged',
          detail: { list: list.id, entries: list.domainCount, skipped: report.skipped.length, sha256: list.sha256, ca: list.caBundle !== null },
        });
        out(report.replaced ? `imported ${object} as ${listLine(list)}` : `unchanged: ${object} is the list in force (${listLine(list)})`);
        if (report.skipped.length > 0) {
          out(`skipped entries (the first ${Math.min(20, report.skipped.length)} of ${report.skipped.length}):`);
          for (const s of report.skipped.slice(0, 20)) out(`  entry ${s.index}${s.name ? ` (${s.name})` : ''}: ${s.reason}`);
        }
        for (const w of report.caWarnings) out(`warning: ${w}`);
        if (list.caBundle === null) out('no CA bundle: operators\' certificates cannot be checked until one is given (mss trust import <xml> --ca <pem>)');
      });
    });

  withConfig(trust.command('list [domain]'))
    .description('show the list in force, or the entries of one domain')
    .option('--history', 'also show the lists imported before')
    .action(async (domain: string | undefined, opts: { history?: boolean }, cmd: Command) => {
      await run(cmd, async (t) => {
        const active = await t.activeList();
        if (!active) throw new TrustUsageError('no trust list imported yet: run "mss trust import <xml> --ca <pem>" or set trust.source');
        out(listLine(active));
        if (active.caBundle) for (const c of Certificate.parseAll(active.caBundle)) out(`  CA: ${c.subject}  (until ${c.notAfter.toISOString().slice(0, 10)})`);
        const entries = domain === undefined ? await t.listDomains() : await t.lookupDomain(domain);
        if (domain !== undefined && entries.length === 0) {
          out(`${domain} is not in the trust space`);
          process.exitCode = 1;
        }
        for (const d of entries) out(`  ${domainLine(d)}`);
        if (opts.history) {
          out('history:');
          for (const l of (await t.history(50)).slice(1)) out(`  ${listLine(l)}`);
        }
      });
    });

  withConfig(trust.command('export'))
    .description("write this operator's entries (each served domain with our server certificate's DN) in the national XML format")
    .option('--out <file>', 'write the list here (default: standard output)')
    .option('--all', 'also include every entry of the list in force')
    .option('--ca-out <file>', 'also write the CA bundle our server certificate chains to (PEM), for the other side\'s --ca')
    .action(async (opts: { out?: string; all?: boolean; caOut?: string }, cmd: Command) => {
      const config = deps.configOf(cmd);
      await run(cmd, async (t) => {
        const own = ownTrustEntries(config);
        const others = opts.all ? await t.listDomains() : [];
        const ownKeys = new Set(own.entries.map((e) => `${e.name.toLowerCase()} ${e.operatorDn}`));
        const entries = [...own.entries, ...others.filter((d) => !ownKeys.has(`${d.name.toLowerCase()} ${d.operatorDn}`))];
        const xml = exportTrustList({ generatedAt: Date.now(), domains: entries });
        if (opts.caOut) writeFileSync(opts.caOut, ownCaBundle(config));
        if (opts.out) {
          writeFileSync(opts.out, xml);
          err(`wrote ${entries.length} entries to ${opts.out}${opts.caOut ? ` and the CA bundle to ${opts.caOut}` : ''}`);
        } else out(xml.replace(/\n$/, ''));
      });
    });

  return trust;
}
