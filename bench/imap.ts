/**
 * IMAP, side by side with Dovecot (issue 6). Our server (`mss start`, its own process) and a throwaway Dovecot
 * (bench/_dovecot-peer.ts: Debian's dovecot-imapd, installed if missing) hold the same users and the same
 * messages (bench/_imap-corpus.ts: 2–10 KB clinical mail, flags, dates), and the same client code
 * (bench/_imap-client.ts: raw sockets, no client library) drives the same workload against both, over implicit
 * TLS on loopback for both (our server allows no login before TLS):
 *
 *   (a) mixed: CLIENTS sessions, one user and INBOX each (MESSAGES messages), for SECONDS per run, each running
 *       commands back to back in a seeded random mix (the same sequence on both servers): SELECT, UID FETCH of
 *       50 messages' FLAGS/ENVELOPE, UID FETCH BODY[] of one, UID STORE ±\Flagged, UID SEARCH UNSEEN, UID
 *       SEARCH FROM "<name>" (a header search), APPEND, EXPUNGE (of a message APPENDed before, after a STORE
 *       \Deleted). commands/s, p50/p99 overall and per command.
 *   (b) big: one INBOX of BIG messages: SELECT, UID FETCH 1:* (FLAGS), UID SEARCH SUBJECT (header) and UID SEARCH
 *       BODY (text) — both searches checked against the planted terms' expected UIDs — each timed, fresh session
 *       per run; memory peak (ours: VmHWM of the server process; Dovecot: sum of VmHWM of its processes).
 *   (c) idle: IDLE_CONNS sessions logged in, INBOX selected, in IDLE, opened in four steps: memory per connection
 *       = slope of memory against open connections (least squares over the five samples; the plain difference
 *       (after − before) / IDLE_CONNS is printed too). Ours: VmRSS of the server process, restarted for the case;
 *       Dovecot: sum of VmRSS (and of Pss, which counts shared pages once) of all its processes. The slope from
 *       the first step on (`marginal_kb_per_conn`) is printed too: memory given back before the baseline comes
 *       back with the first sessions, and with several processes the baseline may even fall.
 *
 * Population (not part of any ratio, reported on its own line): ours through the store's delivery path
 * (createMailbox, SealedMail.append: sealed body and metadata, precomputed ENVELOPE/BODYSTRUCTURE, 1,000
 * messages per unit of work); Dovecot's Maildir files written directly, then `doveadm index` (what LMTP delivery
 * leaves). Both durable before a reply: APPEND is answered after our SQLite commit is on disk (fdatasync of the
 * WAL, shared by the commits made before it began) and after Dovecot's fsync of the new file (mail_fsync=optimized,
 * its default). Ours also makes every flag change and read record durable before its reply; Dovecot's `optimized`
 * mode fsyncs only what it counts as important writes, such as saving a message.
 *
 * Sizes, from flags or else environment variables (defaults = the issue's sizes):
 *   --clients   MSS_BENCH_IMAP_CLIENTS   16      sessions of (a)
 *   --messages  MSS_BENCH_IMAP_MESSAGES  1000    messages per mailbox of (a) (and of the IDLE sessions' INBOX)
 *   --seconds   MSS_BENCH_IMAP_SECONDS   20      duration of one run of (a)
 *   --runs      MSS_BENCH_IMAP_RUNS      3       runs of (a) and (b), medians reported
 *   --warmup    MSS_BENCH_IMAP_WARMUP    20      seconds of (a)'s load run on each server before the counted runs
 *   --big       MSS_BENCH_IMAP_BIG       100000  messages of (b)
 *   --idle      MSS_BENCH_IMAP_IDLE      1000    IDLE connections of (c)
 *   --cases     MSS_BENCH_IMAP_CASES     a,b,c
 *   --processes MSS_BENCH_IMAP_PROCESSES 1       our server's `processes` (workers sharing the listeners)
 *   --op-timeout MSS_BENCH_IMAP_OP_TIMEOUT_S 600  (b): an operation without a reply by then is given up, reported
 *                                                 as `timed_out=yes` with the timeout as a lower bound
 *   MSS_BENCH_IMAP_MIX="SELECT=1,FETCH_ENVELOPE=4,…"  weights of (a)'s commands (defaults below)
 *   MSS_BENCH_IMAP_DOVECOT_LOGIN=performance          Dovecot's imap-login in high-performance mode (shared
 *                                                      login processes) instead of the stock high-security one
 *   MSS_BENCH_NODE_FLAGS="--cpu-prof --cpu-prof-dir=./prof"  flags for our server process (profiling)
 *   MSS_BENCH_IMAP_PEER=none                          our figures alone, without Dovecot (no ratio)
 *
 * Our server starts with the environment `npm start` gives it (src/malloc-env.ts: glibc's mmap threshold fixed, so
 * that the 16 MB each login's scrypt takes goes back at once; without it glibc keeps such blocks, and (c) counted
 * them per connection). Dovecot starts with the bench's own environment.
 *
 *   npm run bench -- imap
 *   MSS_BENCH_IMAP_BIG=10000 MSS_BENCH_IMAP_IDLE=200 MSS_BENCH_IMAP_SECONDS=5 npm run bench -- imap
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { benchMessage, BODY_EVERY, BODY_TERM, rng, SUBJECT_EVERY, SUBJECT_TERM } from './_imap-corpus.js';
import { appendUid, ImapClient, quote, ReplyTimeoutError, searchHits, type Reply } from './_imap-client.js';
import { createImapOperator, OurMailboxes, startOurs, type ImapOperator } from './_imap-ours.js';
import { childrenOf, processStats, startDovecotPeer, stopAllDovecotPeersSync, type DovecotPeer, type ProcessStats } from './_dovecot-peer.js';
import { buildIfNeeded, DOMAIN, median, percentile, stopAllServersSync, type Server } from './_operator.js';
import { tlsFloorKbPerConnection } from './_tls-floor.js';

// ---- sizes ----

const flag = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const size = (name: string, env: string, dflt: number) => {
  const v = Number(flag(name) ?? process.env[env] ?? dflt);
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} / ${env}: not a number`);
  return Math.floor(v);
};
const CLIENTS = Math.max(1, size('clients', 'MSS_BENCH_IMAP_CLIENTS', 16));
const MESSAGES = Math.max(100, size('messages', 'MSS_BENCH_IMAP_MESSAGES', 1000));
const SECONDS = Math.max(1, size('seconds', 'MSS_BENCH_IMAP_SECONDS', 20));
const RUNS = Math.max(1, size('runs', 'MSS_BENCH_IMAP_RUNS', 3));
const WARMUP = Math.max(0, size('warmup', 'MSS_BENCH_IMAP_WARMUP', 20));
const BIG = Math.max(SUBJECT_EVERY, size('big', 'MSS_BENCH_IMAP_BIG', 100_000));
const IDLE_CONNS = Math.max(1, size('idle', 'MSS_BENCH_IMAP_IDLE', 1000));
/**
 * Our server's `processes` (1, the default configuration; Dovecot runs a process per connection, on every core).
 * With more, each process keeps its own folder state: a session that lands on another process than the previous
 * one reads the folder again (SELECT in (b)).
 */
const PROCESSES = Math.max(1, size('processes', 'MSS_BENCH_IMAP_PROCESSES', 1));
const CASES = new Set((flag('cases') ?? process.env.MSS_BENCH_IMAP_CASES ?? 'a,b,c').split(',').map((s) => s.trim().toLowerCase()));
/** (b): an operation not answered within this long is given up (reported as a lower bound). */
const OP_TIMEOUT_S = Math.max(1, size('op-timeout', 'MSS_BENCH_IMAP_OP_TIMEOUT_S', 600));
const DOVECOT_LOGIN = process.env.MSS_BENCH_IMAP_DOVECOT_LOGIN === 'performance' ? 'performance' : 'security';

const KINDS = ['SELECT', 'FETCH_ENVELOPE', 'FETCH_BODY', 'STORE', 'SEARCH_FLAGS', 'SEARCH_HEADER', 'APPEND', 'EXPUNGE'] as const;
type Kind = (typeof KINDS)[number];
const MIX: Record<Kind, number> = { SELECT: 1, FETCH_ENVELOPE: 4, FETCH_BODY: 4, STORE: 3, SEARCH_FLAGS: 1, SEARCH_HEADER: 1, APPEND: 1, EXPUNGE: 1 };
for (const part of (process.env.MSS_BENCH_IMAP_MIX ?? '').split(',').filter(Boolean)) {
  const [k, v] = part.split('=');
  if (!KINDS.includes(k as Kind) || !(Number(v) >= 0)) throw new Error(`MSS_BENCH_IMAP_MIX: bad entry ${part} (kinds: ${KINDS.join(', ')})`);
  MIX[k as Kind] = Number(v);
}

/** Bench users: CLIENTS mailboxes for (a) and (c), one big one for (b). */
const users = Array.from({ length: CLIENTS }, (_, i) => ({ user: `imapbench${String(i + 1).padStart(3, '0')}@${DOMAIN}`, password: `bench-imap-${i + 1}-pw` }));
const bigUser = { user: `imapbig@${DOMAIN}`, password: 'bench-imap-big-pw' };
/** Senders' last names (bench/_imap-corpus.ts), for the header searches of (a). */
const NAMES = ['Dupont', 'Martin', 'Bernard', 'Petit', 'Durand', 'Leroy', 'Moreau', 'Simon'];
const POPULATE_BATCH = 1000;

// ---- targets ----

/** What the load needs of a server: where it listens, and its processes' memory and CPU time. */
interface Target {
  name: string;
  port: number;
  /** The processes that count (ours: the server; Dovecot: master and children). */
  stats(): ProcessStats[];
}

const sum = (ps: ProcessStats[], f: keyof Pick<ProcessStats, 'rss' | 'hwm' | 'pss' | 'rssAnon' | 'rssFile' | 'cpuMs'>) => ps.reduce((n, p) => n + p[f], 0);
const mb = (kb: number) => (kb / 1024).toFixed(0);

class Ours {
  server: Server | null = null;
  constructor(readonly o: ImapOperator) {}
  async restart(): Promise<Target> {
    await this.server?.stop();
    this.server = await startOurs(this.o);
    const pid = this.server.pid;
    // With `processes` > 1: the primary and its workers.
    return { name: 'ours', port: this.o.port, stats: () => [pid, ...childrenOf(pid)].map(processStats).filter((p): p is ProcessStats => p !== null) };
  }
}

// ---- (a) mixed load ----

interface MixedFigures {
  cmdsPerS: number;
  /** Server CPU time per command (all its processes), and cores it used on average over the run. */
  cpuMsPerCmd: number;
  cores: number;
  p50: number;
  p99: number;
  perKind: Map<Kind, number[]>;
}

async function openSessions<T>(count: number, open: (i: number) => Promise<T>, parallel = 16): Promise<T[]> {
  const out: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, count) }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await open(i);
      }
    }),
  );
  return out;
}

async function session(target: Target, u: { user: string; password: string }): Promise<ImapClient> {
  const c = await ImapClient.connect(target.port);
  try {
    await c.login(u.user, u.password);
    await c.ok('SELECT INBOX');
    return c;
  } catch (err) {
    c.destroy();
    throw err;
  }
}

async function runMixed(target: Target, run: number, duration = SECONDS): Promise<MixedFigures> {
  const clients = await openSessions(CLIENTS, (i) => session(target, users[i]!));
  const weights = KINDS.map((k) => MIX[k]);
  const total = weights.reduce((a, b) => a + b, 0);
  const perKind = new Map<Kind, number[]>(KINDS.map((k) => [k, []]));
  const all: number[] = [];
  try {
    // Warm-up, not timed: what a client does on opening the folder.
    await Promise.all(clients.map((c) => c.ok(`UID FETCH 1:50 (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)`)));
    const cpu0 = sum(target.stats(), 'cpuMs');
    const start = process.hrtime.bigint();
    const deadline = Date.now() + duration * 1000;
    await Promise.all(
      clients.map(async (c, ci) => {
        const r = rng(run * 1_000_003 + ci * 7919 + 1);
        const appended: number[] = [];
        let appends = 0;
        const timed = async (kind: Kind, text: string, literal?: Buffer): Promise<Reply> => {
          const reply = literal ? await c.ok(text, { literal }) : await c.ok(text);
          perKind.get(kind)!.push(reply.ms);
          all.push(reply.ms);
          return reply;
        };
        const append = async () => {
          // Messages beyond the mailbox's own, the same sequence per client on both servers.
          const m = benchMessage(MESSAGES + 1000 * (1 + (appends++ % 50)) + ci, users[ci]!.user);
          const uid = appendUid(await timed('APPEND', 'APPEND INBOX (\\Seen)', m.raw));
          if (uid !== null) appended.push(uid);
        };
        while (Date.now() < deadline) {
          let x = r() * total;
          let kind: Kind = KINDS[0];
          for (let k = 0; k < KINDS.length; k++) {
            x -= weights[k]!;
            if (x < 0) {
              kind = KINDS[k]!;
              break;
            }
          }
          const uid = 1 + Math.floor(r() * MESSAGES);
          switch (kind) {
            case 'SELECT':
              await timed(kind, 'SELECT INBOX');
              break;
            case 'FETCH_ENVELOPE': {
              const from = 1 + Math.floor(r() * (MESSAGES - 49));
              await timed(kind, `UID FETCH ${from}:${from + 49} (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)`);
              break;
            }
            case 'FETCH_BODY':
              await timed(kind, `UID FETCH ${uid} (BODY[])`);
              break;
            case 'STORE':
              await timed(kind, `UID STORE ${uid} ${r() < 0.5 ? '+' : '-'}FLAGS (\\Flagged)`);
              break;
            case 'SEARCH_FLAGS':
              await timed(kind, 'UID SEARCH UNSEEN');
              break;
            case 'SEARCH_HEADER':
              await timed(kind, `UID SEARCH FROM ${quote(NAMES[Math.floor(r() * NAMES.length)]!)}`);
              break;
            case 'APPEND':
              await append();
              break;
            case 'EXPUNGE': {
              if (appended.length === 0) await append();
              const gone = appended.shift();
              if (gone !== undefined) await timed('STORE', `UID STORE ${gone} +FLAGS.SILENT (\\Deleted)`);
              await timed(kind, 'EXPUNGE');
              break;
            }
          }
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const cpuMs = sum(target.stats(), 'cpuMs') - cpu0;
    all.sort((a, b) => a - b);
    for (const xs of perKind.values()) xs.sort((a, b) => a - b);
    return { cmdsPerS: all.length / seconds, cpuMsPerCmd: cpuMs / all.length, cores: cpuMs / 1000 / seconds, p50: percentile(all, 50), p99: percentile(all, 99), perKind };
  } finally {
    await Promise.all(clients.map((c) => c.logout()));
  }
}

// ---- (b) big mailbox ----

const BIG_OPS = ['select', 'fetch_flags', 'search_header', 'search_body'] as const;
type BigOp = (typeof BIG_OPS)[number];
interface BigFigures {
  /** Absent for an operation not run (one before it timed out). */
  ms: Partial<Record<BigOp, number>>;
  /** kB: peak memory after each operation (monotonic). */
  peak: Partial<Record<BigOp, number>>;
  hits: { header: number; body: number };
  /** The operation that got no reply within OP_TIMEOUT_S (the session was then dropped). */
  timedOut: BigOp | null;
}

const expectedUids = (every: number) => Array.from({ length: Math.floor(BIG / every) }, (_, i) => (i + 1) * every);
const sameList = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

async function runBig(target: Target): Promise<BigFigures> {
  const c = await ImapClient.connect(target.port);
  const f: BigFigures = { ms: {}, peak: {}, hits: { header: 0, body: 0 }, timedOut: null };
  try {
    await c.login(bigUser.user, bigUser.password);
    const step = async (op: BigOp, text: string, check?: (r: Reply) => void) => {
      const r = await c.ok(text, { collect: check !== undefined, timeoutMs: OP_TIMEOUT_S * 1000 });
      f.ms[op] = r.ms;
      f.peak[op] = sum(target.stats(), 'hwm');
      check?.(r);
    };
    await step('select', 'SELECT INBOX', (r) => {
      const exists = Number(/^\* (\d+) EXISTS/m.exec(r.untagged.join('\n'))?.[1]);
      if (exists !== BIG) throw new Error(`${target.name}: SELECT says ${exists} EXISTS, expected ${BIG}`);
    });
    await step('fetch_flags', 'UID FETCH 1:* (FLAGS)');
    await step('search_header', `UID SEARCH SUBJECT ${SUBJECT_TERM}`, (r) => {
      const got = searchHits(r.untagged);
      f.hits.header = got.length;
      if (!sameList(got, expectedUids(SUBJECT_EVERY))) console.warn(`warning: ${target.name}: SEARCH SUBJECT found ${got.length} messages, expected ${Math.floor(BIG / SUBJECT_EVERY)}`);
    });
    await step('search_body', `UID SEARCH BODY ${BODY_TERM}`, (r) => {
      const got = searchHits(r.untagged);
      f.hits.body = got.length;
      if (!sameList(got, expectedUids(BODY_EVERY))) console.warn(`warning: ${target.name}: SEARCH BODY found ${got.length} messages, expected ${Math.floor(BIG / BODY_EVERY)}`);
    });
  } catch (err) {
    if (!(err instanceof ReplyTimeoutError)) throw err;
    f.timedOut = BIG_OPS.find((op) => f.ms[op] === undefined) ?? null;
    if (f.timedOut) f.peak[f.timedOut] = sum(target.stats(), 'hwm');
    console.warn(`warning: ${target.name}: ${f.timedOut} got no reply within ${OP_TIMEOUT_S} s; the rest of this run is skipped`);
  } finally {
    await c.logout();
  }
  return f;
}

// ---- (c) idle connections ----

interface IdleFigures {
  /** kB per connection: least-squares slope of memory against open connections (5 points, 0 to IDLE_CONNS). */
  kbPerConn: number;
  /**
   * The slope from the first step on (IDLE_CONNS / 4 sessions and more): what each further connection adds once
   * memory the server gave back before the baseline (V8's memory reducer after start) has come back. With several
   * processes the baseline can even fall while the first sessions open, and only this figure means something.
   */
  marginalKbPerConn: number;
  /** Same, from Pss (shared pages counted once: what Dovecot's many processes really add). */
  pssKbPerConn: number;
  /** (memory with all connections − memory before) / IDLE_CONNS. */
  deltaKbPerConn: number;
  beforeKb: number;
  afterKb: number;
  processes: number;
}

/** Median of a few samples a second apart (GC and page reclaim make one sample noisy). */
async function sampleMemory(target: Target): Promise<{ rss: number; pss: number; processes: number }> {
  const rss: number[] = [];
  const pss: number[] = [];
  let processes = 0;
  for (let i = 0; i < 3; i++) {
    if (i) await sleep(1000);
    const ps = target.stats();
    rss.push(sum(ps, 'rss'));
    pss.push(sum(ps, 'pss'));
    processes = ps.length;
  }
  return { rss: median(rss), pss: median(pss), processes };
}

function slope(points: { x: number; y: number }[]): number {
  const mx = points.reduce((n, p) => n + p.x, 0) / points.length;
  const my = points.reduce((n, p) => n + p.y, 0) / points.length;
  const sxy = points.reduce((n, p) => n + (p.x - mx) * (p.y - my), 0);
  const sxx = points.reduce((n, p) => n + (p.x - mx) ** 2, 0);
  return sxx ? sxy / sxx : 0;
}

async function runIdle(target: Target): Promise<IdleFigures> {
  // A full session for each user first, so that what is needed once per server or per mailbox (code paths, caches,
  // a mailbox's folder state, the password-hashing thread) is not counted per connection.
  await openSessions(users.length, async (i) => (await session(target, users[i]!)).logout(), 8);
  // Let the server settle (V8's memory reducer and malloc trimming act a few seconds after activity stops).
  await sleep(10_000);
  const idlers: ImapClient[] = [];
  const points: { n: number; rss: number; pss: number; processes: number }[] = [];
  try {
    points.push({ n: 0, ...(await sampleMemory(target)) });
    const t0 = Date.now();
    // In four steps, memory sampled after each: a slope over five points is steadier than one difference (the
    // V8 heap and malloc arenas grow in steps of megabytes).
    for (let step = 1; step <= 4; step++) {
      const upTo = Math.round((IDLE_CONNS * step) / 4);
      const from = idlers.length;
      await openSessions(
        upTo - from,
        async (i) => {
          const client = await session(target, users[(from + i) % users.length]!);
          idlers.push(client);
          await client.idle().started;
        },
        32,
      );
      await sleep(1000);
      points.push({ n: idlers.length, ...(await sampleMemory(target)) });
    }
    console.log(`  ${target.name}: ${IDLE_CONNS} sessions in IDLE after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    console.log(`  ${target.name}: memory at ${points.map((p) => `${p.n}: ${mb(p.rss)} MB`).join(', ')}`);
    const before = points[0]!;
    const after = points[points.length - 1]!;
    return {
      kbPerConn: slope(points.map((p) => ({ x: p.n, y: p.rss }))),
      marginalKbPerConn: slope(points.slice(1).map((p) => ({ x: p.n, y: p.rss }))),
      pssKbPerConn: slope(points.map((p) => ({ x: p.n, y: p.pss }))),
      deltaKbPerConn: (after.rss - before.rss) / IDLE_CONNS,
      beforeKb: before.rss,
      afterKb: after.rss,
      processes: after.processes,
    };
  } finally {
    for (const client of idlers) client.destroy();
  }
}

// ---- main ----

// Whatever way the bench ends, leave no server or Dovecot behind (synchronous, for 'exit').
process.once('exit', () => {
  stopAllServersSync();
  stopAllDovecotPeersSync();
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => process.exit(130));

buildIfNeeded();
const results: string[] = [];
const maxConnections = Math.max(IDLE_CONNS, CLIENTS) + 10;

console.log(
  `imap bench: cases ${[...CASES].join(',')}; (a) ${CLIENTS} clients × ${MESSAGES} messages, ${SECONDS} s × ${RUNS} runs; ` +
    `(b) ${BIG} messages; (c) ${IDLE_CONNS} IDLE connections; TLS on loopback for both`,
);

const ourOperator = await createImapOperator(maxConnections, PROCESSES);
const ours = new Ours(ourOperator);
let peer: DovecotPeer | null = null;
let peerWhyNot = '';
try {
  if (process.env.MSS_BENCH_IMAP_PEER === 'none') throw new Error('MSS_BENCH_IMAP_PEER=none');
  peer = await startDovecotPeer([...users, bigUser], { maxConnections, loginMode: DOVECOT_LOGIN });
} catch (err) {
  peerWhyNot = (err as Error).message;
  console.warn(`dovecot peer unavailable, reporting our figures alone: ${peerWhyNot}`);
}
const peerTarget: Target | null = peer && { name: peer.name, port: peer.port, stats: () => peer!.processes() };

// Population: the same messages, generated once per batch and given to both; only the servers' work is timed.
{
  const boxes = await OurMailboxes.open(ourOperator);
  let oursMs = 0;
  let peerWriteMs = 0;
  let peerIndexMs = 0;
  const plan = [...(CASES.has('a') || CASES.has('c') ? users.map((u) => ({ ...u, count: MESSAGES })) : []), ...(CASES.has('b') ? [{ ...bigUser, count: BIG }] : [])];
  const t0 = Date.now();
  for (const u of [...users, bigUser]) {
    const t = performance.now();
    await boxes.addUser(u.user, u.password);
    oursMs += performance.now() - t;
  }
  let done = 0;
  let shown = 0;
  const totalMessages = plan.reduce((n, u) => n + u.count, 0);
  for (const u of plan) {
    for (let i = 0; i < u.count; i += POPULATE_BATCH) {
      const batch = Array.from({ length: Math.min(POPULATE_BATCH, u.count - i) }, (_, k) => benchMessage(i + k, u.user));
      let t = performance.now();
      await boxes.addMessages(u.user, batch);
      oursMs += performance.now() - t;
      if (peer) {
        t = performance.now();
        peer.addMessages(u.user, batch);
        peerWriteMs += performance.now() - t;
      }
      done += batch.length;
      if (done - shown >= 20_000) {
        shown = done;
        console.log(`  populated ${done}/${totalMessages} messages (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
      }
    }
    if (peer) {
      const t = performance.now();
      peer.index(u.user);
      peerIndexMs += performance.now() - t;
    }
  }
  await boxes.close();
  const s = (ms: number) => (ms / 1000).toFixed(1);
  console.log(`population: ${totalMessages} messages, ours ${s(oursMs)} s, dovecot ${s(peerWriteMs)} s Maildir files + ${s(peerIndexMs)} s doveadm index`);
  results.push(
    `RESULT imap-populate messages=${totalMessages} ours_s=${s(oursMs)} ours_msgs_per_s=${(totalMessages / (oursMs / 1000)).toFixed(0)}` +
      (peer ? ` peer_write_s=${s(peerWriteMs)} peer_index_s=${s(peerIndexMs)} peer_s=${s(peerWriteMs + peerIndexMs)}` : ' peer=unavailable') +
      ' ours_path=store-delivery(SealedMail.append,1000-per-transaction) peer_path=maildir-files+doveadm-index',
  );
}

const peerFields = () => `processes=${PROCESSES} ` + (peer ? `peer=${peer.name} peer_login=${DOVECOT_LOGIN === 'performance' ? 'high-performance' : 'high-security'}` : 'peer=unavailable');
const f1 = (x: number) => x.toFixed(1);

if (CASES.has('a')) {
  console.log(`(a) mixed load: ${CLIENTS} clients, ${SECONDS} s per run, mix ${KINDS.map((k) => `${k}=${MIX[k]}`).join(' ')}`);
  const mine: MixedFigures[] = [];
  const theirs: MixedFigures[] = [];
  const target = await ours.restart();
  if (WARMUP > 0) {
    // One run not counted for each server, so that the runs compare servers in their working state (caches filled,
    // code optimised), as a server is after minutes of use: ours started just now, Dovecot's indexes were just
    // written. Its seed is none of the counted runs'.
    for (const t of [target, peerTarget]) {
      if (!t) continue;
      const f = await runMixed(t, RUNS, WARMUP);
      console.log(`  warm-up ${t.name}: ${f.cmdsPerS.toFixed(0)} cmds/s over ${WARMUP} s (not counted)`);
    }
  }
  for (let run = 0; run < RUNS; run++) {
    const order = run % 2 === 0 ? ['ours', 'peer'] : ['peer', 'ours'];
    for (const who of order) {
      if (who === 'ours') {
        const f = await runMixed(target, run);
        mine.push(f);
        console.log(`  run ${run + 1}/${RUNS} ours:    ${f.cmdsPerS.toFixed(0)} cmds/s, p50 ${f1(f.p50)} ms, p99 ${f1(f.p99)} ms, ${f.cpuMsPerCmd.toFixed(2)} ms CPU per command (${f.cores.toFixed(2)} cores)`);
      } else if (peerTarget) {
        const f = await runMixed(peerTarget, run);
        theirs.push(f);
        console.log(`  run ${run + 1}/${RUNS} dovecot: ${f.cmdsPerS.toFixed(0)} cmds/s, p50 ${f1(f.p50)} ms, p99 ${f1(f.p99)} ms, ${f.cpuMsPerCmd.toFixed(2)} ms CPU per command (${f.cores.toFixed(2)} cores)`);
      }
    }
  }
  const agg = (fs: MixedFigures[]) => ({
    cmdsPerS: median(fs.map((f) => f.cmdsPerS)),
    cpuMsPerCmd: median(fs.map((f) => f.cpuMsPerCmd)),
    cores: median(fs.map((f) => f.cores)),
    p50: median(fs.map((f) => f.p50)),
    p99: median(fs.map((f) => f.p99)),
    kind: (k: Kind) => {
      const xs = fs.flatMap((f) => f.perKind.get(k)!).sort((a, b) => a - b);
      return xs.length ? { n: xs.length, p50: percentile(xs, 50), p99: percentile(xs, 99), mean: xs.reduce((a, b) => a + b, 0) / xs.length } : null;
    },
  });
  const a = agg(mine);
  const b = theirs.length === RUNS ? agg(theirs) : null;
  console.log('  command          ours n    p50 ms   p99 ms  share   | dovecot n  p50 ms   p99 ms  share');
  const share = (fs: MixedFigures[], k: Kind) => {
    const time = (kk: Kind) => fs.reduce((n, f) => n + f.perKind.get(kk)!.reduce((x, y) => x + y, 0), 0);
    const all = KINDS.reduce((n, kk) => n + time(kk), 0);
    return all ? time(k) / all : 0;
  };
  for (const k of KINDS) {
    const x = a.kind(k);
    const y = b?.kind(k) ?? null;
    const col = (v: ReturnType<typeof a.kind>, fs: MixedFigures[]) =>
      v ? `${String(v.n).padStart(7)} ${f1(v.p50).padStart(8)} ${f1(v.p99).padStart(8)} ${(100 * share(fs, k)).toFixed(0).padStart(5)}%` : '      -'.padEnd(31);
    console.log(`  ${k.padEnd(15)} ${col(x, mine)}   | ${b ? col(y, theirs) : ''}`);
    results.push(
      `RESULT imap-mixed-${k.toLowerCase()} count=${x?.n ?? 0} p50_ms=${f1(x?.p50 ?? 0)} p99_ms=${f1(x?.p99 ?? 0)}` +
        (y ? ` peer_count=${y.n} peer_p50_ms=${f1(y.p50)} peer_p99_ms=${f1(y.p99)} p50_ratio=${(x ? x.p50 / y.p50 : 0).toFixed(2)}` : ''),
    );
  }
  results.push(
    `RESULT imap-mixed cmds_per_s=${a.cmdsPerS.toFixed(0)} p50_ms=${f1(a.p50)} p99_ms=${f1(a.p99)} cpu_ms_per_cmd=${a.cpuMsPerCmd.toFixed(2)} cores=${a.cores.toFixed(2)} ` +
      `clients=${CLIENTS} messages=${MESSAGES} seconds=${SECONDS} runs=${RUNS} warmup_s=${WARMUP} tls=yes ${peerFields()}` +
      (b
        ? ` peer_cmds_per_s=${b.cmdsPerS.toFixed(0)} peer_p50_ms=${f1(b.p50)} peer_p99_ms=${f1(b.p99)} peer_cpu_ms_per_cmd=${b.cpuMsPerCmd.toFixed(2)} ` +
          `peer_cores=${b.cores.toFixed(2)} ratio=${(a.cmdsPerS / b.cmdsPerS).toFixed(2)}`
        : ''),
  );
}

if (CASES.has('b')) {
  console.log(`(b) ${BIG}-message mailbox`);
  // A fresh server process, so that its peak memory is this case's.
  let target = await ours.restart();
  const startKb = sum(target.stats(), 'rss');
  const mine: BigFigures[] = [];
  const theirs: BigFigures[] = [];
  /** A side that timed out is not run again (a blocked server may stay blocked for long). */
  const gaveUp = { ours: false, peer: false };
  for (let run = 0; run < RUNS; run++) {
    const order = run % 2 === 0 ? (['ours', 'peer'] as const) : (['peer', 'ours'] as const);
    for (const who of order) {
      const t = who === 'ours' ? target : peerTarget;
      if (!t || gaveUp[who]) continue;
      const f = await runBig(t);
      (who === 'ours' ? mine : theirs).push(f);
      const shown = BIG_OPS.map((op) => `${op} ${f.ms[op] === undefined ? (f.timedOut === op ? `>${OP_TIMEOUT_S * 1000}` : '-') : f.ms[op]!.toFixed(0)} ms`);
      console.log(`  run ${run + 1}/${RUNS} ${t.name.padEnd(16)} ${shown.join(', ')}; peak ${mb(Math.max(0, ...Object.values(f.peak)))} MB`);
      if (f.timedOut) {
        gaveUp[who] = true;
        // Our server may still be busy with the command: a new process for what follows (stop() kills it if need be).
        if (who === 'ours') target = await ours.restart();
      }
    }
  }
  /** Median over the runs, an operation that timed out counting as the timeout (then a lower bound). */
  const figure = (fs: BigFigures[], op: BigOp) => {
    const xs = fs.map((f) => f.ms[op] ?? (f.timedOut === op ? OP_TIMEOUT_S * 1000 : undefined)).filter((x): x is number => x !== undefined);
    return xs.length ? { ms: median(xs), timedOut: fs.some((f) => f.timedOut === op) } : null;
  };
  for (const op of BIG_OPS) {
    const m = figure(mine, op);
    const p = peerTarget ? figure(theirs, op) : null;
    const peakOf = (fs: BigFigures[]) => Math.max(0, ...fs.map((f) => f.peak[op] ?? 0));
    let line = `RESULT imap-big-${op.replace('_', '-')} messages=${BIG} runs=${RUNS} tls=yes ${peerFields()}`;
    line += m ? ` ms=${f1(m.ms)}${m.timedOut ? ' timed_out=yes' : ''} peak_rss_mb=${mb(peakOf(mine))}` : ' ms=not-run';
    if (p) line += ` peer_ms=${f1(p.ms)}${p.timedOut ? ' peer_timed_out=yes' : ''} peer_peak_rss_mb=${mb(peakOf(theirs))}`;
    // A timed-out side gives a bound, not a ratio: ours timed out = at least this ratio.
    if (m && p && !p.timedOut) line += ` time_ratio=${m.timedOut ? '>=' : ''}${(m.ms / p.ms).toFixed(2)}`;
    if ((op === 'search_header' || op === 'search_body') && m) {
      const key = op === 'search_header' ? 'header' : 'body';
      const done = (fs: BigFigures[]) => fs.find((f) => f.ms[op] !== undefined);
      line += ` hits=${done(mine)?.hits[key] ?? '-'}${p ? ` peer_hits=${done(theirs)?.hits[key] ?? '-'}` : ''} expected=${Math.floor(BIG / (key === 'header' ? SUBJECT_EVERY : BODY_EVERY))}`;
    }
    results.push(line);
  }
  console.log(`  ours: RSS ${mb(startKb)} MB after start, peak ${mb(Math.max(0, ...mine.flatMap((f) => Object.values(f.peak))))} MB (VmHWM; Dovecot: sum of its processes' VmHWM)`);
  // What the resident memory is made of: mapped file pages (the program, libraries) are shared and reclaimable.
  const endStats = target.stats();
  console.log(`  ours now: RSS ${mb(sum(endStats, 'rss'))} MB = heap and other anonymous memory ${mb(sum(endStats, 'rssAnon'))} MB + mapped files ${mb(sum(endStats, 'rssFile'))} MB`);
}

if (CASES.has('c')) {
  console.log(`(c) ${IDLE_CONNS} IDLE connections`);
  const target = await ours.restart();
  const mine = await runIdle(target);
  console.log(`  ours: RSS ${mb(mine.beforeKb)} MB -> ${mb(mine.afterKb)} MB: ${mine.kbPerConn.toFixed(1)} KB per connection (slope; difference ${mine.deltaKbPerConn.toFixed(1)} KB; from ${IDLE_CONNS / 4} sessions on ${mine.marginalKbPerConn.toFixed(1)} KB)`);
  const floor = await tlsFloorKbPerConnection(IDLE_CONNS, 'lean');
  const nativeFloor = await tlsFloorKbPerConnection(IDLE_CONNS, 'native');
  console.log(
    `  a bare Node.js TLS server: ${floor.toFixed(1)} KB per idle connection with our TLS transport (the floor under ours), ` +
      `${nativeFloor.toFixed(1)} KB with Node's TLS on the socket's handle (ADR 0018)`,
  );
  let line =
    `RESULT imap-idle kb_per_conn=${mine.kbPerConn.toFixed(1)} delta_kb_per_conn=${mine.deltaKbPerConn.toFixed(1)} marginal_kb_per_conn=${mine.marginalKbPerConn.toFixed(1)} connections=${IDLE_CONNS} ` +
    `rss_before_mb=${mb(mine.beforeKb)} rss_after_mb=${mb(mine.afterKb)} node_tls_floor_kb=${floor.toFixed(1)} node_native_tls_floor_kb=${nativeFloor.toFixed(1)} target_kb=50 tls=yes ${peerFields()}`;
  if (peerTarget) {
    const theirs = await runIdle(peerTarget);
    console.log(
      `  ${peerTarget.name}: RSS ${mb(theirs.beforeKb)} MB -> ${mb(theirs.afterKb)} MB over ${theirs.processes} processes: ` +
        `${theirs.kbPerConn.toFixed(1)} KB per connection (slope; difference ${theirs.deltaKbPerConn.toFixed(1)} KB; Pss slope ${theirs.pssKbPerConn.toFixed(1)} KB)`,
    );
    line +=
      ` peer_kb_per_conn=${theirs.kbPerConn.toFixed(1)} peer_delta_kb_per_conn=${theirs.deltaKbPerConn.toFixed(1)} peer_marginal_kb_per_conn=${theirs.marginalKbPerConn.toFixed(1)} peer_pss_kb_per_conn=${theirs.pssKbPerConn.toFixed(1)} peer_processes=${theirs.processes}` +
      ` peer_rss_before_mb=${mb(theirs.beforeKb)} peer_rss_after_mb=${mb(theirs.afterKb)} ratio=${(mine.kbPerConn / theirs.kbPerConn).toFixed(3)}`;
  }
  results.push(line);
}

await ours.server?.stop();
await peer?.stop();
ourOperator.operator.remove();
for (const line of results) console.log(line);
