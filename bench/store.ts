/**
 * Store engines under the submission workload: 5 KB messages over K (16) concurrent reused implicit-TLS
 * authenticated sessions, each waiting for its 250, run three ways in the same run:
 *   - SQLite, one `mss` process (durable: WAL, synchronous=FULL, one fsync per commit);
 *   - PostgreSQL on 127.0.0.1:5432, one `mss` process;
 *   - PostgreSQL, two `mss` processes on the same database (one operator directory: same master key and certs,
 *     `mss init` run once), the sessions split evenly between them as a TCP load balancer would.
 * Every PostgreSQL run gets a fresh database `mss_bench_<random>`, dropped afterwards. The engine sets
 * `synchronous_commit = on` on every connection; the server's `synchronous_commit` and `fsync` are printed.
 *
 * Recipients: session i sends to recipient i mod R, R mailboxes created with `mss mailbox add` (default R = 16,
 * one per session), so that one INBOX row lock (UID allocation) is not an artificial limit that a real operator
 * with many mailboxes would not have. `--recipients=1` sends everything to one INBOX (the hot-folder case).
 *
 * `cpu` = cores used during the measured interval: each gateway process (/proc/<pid>/stat utime+stime), and the
 * `postgres` processes of the bench database with the shared ones (postmaster, WAL writer, checkpointer…) together; `loadgen_cpu` is
 * this process (the TLS clients), `host_cpu` all cores busy (from /proc/stat) out of the machine's.
 * For PostgreSQL a sampler (10 Hz, pg_stat_activity of the bench database) tells where the backends spend their
 * time, e.g. `Lock:advisory` (audit chain lock), `Lock:transactionid` (row lock: a folder), `IO:WALSync` (commit
 * fsync), `idle-in-tx` (waiting for the gateway inside a transaction), `CPU` (running).
 *
 * `cpu_ms_per_msg` = CPU time per message (all gateways, PostgreSQL, load generator), steadier than throughput on a
 * busy machine. `--cases=pg1,pg2` (of `sqlite,pg1,pg2`) runs only those cases; with
 * `MSS_BENCH_NODE_FLAGS='--cpu-prof --cpu-prof-dir=<dir>'` each gateway writes a CPU profile when it stops.
 *
 * `--warmup=W` sends W messages before the measured N (each process warms its JIT, heap and pools on its own).
 *
 *   npm run bench -- store [--n=2000] [--warmup=0] [--k=16] [--runs=3] [--recipients=16] [--cases=…]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { buildIfNeeded, createOperator, DOMAIN, FROM, median, message, percentile, startServer, stopAllServersSync, type Server } from './_operator.js';
import { SmtpSession } from './_smtp-session.js';

const arg = (name: string, dflt: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt);
const N = arg('n', 2000);
/** Messages sent before the measured ones (each process's JIT, pools and caches warm up). */
const WARMUP = arg('warmup', 0);
const K = arg('k', 16);
const RUNS = arg('runs', 3);
const R = arg('recipients', 16);
const CASES = (process.argv.find((a) => a.startsWith('--cases='))?.split('=')[1] ?? 'sqlite,pg1,pg2').split(',');

const PG = { host: '127.0.0.1', port: 5432, user: 'postgres' };
const pgUrl = (db: string) => `postgres://${PG.user}@${PG.host}:${PG.port}/${db}`;
/** Bounds, so the bench always ends by itself. */
const PSQL_TIMEOUT_MS = 30_000;
const LOAD_TIMEOUT_MS = 10 * 60_000;
const SAMPLE_EVERY_MS = 100;
/** The sampler's application_name, so that its own backend is not counted in PostgreSQL's CPU. */
const SAMPLER = 'mss-bench-sampler';
const RECIPIENT_PASSWORD = 'bench-recipient-password';
const CLK_TCK = 100; // Linux USER_HZ: /proc/<pid>/stat counts in 1/100 s on every architecture Node runs on

type Engine = 'sqlite' | 'postgres';
interface Case {
  engine: Engine;
  processes: number;
}
interface Figures {
  msgsPerS: number;
  p99: number;
  /** Cores used by each gateway process, then by PostgreSQL, the load generator and the whole host. */
  mssCpu: number[];
  pgCpu: number;
  loadgenCpu: number;
  hostCpu: number;
  /** Average number of bench-database backends in each state (PostgreSQL only). */
  waits: Map<string, number>;
}

// ---- PostgreSQL databases (psql, synchronous, so that the exit handler can drop them too) ----

const liveDatabases = new Set<string>();
const psql = (sql: string) =>
  execFileSync('psql', ['-h', PG.host, '-p', String(PG.port), '-U', PG.user, '-d', 'postgres', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', sql], {
    encoding: 'utf8',
    timeout: PSQL_TIMEOUT_MS,
    cwd: '/',
  });

function createDatabase(): string {
  const db = `mss_bench_${randomBytes(6).toString('hex')}`;
  liveDatabases.add(db);
  psql(`CREATE DATABASE ${db}`);
  return db;
}

function dropDatabaseSync(db: string): void {
  spawnSync('psql', ['-h', PG.host, '-p', String(PG.port), '-U', PG.user, '-d', 'postgres', '-XAtq', '-c', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`], {
    stdio: 'ignore',
    timeout: PSQL_TIMEOUT_MS,
    cwd: '/',
  });
  liveDatabases.delete(db);
}

// ---- CPU accounting from /proc ----

/** utime + stime of a process, in clock ticks; null once it is gone. */
function cpuTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from the 3rd (state) on
    return Number(fields[11]) + Number(fields[12]); // utime (14th), stime (15th)
  } catch {
    return null;
  }
}

function postgresPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'postgres') pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** CPU ticks of every postgres process, by pid (a backend that starts during the interval counts from 0). */
function postgresTicks(): Map<number, number> {
  const m = new Map<number, number>();
  for (const pid of postgresPids()) {
    const t = cpuTicks(pid);
    if (t !== null) m.set(pid, t);
  }
  return m;
}

/** Busy and total jiffies of the whole host (first line of /proc/stat). */
function hostTicks(): { busy: number; total: number } {
  const [, ...v] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const n = v.map(Number);
  const idle = n[3]! + n[4]!; // idle + iowait
  const total = n.slice(0, 8).reduce((a, b) => a + b, 0); // user…steal (guest is already inside user)
  return { busy: total - idle, total };
}

interface CpuSnapshot {
  mss: (number | null)[];
  postgres: Map<number, number>;
  loadgen: NodeJS.CpuUsage;
  host: { busy: number; total: number };
  at: bigint;
}

const snapshot = (servers: Server[], withPostgres: boolean): CpuSnapshot => ({
  mss: servers.map((s) => cpuTicks(s.pid)),
  postgres: withPostgres ? postgresTicks() : new Map(),
  loadgen: process.cpuUsage(),
  host: hostTicks(),
  at: process.hrtime.bigint(),
});

/**
 * The postgres processes that work for `db`: its backends and the shared background processes (WAL writer,
 * checkpointer…), not the backends of other databases (other work on a shared machine).
 */
function postgresPidsFor(db: string): Set<number> {
  const out = psql(`SELECT pid FROM pg_stat_activity WHERE (datname = '${db}' AND application_name <> '${SAMPLER}') OR datname IS NULL`);
  return new Set(out.split('\n').filter(Boolean).map(Number));
}

function cores(a: CpuSnapshot, b: CpuSnapshot, postgresPids: Set<number>) {
  const seconds = Number(b.at - a.at) / 1e9;
  let pgTicks = 0;
  for (const [pid, t] of b.postgres) if (postgresPids.has(pid)) pgTicks += t - (a.postgres.get(pid) ?? 0);
  const loadgen = process.cpuUsage(a.loadgen);
  return {
    mss: b.mss.map((t, i) => ((t ?? 0) - (a.mss[i] ?? 0)) / CLK_TCK / seconds),
    postgres: pgTicks / CLK_TCK / seconds,
    loadgen: (loadgen.user + loadgen.system) / 1e6 / seconds,
    host: ((b.host.busy - a.host.busy) / (b.host.total - a.host.total)) * os.availableParallelism(),
  };
}

// ---- Where PostgreSQL backends wait ----

/** Samples pg_stat_activity of `db` until stopped; returns the average number of backends in each state. */
function sampleWaits(db: string): { stop(): Promise<Map<string, number>> } {
  const client = new pg.Client({ ...PG, database: db, application_name: SAMPLER, connectionTimeoutMillis: PSQL_TIMEOUT_MS, query_timeout: PSQL_TIMEOUT_MS });
  const counts = new Map<string, number>();
  let samples = 0;
  let running = true;
  const loop = (async () => {
    await client.connect();
    while (running) {
      const { rows } = await client.query<{ state: string | null; wait_event_type: string | null; wait_event: string | null }>(
        `SELECT state, wait_event_type, wait_event FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
        [db],
      );
      samples++;
      for (const r of rows) {
        let key: string | null = null;
        if (r.state === 'active') key = r.wait_event_type ? `${r.wait_event_type}:${r.wait_event}` : 'CPU';
        else if (r.state === 'idle in transaction') key = 'idle-in-tx';
        if (key) counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_EVERY_MS));
    }
  })();
  loop.catch(() => undefined); // reported by stop(), not as an unhandled rejection
  return {
    async stop() {
      running = false;
      try {
        await loop;
      } finally {
        await client.end().catch(() => undefined);
      }
      return new Map([...counts].map(([k, v]) => [k, v / Math.max(1, samples)] as const).sort((x, y) => y[1] - x[1]));
    },
  };
}

async function postgresDurability(): Promise<string> {
  const client = new pg.Client({ ...PG, database: 'postgres', connectionTimeoutMillis: PSQL_TIMEOUT_MS, query_timeout: PSQL_TIMEOUT_MS });
  await client.connect();
  try {
    const show = async (name: string) => (await client.query<Record<string, string>>(`SHOW ${name}`)).rows[0]![name]!;
    return `synchronous_commit=${await show('synchronous_commit')},fsync=${await show('fsync')}`;
  } finally {
    await client.end();
  }
}

// ---- The load ----

/**
 * `warmup` then `count` messages over K sessions; session i talks to server i·S/K (an even split) and sends to
 * recipient i mod R. Only the `count` messages are measured.
 */
async function runLoad(
  servers: Server[],
  ca: string,
  password: string,
  recipients: string[],
  bodies: Buffer[],
  warmup: number,
  count: number,
  measure: () => () => void,
) {
  const sessions: SmtpSession[] = [];
  try {
    for (const s of await Promise.allSettled(
      Array.from({ length: K }, (_, i) => SmtpSession.open(servers[Math.floor((i * servers.length) / K)]!.port, ca, { user: FROM, password })),
    )) {
      if (s.status === 'rejected') throw s.reason;
      sessions.push(s.value);
    }
    const deadline = Date.now() + LOAD_TIMEOUT_MS;
    let next = 0;
    const sendAll = async (total: number, latencies: number[]) =>
      Promise.all(
        sessions.map(async (s, k) => {
          while (next < total) {
            if (Date.now() > deadline) throw new Error(`load not done after ${LOAD_TIMEOUT_MS} ms`);
            const i = next++;
            latencies.push(await s.send(FROM, recipients[k % recipients.length]!, bodies[i % bodies.length]!));
          }
        }),
      );
    await sendAll(warmup, []);
    const latencies: number[] = [];
    const done = measure();
    const start = process.hrtime.bigint();
    await sendAll(warmup + count, latencies);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    done();
    await Promise.all(sessions.map((s) => s.close()));
    latencies.sort((a, b) => a - b);
    return { msgsPerS: count / seconds, p99: percentile(latencies, 99) };
  } catch (err) {
    for (const s of sessions) s.destroy();
    throw err;
  }
}

/** Messages stored, counted in the database once the servers are stopped (proves every 250 left a message). */
async function storedMessages(engine: Engine, dataDir: string, db: string | null): Promise<number> {
  if (engine === 'sqlite') {
    const sqlite = new Database(path.join(dataDir, 'mss.sqlite'), { readonly: true });
    try {
      return (sqlite.prepare('SELECT count(*) AS n FROM messages').get() as { n: number }).n;
    } finally {
      sqlite.close();
    }
  }
  const client = new pg.Client({ ...PG, database: db!, connectionTimeoutMillis: PSQL_TIMEOUT_MS, query_timeout: PSQL_TIMEOUT_MS });
  await client.connect();
  try {
    return Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM messages')).rows[0]!.n);
  } finally {
    await client.end();
  }
}

/** One run of one case, everything fresh: database, operator directory, recipients, processes. */
async function runCase(c: Case, bodies: Buffer[]): Promise<Figures> {
  const db = c.engine === 'postgres' ? createDatabase() : null;
  try {
    const operator = createOperator(db ? { store: { engine: 'postgres', url: pgUrl(db) } } : {});
    const servers: Server[] = [];
    try {
      const recipients = R === 1 ? [`claire.martin@${DOMAIN}`] : Array.from({ length: R }, (_, i) => `bench.rcpt${String(i + 1).padStart(2, '0')}@${DOMAIN}`);
      if (R > 1) {
        // Two at a time: each `mss mailbox add` is a CLI start plus a password hash.
        for (let i = 0; i < recipients.length; i += 2) {
          await Promise.all(recipients.slice(i, i + 2).map((r) => operator.cli(['mailbox', 'add', r, '--type', 'ORG', '--password-stdin'], RECIPIENT_PASSWORD)));
        }
      }
      for (const s of await Promise.allSettled(Array.from({ length: c.processes }, () => startServer(operator.dir)))) {
        if (s.status === 'fulfilled') servers.push(s.value);
      }
      if (servers.length < c.processes) throw new Error(`only ${servers.length}/${c.processes} servers started`);
      let before!: CpuSnapshot;
      let after!: CpuSnapshot;
      const probe: { sampler?: ReturnType<typeof sampleWaits>; waits: Map<string, number> } = { waits: new Map() };
      let load;
      try {
        load = await runLoad(servers, operator.ca, operator.password, recipients, bodies, WARMUP, N, () => {
          if (db) probe.sampler = sampleWaits(db);
          before = snapshot(servers, c.engine === 'postgres');
          return () => {
            after = snapshot(servers, c.engine === 'postgres');
          };
        });
      } finally {
        if (probe.sampler) probe.waits = await probe.sampler.stop().catch((err: Error) => new Map([[`sampler-failed(${err.message})`, 0]]));
      }
      const waits = probe.waits;
      const used = cores(before, after, db ? postgresPidsFor(db) : new Set());
      await Promise.all(servers.splice(0).map((s) => s.stop()));
      const stored = await storedMessages(c.engine, path.join(operator.dir, 'data'), db);
      if (stored !== WARMUP + N) throw new Error(`${stored} messages stored, ${WARMUP + N} accepted`);
      return { ...load, mssCpu: used.mss, pgCpu: used.postgres, loadgenCpu: used.loadgen, hostCpu: used.host, waits };
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
      operator.remove();
    }
  } finally {
    if (db) dropDatabaseSync(db);
  }
}

// Whatever way the bench ends (error, Ctrl-C, kill), leave no server, directory or database behind. 'exit'
// handlers must be synchronous, hence the sync variants; the signals are turned into a normal exit so that it runs.
process.once('exit', () => {
  stopAllServersSync();
  for (const db of liveDatabases) dropDatabaseSync(db);
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => process.exit(130));

buildIfNeeded();
const allCases: Record<string, Case> = {
  sqlite: { engine: 'sqlite', processes: 1 },
  pg1: { engine: 'postgres', processes: 1 },
  pg2: { engine: 'postgres', processes: 2 },
};
const cases = CASES.map((name) => allCases[name] ?? (console.error(`no case ${name} (have: ${Object.keys(allCases).join(', ')})`), process.exit(2)));
const label = (c: Case) => `${c.engine}×${c.processes}`;
const f2 = (x: number) => x.toFixed(2);
/** Milliseconds of CPU per message: every gateway together, PostgreSQL, the load generator. */
const msPerMsg = (f: Figures) => ({
  mss: (f.mssCpu.reduce((a, b) => a + b, 0) / f.msgsPerS) * 1000,
  postgres: (f.pgCpu / f.msgsPerS) * 1000,
  loadgen: (f.loadgenCpu / f.msgsPerS) * 1000,
});
const pgDurable = await postgresDurability();
console.log(`PostgreSQL server: ${pgDurable} (the engine also sets synchronous_commit=on on each connection); ${os.availableParallelism()} cores`);
const bodies = Array.from({ length: 16 }, (_, i) => message(5 * 1024, i));
const results = new Map<Case, Figures[]>(cases.map((c) => [c, []]));
for (let r = 0; r < RUNS; r++) {
  // Rotate the order so that no case always gets the warmer (or more fragmented) machine.
  for (const c of [...cases.slice(r % cases.length), ...cases.slice(0, r % cases.length)]) {
    const f = await runCase(c, bodies);
    results.get(c)!.push(f);
    const waits = [...f.waits].map(([k, v]) => `${k}=${v.toFixed(1)}`).join(' ');
    console.log(
      `run ${r + 1}/${RUNS} ${label(c).padEnd(11)} ${f.msgsPerS.toFixed(0)} msg/s, p99 ${f.p99.toFixed(1)} ms, cpu mss ${f.mssCpu.map(f2).join('+')}` +
        ` postgres ${f2(f.pgCpu)} loadgen ${f2(f.loadgenCpu)} host ${f2(f.hostCpu)}/${os.availableParallelism()}` +
        `; cpu ms/msg mss ${f2(msPerMsg(f).mss)} postgres ${f2(msPerMsg(f).postgres)} loadgen ${f2(msPerMsg(f).loadgen)}${waits ? `; backends: ${waits}` : ''}`,
    );
  }
}
const lines: string[] = [];
const perS = new Map<Case, number>();
for (const c of cases) {
  const fs = results.get(c)!;
  const msgsPerS = median(fs.map((f) => f.msgsPerS));
  perS.set(c, msgsPerS);
  const mss = Array.from({ length: c.processes }, (_, i) => f2(median(fs.map((f) => f.mssCpu[i]!)))).join('+');
  lines.push(
    `RESULT store engine=${c.engine} processes=${c.processes} msgs_per_s=${msgsPerS.toFixed(0)} p99_ms=${median(fs.map((f) => f.p99)).toFixed(1)} ` +
      `cpu=mss:${mss},postgres:${f2(median(fs.map((f) => f.pgCpu)))} loadgen_cpu=${f2(median(fs.map((f) => f.loadgenCpu)))} ` +
      `cpu_ms_per_msg=mss:${f2(median(fs.map((f) => msPerMsg(f).mss)))},postgres:${f2(median(fs.map((f) => msPerMsg(f).postgres)))},` +
      `loadgen:${f2(median(fs.map((f) => msPerMsg(f).loadgen)))} ` +
      `host_cpu=${f2(median(fs.map((f) => f.hostCpu)))}/${os.availableParallelism()} sessions=${K} recipients=${R} messages=${N} warmup=${WARMUP} runs=${RUNS} ` +
      `durable=${c.engine === 'sqlite' ? 'fdatasync-before-reply(wal,shared)' : pgDurable}`,
  );
}
if (perS.has(allCases.pg1!) && perS.has(allCases.pg2!)) lines.push(`RESULT scale ratio=${(perS.get(allCases.pg2!)! / perS.get(allCases.pg1!)!).toFixed(2)}`);
for (const line of lines) console.log(line);
