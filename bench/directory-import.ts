/**
 * Directory import and lookup (docs/decisions/0007-directory.md): generates N rows of each public extraction
 * format (test/helpers/directory-files.ts: accents, empty fields, valid identifiers), then, for each engine,
 * in a fresh database, running the built code as `mss directory import` does (bench/_directory-import-child.mjs:
 * plain Node, without the TypeScript loader, which added 25–40 MB to the peak when the import ran from the sources):
 *   - imports the file (first import), then imports the same file again (re-import, unchanged), each in a child
 *     process of its own as the command runs, so that its peak RSS is that import's alone (both in one process, the
 *     re-import's peak was 50–70 MB higher: glibc kept the first import's freed blocks in its arenas);
 *   - prints rows/s of both, the CPU seconds of each importing process (user + system: on a shared machine a
 *     steadier figure than rows/s; PostgreSQL's own work is not in it), the peak RSS (process.resourceUsage()
 *     .maxRSS) of each (`first_rss_mb`, `reimport_rss_mb`) and the larger (`rss_mb`), and the load average;
 *   - on SQLite, the floor (bench/_directory-floor-child.mjs): the rows/s of SQLite alone writing the same records
 *     and building the same indexes, nothing read (`floor_*`), and with only the indexes the lookups need
 *     (`floor_required_*`); no import can be faster on the same machine;
 * then measures lookups by address (DirectoryStore.getMailbox) of random existing mailboxes, in a child too.
 *
 *   npm run bench -- directory-import [--rows=1000000] [--lookups=100000] [--engines=sqlite,postgres] [--files=<dir>]
 *   MSS_BENCH_NODE_FLAGS="--cpu-prof --cpu-prof-dir=./prof"   flags for the child processes (profiling; the parsing
 *                                                            thread gets a profile of its own)
 *
 * PostgreSQL runs get a fresh database `mss_bench_<random>` on 127.0.0.1:5432, dropped afterwards; the engine is
 * skipped (and says so) when the server cannot be reached.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { openDirectoryStore } from '../src/store/directory.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { Store } from '../src/store/types.js';
import { perAddress, writeMssFile, writePsFile } from '../test/helpers/directory-files.js';
import { buildIfNeeded } from './_operator.js';

const arg = (name: string, dflt: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt;
const ROWS = Number(arg('rows', '1000000'));
const LOOKUPS = Number(arg('lookups', '100000'));
const ENGINES = arg('engines', 'sqlite,postgres').split(',') as ('sqlite' | 'postgres')[];
const FILES_DIR = arg('files', '');
const PG_ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';
const self = fileURLToPath(import.meta.url);
const importChild = path.join(path.dirname(self), '_directory-import-child.mjs');
const floorChild = path.join(path.dirname(self), '_directory-floor-child.mjs');

type Engine = 'sqlite' | 'postgres';
interface Target {
  engine: Engine;
  location: string; // SQLite file or PostgreSQL URL
}

async function open(target: Target): Promise<Store> {
  return target.engine === 'sqlite' ? openSqliteStore(target.location) : openPostgresStore(target.location, { poolSize: 4 });
}

const rssMb = () => process.resourceUsage().maxRSS / 1024;

// ---- child processes ----

async function childLookups(target: Target, rows: number, lookups: number): Promise<void> {
  const store = await open(target);
  try {
    const dir = openDirectoryStore(store);
    // Random PER mailboxes (rows i with i % 10 < 9 are PER in the generated file).
    let seed = 42;
    const random = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const addresses: string[] = [];
    while (addresses.length < lookups) {
      const i = Math.floor(random() * rows);
      if (i % 10 < 9) addresses.push(perAddress(i));
    }
    // Warm-up (statement preparation, first pages), not measured.
    for (const a of addresses.slice(0, 1000)) await dir.getMailbox(a);
    const times: number[] = new Array(addresses.length);
    let found = 0;
    for (let i = 0; i < addresses.length; i++) {
      const t0 = process.hrtime.bigint();
      const m = await dir.getMailbox(addresses[i]!);
      times[i] = Number(process.hrtime.bigint() - t0) / 1e6;
      if (m) found++;
    }
    times.sort((a, b) => a - b);
    const at = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))]!;
    console.log(JSON.stringify({ lookups: times.length, found, p50: at(0.5), p99: at(0.99), max: times[times.length - 1], rssMb: rssMb(), load: os.loadavg()[0] }));
  } finally {
    await store.close();
  }
}

/** Runs a child: the import from the build (bench/_directory-import-child.mjs), the lookups from the sources. */
function runChild(args: string[]): unknown {
  const flags = (process.env.MSS_BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const [mode, ...rest] = args;
  const command = mode === 'import' ? [importChild, ...rest] : mode === 'floor' ? [floorChild, ...rest] : ['--import', 'tsx', self, '--child', ...args];
  const r = spawnSync(process.execPath, [...flags, ...command], { encoding: 'utf8', maxBuffer: 1 << 24, stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`child failed (${r.status}): ${args.join(' ')}`);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last);
}

// ---- parent ----

async function pgReachable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_ADMIN });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.end();
    return true;
  } catch {
    return false;
  }
}

async function pgAdmin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_ADMIN });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

async function main(): Promise<void> {
  if (process.argv.includes('--child')) {
    const [mode, engine, location, ...rest] = process.argv.slice(process.argv.indexOf('--child') + 1);
    const target = { engine: engine as Engine, location: location! };
    if (mode === 'lookups') await childLookups(target, Number(rest[0]), Number(rest[1]));
    return;
  }

  buildIfNeeded();
  const work = mkdtempSync(path.join(os.tmpdir(), 'mss-bench-dir-'));
  const databases: string[] = [];
  const lines: string[] = [];
  try {
    // --files=<dir> keeps the generated files there for the next run (they are generated once per row count).
    const fileDir = FILES_DIR || work;
    const files = {
      mss: path.join(fileDir, `Extraction_Correspondance_MSSante${FILES_DIR ? `_${ROWS}` : ''}.txt`),
      ps: path.join(fileDir, `PS_LibreAcces_Personne_activite${FILES_DIR ? `_${ROWS}` : ''}.txt`),
    };
    let t = Date.now();
    if (!existsSync(files.mss)) await writeMssFile(files.mss, ROWS);
    if (!existsSync(files.ps)) await writePsFile(files.ps, ROWS);
    console.log(
      `generated ${ROWS} rows of each format in ${((Date.now() - t) / 1000).toFixed(1)} s ` +
        `(mss ${(statSync(files.mss).size / 1e6).toFixed(0)} MB, ps ${(statSync(files.ps).size / 1e6).toFixed(0)} MB)`,
    );
    for (const engine of ENGINES) {
      if (engine === 'postgres' && !(await pgReachable())) {
        lines.push('RESULT directory-import engine=postgres skipped=unreachable');
        continue;
      }
      let target: Target;
      if (engine === 'sqlite') {
        target = { engine, location: path.join(work, `${engine}.sqlite`) };
      } else {
        const name = `mss_bench_${randomBytes(6).toString('hex')}`;
        await pgAdmin(`CREATE DATABASE ${name}`);
        databases.push(name);
        target = { engine, location: `postgres://postgres@127.0.0.1:5432/${name}` };
      }
      // Create the schema before the measured children.
      await (await open(target)).close();
      for (const format of ['mss', 'ps'] as const) {
        t = Date.now();
        // The first import and the re-import, each in a process of its own, as `mss directory import` runs.
        type Imported = { rows: number; bad: number; ms: number; rowsPerS: number; cpuS: number; diff: Record<string, { added: number; removed: number; changed: number }>; rssMb: number; load: number };
        const first = runChild(['import', engine, target.location, files[format]]) as Imported;
        const again = runChild(['import', engine, target.location, files[format]]) as Imported;
        // SQLite's own share, measured apart in a fresh database (bench/_directory-floor-child.mjs).
        let floor = '';
        if (engine === 'sqlite') {
          // Then with only the indexes the lookups need (bench/_directory-floor-child.mjs says which).
          for (const indexSet of ['all', 'required'] as const) {
            const floorDb = path.join(work, `floor-${format}.sqlite`);
            await (await open({ engine, location: floorDb })).close();
            const f = runChild(['floor', floorDb, files[format], indexSet]) as { ms: number; rowsPerS: number; indexes: number };
            const name = indexSet === 'all' ? 'floor' : 'floor_required';
            floor += ` ${name}_rows_per_s=${f.rowsPerS} ${name}_seconds=${(f.ms / 1000).toFixed(1)} ${name}_indexes=${f.indexes}`;
            rmSync(floorDb, { force: true });
          }
        }
        const unchanged = Object.values(again.diff).every((d) => d.added === 0 && d.removed === 0 && d.changed === 0);
        const line =
          `RESULT directory-import-${format} engine=${engine} rows=${first.rows} bad=${first.bad} rows_per_s=${first.rowsPerS} ` +
          `seconds=${(first.ms / 1000).toFixed(1)} reimport_rows_per_s=${again.rowsPerS} reimport_seconds=${(again.ms / 1000).toFixed(1)} ` +
          `reimport_speedup=${(first.ms / again.ms).toFixed(2)} reimport_unchanged=${unchanged} rss_mb=${Math.max(first.rssMb, again.rssMb).toFixed(0)} ` +
          `first_rss_mb=${first.rssMb.toFixed(0)} reimport_rss_mb=${again.rssMb.toFixed(0)} ` +
          `cpu_s=${first.cpuS.toFixed(1)} reimport_cpu_s=${again.cpuS.toFixed(1)}${floor} load1=${again.load.toFixed(1)}`;
        console.log(line);
        lines.push(line);
      }
      const l = runChild(['lookups', engine, target.location, String(ROWS), String(LOOKUPS)]) as {
        lookups: number;
        found: number;
        p50: number;
        p99: number;
        max: number;
        load: number;
      };
      const line =
        `RESULT directory-lookup engine=${engine} lookups=${l.lookups} found=${l.found} p50_ms=${l.p50.toFixed(3)} p99_ms=${l.p99.toFixed(3)} ` +
        `max_ms=${l.max.toFixed(1)} load1=${l.load.toFixed(1)}`;
      console.log(line);
      lines.push(line);
    }
  } finally {
    for (const db of databases) await pgAdmin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
  console.log('\n' + lines.join('\n'));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
