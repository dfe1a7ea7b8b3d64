import { readFileSync } from 'node:fs';
import path from 'node:path';
import { WriteStream } from 'node:tty';
import cliProgress from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { audit } from '../audit/journal.js';
import { openDirectoryStore } from '../store/directory.js';
import { DIRECTORY_ENTITIES, ImportConflictError, type DirectoryStore, type DirMailbox, type DirSnapshot } from '../store/directory-types.js';
import type { Store } from '../store/types.js';
import { CertificateFileError, directoryCertificate } from './certificates.js';
import { FORMAT_NAMES } from './formats.js';
import { identifierKind } from './identifiers.js';
import { DirectoryFileError, importDirectoryFile, type ImportProgress, type ImportReport } from './import.js';
import { mailboxDisplayName, parseQuery, parseShowTarget, searchDirectory } from './lookup.js';

/**
 * `mss directory …`: import the public extraction files, look entries up, manage owners' certificates
 * (docs/decisions/0007-directory.md). Registered on the `mss` program by `registerDirectoryCommands`.
 */

export interface DirectoryCliDeps {
  /** Runs `work` with the operator's open store, for the command's configuration (cli.ts: `withStore(configOf(cmd), work)`). */
  withStore<T>(cmd: Command, work: (store: Store) => Promise<T>): Promise<T>;
  /** `directory.importMaxBadRatio` of the command's configuration (default 0.5). */
  importMaxBadRatio?(cmd: Command): number;
  /** Where results go (default: standard output) and where messages and progress go (default: standard error). */
  out?: (line: string) => void;
  err?: (line: string) => void;
  progressStream?: NodeJS.WritableStream;
}

/** Errors of these commands that a person can act on: printed as `mss: …`, exit code 2. */
class DirectoryUsageError extends Error {}

const KNOWN_ERRORS = [DirectoryFileError, ImportConflictError, CertificateFileError, DirectoryUsageError, InvalidArgumentError];

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

function ratio(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('expected a number from 0 to 1');
  return n;
}

/** What the progress view says of the import's steps that have no measure. */
const STEPS: Partial<Record<ImportProgress['phase'], string>> = { compare: 'comparing with the directory...', write: 'writing the directory...' };

/**
 * Progress of an import on a stream: a redrawn bar with rows/s on a terminal (cli-progress), a plain line at
 * each tenth of the file otherwise (logs stay readable).
 */
class ImportProgressView {
  #bar: cliProgress.SingleBar | null = null;
  #phase: ImportProgress['phase'] | null = null;
  #lastTenth = -1;

  constructor(private readonly stream: NodeJS.WritableStream) {}

  update(p: ImportProgress): void {
    // Steps without a measure: one line each (a first load of a million rows builds its indexes for seconds).
    const step = STEPS[p.phase];
    if (step !== undefined) {
      if (p.phase === this.#phase) return;
      this.finish();
      this.#phase = p.phase;
      this.stream.write(`${step}\n`);
      return;
    }
    const label = p.phase === 'read' ? 'reading' : 'changed rows';
    const rate = Math.round((p.rows * 1000) / Math.max(1, p.elapsedMs));
    if (p.phase !== this.#phase) {
      this.finish();
      this.#phase = p.phase;
      this.#lastTenth = -1;
      if (this.stream instanceof WriteStream && this.stream.isTTY) {
        this.#bar = new cliProgress.SingleBar(
          { stream: this.stream, format: `${label.padEnd(12)} [{bar}] {percentage}% | {rows} rows | {rate} rows/s | {bad} bad`, hideCursor: true },
          cliProgress.Presets.shades_classic,
        );
        this.#bar.start(p.bytesTotal, 0, { rows: 0, rate: 0, bad: 0 });
      }
    }
    if (this.#bar) {
      this.#bar.update(p.bytesRead, { rows: p.rows, rate, bad: p.badRows });
      return;
    }
    const tenth = p.bytesTotal === 0 ? 10 : Math.floor((p.bytesRead * 10) / p.bytesTotal);
    if (tenth === this.#lastTenth) return;
    this.#lastTenth = tenth;
    this.stream.write(`${label}: ${tenth * 10}% (${p.rows} rows, ${rate} rows/s, ${p.badRows} bad)\n`);
  }

  finish(): void {
    this.#bar?.stop();
    this.#bar = null;
  }
}

function describeDiff(report: ImportReport): string[] {
  return Object.entries(report.diff).map(
    ([entity, d]) => `  ${entity.padEnd(13)} +${d.added} added  -${d.removed} removed  ~${d.changed} changed  ${d.unchanged} unchanged`,
  );
}

function snapshotLine(s: DirSnapshot): string {
  const when = new Date(s.startedAt).toISOString();
  const totals = Object.entries(s.diff)
    .map(([e, d]) => `${e} +${d.added}/-${d.removed}/~${d.changed}`)
    .join(', ');
  return `#${s.id}  ${s.kind.padEnd(3)}  ${s.status.padEnd(8)}  ${when}  ${s.sourceName}  ${s.rowsTotal} rows, ${s.rowsBad} bad${totals ? `  ${totals}` : ''}${s.error ? `  error: ${s.error}` : ''}`;
}

function mailboxLine(m: DirMailbox): string {
  const about = [m.professionLabel, m.organisationName, m.city].filter(Boolean).join(', ');
  const flags = [m.listeRouge ? 'liste rouge' : '', m.active ? '' : `inactive since snapshot ${m.removedSnapshot}`].filter(Boolean);
  return `${m.address}  ${m.type}  ${mailboxDisplayName(m)}${about ? `  (${about})` : ''}${flags.length ? `  [${flags.join(', ')}]` : ''}`;
}

export function registerDirectoryCommands(program: Command, deps: DirectoryCliDeps): Command {
  const out = deps.out ?? ((line: string) => console.log(line));
  const err = deps.err ?? ((line: string) => console.error(line));
  const withConfig = (cmd: Command) => cmd.option('-c, --config <file>', 'configuration file (default ./config.json, else built-in defaults)');

  /** Runs an action with the directory of the operator's store; known errors become `mss: …` and exit code 2. */
  const run = async (cmd: Command, work: (directory: DirectoryStore, store: Store) => Promise<void>): Promise<void> => {
    try {
      await deps.withStore(cmd, (store) => work(openDirectoryStore(store), store));
    } catch (e) {
      if (!KNOWN_ERRORS.some((k) => e instanceof k)) throw e;
      err(`mss: ${(e as Error).message}`);
      process.exitCode = 2;
    }
  };

  const directory = program.command('directory').description('the practitioner directory (Annuaire Santé extractions)');

  withConfig(directory.command('import <file>'))
    .description(
      `import an extraction file ("${FORMAT_NAMES.mss}" or "${FORMAT_NAMES.ps}", detected by its header); ` +
        're-importing applies only the difference with the previous snapshot',
    )
    .option('--show-bad <n>', 'bad rows to list', positiveInt, 20)
    .option('--max-bad-ratio <ratio>', 'refuse the file when a larger share of its rows is bad (default: config directory.importMaxBadRatio)', ratio)
    .action(async (file: string, opts: { showBad: number; maxBadRatio?: number }, cmd: Command) => {
      await run(cmd, async (dir, store) => {
        const view = new ImportProgressView(deps.progressStream ?? process.stderr);
        const object = path.basename(file);
        let report: ImportReport;
        try {
          report = await importDirectoryFile(dir, file, {
            onProgress: (p) => view.update(p),
            maxBadRatio: opts.maxBadRatio ?? deps.importMaxBadRatio?.(cmd) ?? 0.5,
          });
        } catch (e) {
          view.finish();
          if (e instanceof DirectoryFileError || e instanceof ImportConflictError) {
            await audit(store, { actor: 'cli', action: 'directory-import', object, outcome: 'refused', detail: { reason: e.message } });
          }
          throw e;
        } finally {
          view.finish();
        }
        const counts: Record<string, number | string> = { snapshot: report.snapshot.id, format: report.format, rows: report.rows, bad: report.badRowCount };
        for (const [entity, d] of Object.entries(report.diff)) {
          for (const [k, v] of Object.entries(d)) counts[`${entity}.${k}`] = v;
        }
        await audit(store, { actor: 'cli', action: 'directory-import', object, outcome: 'ok', detail: counts });
        out(
          `imported ${object} (${FORMAT_NAMES[report.format]}) as snapshot ${report.snapshot.id}${report.initial ? ' (first of its kind)' : ''}: ` +
            `${report.rows} rows, ${report.badRowCount} bad, ${(report.elapsedMs / 1000).toFixed(1)} s (${report.rowsPerSecond} rows/s)`,
        );
        for (const line of describeDiff(report)) out(line);
        if (report.badRowCount > 0) {
          const shown = report.badRows.slice(0, opts.showBad);
          out(`bad rows (ignored; the first ${shown.length} of ${report.badRowCount}):`);
          for (const b of shown) out(`  line ${b.line}: ${b.reason}`);
        }
      });
    });

  withConfig(directory.command('search <text...>'))
    .description('search mailboxes, practitioners and structures by name prefix (accents and case ignored) or address prefix')
    .option('--limit <n>', 'results per kind', positiveInt, 20)
    .action(async (words: string[], opts: { limit: number }, cmd: Command) => {
      await run(cmd, async (dir) => {
        const text = words.join(' ');
        const query = parseQuery(text);
        if (!query) throw new DirectoryUsageError(`search for at least 2 letters or digits of a name, or the start of an address (got ${JSON.stringify(text)})`);
        // The operator sees liste rouge mailboxes too (marked): only the address book hides them.
        const found = await searchDirectory(dir, query, { limit: opts.limit, includeListeRouge: true });
        out(`mailboxes (${found.mailboxes.length})`);
        for (const m of found.mailboxes) out(`  ${mailboxLine(m)}`);
        out(`practitioners (${found.practitioners.length})`);
        for (const p of found.practitioners) out(`  ${p.idNatPs}  ${[p.civility, p.firstName, p.lastName].filter(Boolean).join(' ')}`);
        out(`structures (${found.organisations.length})`);
        for (const o of found.organisations) out(`  ${o.idNatStruct}  ${o.name ?? o.enseigne ?? ''}${o.city ? `  (${o.postalCode ?? ''} ${o.city})` : ''}`);
      });
    });

  withConfig(directory.command('show <addressOrId>'))
    .description('everything the directory holds about a mailbox address, a practitioner (idNat_PS or RPPS) or a structure (idNat_Struct)')
    .action(async (value: string, _opts, cmd: Command) => {
      await run(cmd, async (dir) => {
        const target = parseShowTarget(value);
        if (!target) {
          throw new DirectoryUsageError(
            `${JSON.stringify(value)} is neither an address nor a national identifier (8 + RPPS, 0 + ADELI, 1 + FINESS, 2 + SIREN, 3 + SIRET)` +
              (identifierKind(value) === 'INS' ? ': patients are not in the directory' : ''),
          );
        }
        const certificates = async (ownerId: string) => {
          for (const c of await dir.listCertificates(ownerId)) {
            out(`  certificate ${c.fingerprint}  ${c.subject}  valid ${new Date(c.notBefore).toISOString().slice(0, 10)} → ${new Date(c.notAfter).toISOString().slice(0, 10)}`);
          }
        };
        if (target.kind === 'address') {
          const m = await dir.getMailbox(target.address);
          if (!m) throw new DirectoryUsageError(`${target.address} is not in the directory`);
          out(mailboxLine(m));
          for (const [k, v] of Object.entries({
            owner: m.ownerId,
            structure: m.structureId,
            service: m.service,
            profession: [m.professionCode, m.professionLabel].filter(Boolean).join(' '),
            specialty: [m.specialtyCode, m.specialtyLabel].filter(Boolean).join(' '),
            dematerialisation: m.dematerialisation,
            'in snapshots': `added ${m.addedSnapshot}, changed ${m.changedSnapshot}${m.removedSnapshot ? `, removed ${m.removedSnapshot}` : ''}`,
          })) {
            if (v !== null && v !== '') out(`  ${k}: ${String(v)}`);
          }
          if (m.ownerId) {
            const p = m.type === 'PER' || m.type === 'CAB' ? await dir.getPractitioner(m.ownerId) : null;
            if (p) out(`  practitioner: ${[p.firstName, p.lastName].join(' ')}${p.active ? '' : ' (inactive)'}`);
            else if (m.type === 'PER' || m.type === 'CAB') out('  practitioner: not in the PS_LibreAcces snapshot');
            await certificates(m.ownerId);
          }
          return;
        }
        if (target.kind === 'practitioner') {
          const p = await dir.getPractitioner(target.id);
          const mailboxes = await dir.mailboxesOfOwner(target.id);
          if (!p && mailboxes.length === 0) throw new DirectoryUsageError(`${target.id} is not in the directory`);
          if (p) {
            out(`${p.idNatPs}  ${[p.civility, p.firstName, p.lastName].filter(Boolean).join(' ')}${p.active ? '' : `  [inactive since snapshot ${p.removedSnapshot}]`}`);
            for (const a of await dir.activitiesOf(p.idNatPs)) {
              const about = [a.professionLabel, a.specialtyLabel, a.modeLabel, a.organisationName, [a.postalCode, a.city].filter(Boolean).join(' ')].filter(Boolean);
              out(`  activity: ${about.join(', ')}${a.structureId ? `  (${a.structureId})` : ''}`);
            }
          } else {
            out(`${target.id}  (not in the PS_LibreAcces snapshot)`);
          }
          for (const m of mailboxes) out(`  mailbox: ${mailboxLine(m)}`);
          await certificates(target.id);
          return;
        }
        const o = await dir.getOrganisation(target.id);
        const mailboxes = await dir.mailboxesOfStructure(target.id, 200);
        const activities = await dir.activitiesAtStructure(target.id, 200);
        if (!o && mailboxes.length === 0 && activities.length === 0) throw new DirectoryUsageError(`${target.id} is not in the directory`);
        out(o ? `${o.idNatStruct}  ${o.name ?? o.enseigne ?? ''}${o.city ? `  (${o.postalCode ?? ''} ${o.city})` : ''}${o.active ? '' : '  [inactive]'}` : target.id);
        for (const m of mailboxes) out(`  mailbox: ${mailboxLine(m)}`);
        for (const a of activities) out(`  practitioner: ${a.idNatPs}  ${a.professionLabel ?? ''}`);
        await certificates(target.id);
      });
    });

  withConfig(directory.command('status'))
    .description('imported snapshots (latest first) and the rows the directory holds')
    .option('--limit <n>', 'snapshots to list', positiveInt, 10)
    .action(async (opts: { limit: number }, cmd: Command) => {
      await run(cmd, async (dir) => {
        const counts = await dir.countRows();
        for (const e of DIRECTORY_ENTITIES) out(`${e.padEnd(13)} ${counts[e].active} active, ${counts[e].inactive} inactive`);
        const snapshots = await dir.listSnapshots(opts.limit);
        out(snapshots.length ? 'snapshots:' : 'no snapshot yet: run "mss directory import <file>"');
        for (const s of snapshots) out(`  ${snapshotLine(s)}`);
      });
    });

  withConfig(directory.command('changes <snapshot>'))
    .description('the rows a snapshot added, removed or changed (none are recorded for the first snapshot of a kind)')
    .option('--limit <n>', 'changes to list', positiveInt, 100)
    .action(async (snapshotText: string, opts: { limit: number }, cmd: Command) => {
      await run(cmd, async (dir) => {
        const id = positiveInt(snapshotText);
        const snapshot = await dir.getSnapshot(id);
        if (!snapshot) throw new DirectoryUsageError(`no snapshot ${id}`);
        out(snapshotLine(snapshot));
        for (const c of await dir.listChanges(id, { limit: opts.limit })) out(`  ${c.change.padEnd(8)} ${c.entity.padEnd(13)} ${c.key}`);
      });
    });

  const cert = directory.command('cert').description("certificates of a directory owner (practitioner or structure)");

  withConfig(cert.command('add <ownerId> <file>'))
    .description('attach a certificate (PEM or DER) to the owner of a national identifier')
    .action(async (ownerId: string, file: string, _opts, cmd: Command) => {
      await run(cmd, async (dir) => {
        const kind = identifierKind(ownerId);
        if (kind !== 'idNat_PS' && kind !== 'idNat_Struct') {
          throw new DirectoryUsageError(`${JSON.stringify(ownerId)} is not a practitioner (8 + RPPS, 0 + ADELI) or structure (1 + FINESS, 2 + SIREN, 3 + SIRET) identifier`);
        }
        let bytes: Buffer;
        try {
          bytes = readFileSync(file);
        } catch (e) {
          throw new DirectoryUsageError(`cannot read ${file}: ${(e as Error).message}`);
        }
        const c = directoryCertificate(ownerId, bytes);
        await dir.putCertificate(c);
        out(`certificate ${c.fingerprint} (${c.subject}) attached to ${ownerId}`);
      });
    });

  withConfig(cert.command('list <ownerId>'))
    .description("list an owner's certificates")
    .action(async (ownerId: string, _opts, cmd: Command) => {
      await run(cmd, async (dir) => {
        const list = await dir.listCertificates(ownerId);
        for (const c of list) out(`${c.fingerprint}  ${c.subject}  issuer ${c.issuer}  until ${new Date(c.notAfter).toISOString().slice(0, 10)}`);
        out(`${list.length} certificate${list.length === 1 ? '' : 's'}`);
      });
    });

  withConfig(cert.command('remove <fingerprint>'))
    .description('detach a certificate (SHA-256 fingerprint, hex)')
    .action(async (fingerprint: string, _opts, cmd: Command) => {
      await run(cmd, async (dir) => {
        if (!(await dir.removeCertificate(fingerprint.toLowerCase().replace(/:/g, '')))) throw new DirectoryUsageError(`no certificate ${fingerprint}`);
        out(`certificate ${fingerprint} removed`);
      });
    });

  return directory;
}
