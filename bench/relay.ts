/**
 * Relay between two operators (issue 7): messages per second from operator A's outbound queue into operator B's
 * mailboxes, with sign+encrypt on A and decrypt+verify on B; the same load between two Postfix instances with TLS
 * client certificates is the peer figure, measured in the same run on the same machine; ratio = ours / Postfix.
 *
 * Ours (bench/_relay-ours.ts): two `mss init` operators, different domains and dev PKIs, that exchanged their
 * trust lists and CA bundles; A routes B's domain to B's relay listener on 127.0.0.1. Postfix
 * (bench/_relay-postfix.ts): two throwaway instances on loopback, A relaying B's domain by transport map
 * `smtp:[127.0.0.1]:port` with its client certificate (TLS level `secure`: B's chain and name checked, connection
 * reuse on), B requiring a verified client certificate (`smtpd_tls_req_ccert`) and delivering into a Maildir.
 *
 * Two measures, both N messages of one size from A's practitioner to B's, submitted over K implicit-TLS sessions:
 *
 * - drain (RESULT relay-<size>): A's queue is filled while B is not listening, then released, and the time from
 *   the release to B's mailbox holding all N is measured. Ours: A's worker tries each item once (connection
 *   refused) and parks it (retry delay one day); once all N are parked, B is started and every item is made due
 *   in one unit of work (what `mss queue retry` does per item); A's idle worker finds them within 0.1 s. Postfix:
 *   A's smtpd puts every message on hold (`check_recipient_access static:HOLD`); release = `postsuper -H ALL` then
 *   `postqueue -f`. In our design the S/MIME signing and encryption happen at submission, before the 250 (the
 *   queue holds the protected message, sealed), so the drain covers unsealing, the TLS hand-over, B's
 *   decryption, verification, sender check and delivery — not A's sign+encrypt (`sign_encrypt=at-submission`).
 * - e2e (RESULT relay-e2e-<size>): B up, N submissions to A; time from the first submission to B's mailbox
 *   holding all N: everything, sign+encrypt on A included.
 *
 * Counted at B (polled every 50 ms on both sides): ours, the recipient's INBOX selected in IDLE over IMAP, whose
 * EXISTS B pushes as messages arrive (a relayed message is there after B's fsync'd SQLite commit and before B's
 * 250; a STATUS confirms the exact count at the end); Postfix, files in the recipient's Maildir (new/ and cur/).
 * `cpu` = cores used by A and by B over the interval (ours: each `mss start` process; Postfix: every process of the
 * instance); `cpu_ms_per_msg` = (A + B) CPU time per message, the figure least disturbed by a busy machine;
 * `host_cpu` = busy cores of the whole machine. Durability: ours, every
 * hand-over is a WAL commit on disk (fdatasync) before the reply on both sides (A's enqueue before its 250, B's delivery before
 * its 250, A's removal after it); Postfix, cleanup(8) fsyncs the queue file before each 250 on both instances,
 * then virtual(8) writes the Maildir file on B.
 *
 * Sizes (flags, else environment variables; defaults = the issue's):
 *   --n        MSS_BENCH_RELAY_N        2000  messages of 5 KB
 *   --n100     MSS_BENCH_RELAY_N100     n/4   messages of 100 KB (500)
 *   --k        MSS_BENCH_RELAY_K        8     submission sessions
 *   --runs     MSS_BENCH_RELAY_RUNS     3     runs per case and side (medians reported)
 *   --sizes    MSS_BENCH_RELAY_SIZES    5KB,100KB
 *   --modes    MSS_BENCH_RELAY_MODES    drain,e2e
 *   --peer     MSS_BENCH_RELAY_PEER     postfix   (none: ours only)
 *   --concurrency MSS_BENCH_RELAY_CONCURRENCY  (unset)  connections from A to B on both sides: our
 *              federation.maxPerDestination (default 4) and Postfix's smtp_destination_concurrency_limit (default 20)
 *   MSS_BENCH_NODE_FLAGS="--cpu-prof --cpu-prof-dir=./prof"  flags for both our server processes (profiling;
 *              the pids of A and B are printed with each run)
 *
 *   npm run bench -- relay
 *   npm run bench -- relay --n=200 --runs=1 --sizes=5KB
 */
import os from 'node:os';
import { startCpuMeter, postfixTicks, processTicks } from './_relay-cpu.js';
import { A_DOMAIN, B_DOMAIN, createRelayPair, DEFAULT_MAX_PER_DESTINATION, RECIPIENT, releaseAll, SENDER, waitParked } from './_relay-ours.js';
import { startPostfixRelayPair, stopAllPostfixRelaysSync } from './_relay-postfix.js';
import { buildIfNeeded, median, stopAllServersSync, type Server } from './_operator.js';
import { SmtpSession } from './_smtp-session.js';

// ---- sizes ----

const flag = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=').slice(1).join('=');
const text = (name: string, env: string, dflt: string) => flag(name) ?? process.env[env] ?? dflt;
const num = (name: string, env: string, dflt: number | undefined) => {
  const raw = flag(name) ?? process.env[env];
  if (raw === undefined || raw === '') return dflt;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 1) throw new Error(`--${name} / ${env}: expected a positive number`);
  return Math.floor(v);
};
const N = num('n', 'MSS_BENCH_RELAY_N', 2000)!;
const N100 = num('n100', 'MSS_BENCH_RELAY_N100', Math.max(1, Math.floor(N / 4)))!;
const K = num('k', 'MSS_BENCH_RELAY_K', 8)!;
const RUNS = num('runs', 'MSS_BENCH_RELAY_RUNS', 3)!;
const SIZES = text('sizes', 'MSS_BENCH_RELAY_SIZES', '5KB,100KB').split(',').filter(Boolean);
const MODES = text('modes', 'MSS_BENCH_RELAY_MODES', 'drain,e2e').split(',').filter(Boolean) as Mode[];
const PEER = text('peer', 'MSS_BENCH_RELAY_PEER', 'postfix');
const CONCURRENCY = num('concurrency', 'MSS_BENCH_RELAY_CONCURRENCY', undefined);
for (const m of MODES) if (m !== 'drain' && m !== 'e2e') throw new Error(`--modes: unknown mode ${m} (drain, e2e)`);
for (const s of SIZES) if (!/^\d+KB$/.test(s)) throw new Error(`--sizes: ${s} is not <n>KB`);
if (PEER !== 'postfix' && PEER !== 'none') throw new Error(`--peer: postfix or none, not ${PEER}`);

/** Bounds, so the bench always ends by itself. */
const FILL_TIMEOUT_MS = 10 * 60_000;
const DELIVERY_TIMEOUT_MS = 15 * 60_000;
const POLL_MS = 50;

type Mode = 'drain' | 'e2e';

interface Figures {
  msgsPerS: number;
  seconds: number;
  /** Cores used during the measured interval: per part (A, B) and the whole host. */
  cpu: Record<string, number>;
  host: number;
  /** Submission rate while filling A (drain) or while everything runs (e2e). */
  submitPerS: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ncpu = os.availableParallelism();

/** The bench message from A's practitioner to B's: headers, then Lorem ipsum lines up to `size` bytes. */
function message(size: number, i: number): Buffer {
  const head = [
    `From: Dr Jean DUPONT <${SENDER}>`,
    `To: Dr Claire MARTIN <${RECIPIENT}>`,
    `Subject: Compte rendu ${i}`,
    `Message-ID: <relay-${i}-${size}@${A_DOMAIN}>`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    '',
  ].join('\r\n');
  const line = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n';
  let body = '';
  while (head.length + body.length < size) body += line;
  return Buffer.from(head + body.slice(0, size - head.length));
}

/** Submits `count` messages over K reused implicit-TLS sessions; returns the seconds from the first MAIL to the last 250. */
async function submit(port: number, ca: string, auth: { user: string; password: string } | undefined, bodies: Buffer[], count: number, started?: (at: bigint) => void): Promise<number> {
  const sessions: SmtpSession[] = [];
  try {
    for (const s of await Promise.allSettled(Array.from({ length: Math.min(K, count) }, () => SmtpSession.open(port, ca, auth)))) {
      if (s.status === 'rejected') throw s.reason;
      sessions.push(s.value);
    }
    let next = 0;
    const start = process.hrtime.bigint();
    started?.(start);
    await Promise.all(
      sessions.map(async (s) => {
        while (next < count) {
          const i = next++;
          await s.send(SENDER, RECIPIENT, bodies[i % bodies.length]!);
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    await Promise.all(sessions.map((s) => s.close()));
    return seconds;
  } catch (err) {
    for (const s of sessions) s.destroy();
    throw err;
  }
}

/** Polls `count` until it reaches `target` (bounded); resolves with the time it was first seen there. */
async function waitCount(count: () => Promise<number> | number, target: number, what: string): Promise<bigint> {
  const until = Date.now() + DELIVERY_TIMEOUT_MS;
  let n = 0;
  for (;;) {
    n = await count();
    if (n >= target) return process.hrtime.bigint();
    if (Date.now() > until) throw new Error(`${what}: ${n}/${target} delivered after ${DELIVERY_TIMEOUT_MS} ms`);
    await sleep(POLL_MS);
  }
}

// ---- ours ----

async function runOurs(mode: Mode, bodies: Buffer[], count: number): Promise<Figures> {
  const pair = await createRelayPair({ park: mode === 'drain', ...(CONCURRENCY ? { maxPerDestination: CONCURRENCY } : {}) });
  const servers: Server[] = [];
  try {
    const auth = { user: SENDER, password: pair.senderPassword };
    if (mode === 'drain') {
      const a = await pair.startA();
      servers.push(a);
      const submitSeconds = await submit(a.port, pair.aCa, auth, bodies, count);
      const store = await pair.openA();
      try {
        await waitParked(store, count, FILL_TIMEOUT_MS);
        const b = await pair.startB();
        servers.push(b);
        console.log(`  ours: A pid ${a.pid}, B pid ${b.pid}; ${count} items parked in A's queue`);
        const counter = await pair.counter();
        try {
          const base = await counter.count();
          const meter = startCpuMeter({ A: processTicks(a.pid), B: processTicks(b.pid) });
          const t0 = process.hrtime.bigint();
          const released = await releaseAll(store, count);
          if (released !== count) throw new Error(`released ${released}/${count} items`);
          const t1 = await waitCount(async () => (await counter.count()) - base, count, 'ours');
          const cpu = meter.stop();
          const seconds = Number(t1 - t0) / 1e9;
          const left = await store.queueLength();
          if (left !== 0) throw new Error(`A's queue still holds ${left} items after B received all`);
          const extra = (await counter.exact()) - base - count;
          if (extra !== 0) throw new Error(`B holds ${extra} more messages than were sent`);
          return { msgsPerS: count / seconds, seconds, cpu: cpu.parts, host: cpu.host * ncpu, submitPerS: count / submitSeconds };
        } finally {
          await counter.close();
        }
      } finally {
        await store.close();
      }
    }
    const b = await pair.startB();
    servers.push(b);
    const a = await pair.startA();
    servers.push(a);
    console.log(`  ours: A pid ${a.pid}, B pid ${b.pid}`);
    const counter = await pair.counter();
    try {
      const base = await counter.count();
      let meter: ReturnType<typeof startCpuMeter> | undefined;
      let t0 = 0n;
      const submitSeconds = await submit(a.port, pair.aCa, auth, bodies, count, (at) => {
        t0 = at;
        meter = startCpuMeter({ A: processTicks(a.pid), B: processTicks(b.pid) });
      });
      const t1 = await waitCount(async () => (await counter.count()) - base, count, 'ours');
      const cpu = meter!.stop();
      const seconds = Number(t1 - t0) / 1e9;
      const extra = (await counter.exact()) - base - count;
      if (extra !== 0) throw new Error(`B holds ${extra} more messages than were sent`);
      return { msgsPerS: count / seconds, seconds, cpu: cpu.parts, host: cpu.host * ncpu, submitPerS: count / submitSeconds };
    } finally {
      await counter.close();
    }
  } finally {
    for (const s of servers.reverse()) await s.stop();
    pair.remove();
  }
}

// ---- Postfix ----

async function runPeer(mode: Mode, bodies: Buffer[], count: number): Promise<Figures & { name: string; concurrency: number }> {
  const pair = await startPostfixRelayPair({ domain: B_DOMAIN, senderDomain: A_DOMAIN, recipient: RECIPIENT, hold: mode === 'drain', ...(CONCURRENCY ? { concurrency: CONCURRENCY } : {}) });
  try {
    const parts = { A: () => postfixTicks(pair.a.configDir), B: () => postfixTicks(pair.b.configDir) };
    if (mode === 'drain') {
      const submitSeconds = await submit(pair.a.port, pair.a.ca, undefined, bodies, count);
      await pair.waitHeld(count, FILL_TIMEOUT_MS);
      const meter = startCpuMeter(parts);
      const t0 = process.hrtime.bigint();
      pair.release();
      const t1 = await waitCount(() => pair.delivered(), count, pair.name);
      const cpu = meter.stop();
      const seconds = Number(t1 - t0) / 1e9;
      return { name: pair.name, concurrency: pair.concurrency, msgsPerS: count / seconds, seconds, cpu: cpu.parts, host: cpu.host * ncpu, submitPerS: count / submitSeconds };
    }
    let meter: ReturnType<typeof startCpuMeter> | undefined;
    let t0 = 0n;
    const submitSeconds = await submit(pair.a.port, pair.a.ca, undefined, bodies, count, (at) => {
      t0 = at;
      meter = startCpuMeter(parts);
    });
    const t1 = await waitCount(() => pair.delivered(), count, pair.name);
    const cpu = meter!.stop();
    const seconds = Number(t1 - t0) / 1e9;
    return { name: pair.name, concurrency: pair.concurrency, msgsPerS: count / seconds, seconds, cpu: cpu.parts, host: cpu.host * ncpu, submitPerS: count / submitSeconds };
  } finally {
    await pair.stop();
  }
}

// ---- main ----

process.once('exit', () => {
  stopAllServersSync();
  stopAllPostfixRelaysSync();
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => process.exit(130));

const f2 = (x: number) => x.toFixed(2);
/** CPU time both sides spent per message (A + B), in ms: less sensitive than msg/s to a busy machine. */
const cpuMs = (r: Figures, count: number) => ((r.cpu.A! + r.cpu.B!) * r.seconds * 1000) / count;
const fmt = (r: Figures, count: number) =>
  `${r.msgsPerS.toFixed(1)} msg/s (${r.seconds.toFixed(2)} s), ${cpuMs(r, count).toFixed(1)} cpu-ms/msg, cpu ${Object.entries(r.cpu)
    .map(([k, v]) => `${k} ${f2(v)}`)
    .join(', ')}, host ${f2(r.host)}/${ncpu}; submission ${r.submitPerS.toFixed(0)} msg/s`;

buildIfNeeded();
const results: string[] = [];
/** One README table row per RESULT line. */
const rows: string[] = [];
let peerUnavailable: string | null = PEER === 'none' ? 'not asked (--peer=none)' : null;
for (const sizeName of SIZES) {
  const size = Number(sizeName.slice(0, -2)) * 1024;
  const count = size >= 100 * 1024 ? N100 : N;
  const bodies = Array.from({ length: 16 }, (_, i) => message(size, i));
  for (const mode of MODES) {
    const ours: Figures[] = [];
    const peer: (Figures & { name: string; concurrency: number })[] = [];
    for (let r = 0; r < RUNS; r++) {
      // Alternate who goes first so neither side always gets the warmer machine.
      const order = r % 2 === 0 ? (['ours', 'peer'] as const) : (['peer', 'ours'] as const);
      for (const who of order) {
        if (who === 'ours') {
          const res = await runOurs(mode, bodies, count);
          console.log(`run ${r + 1}/${RUNS} ${mode} ${sizeName} ours:    ${fmt(res, count)}`);
          ours.push(res);
        } else if (!peerUnavailable) {
          try {
            const res = await runPeer(mode, bodies, count);
            console.log(`run ${r + 1}/${RUNS} ${mode} ${sizeName} ${res.name}: ${fmt(res, count)}`);
            peer.push(res);
          } catch (err) {
            peerUnavailable = (err as Error).message;
            console.warn(`postfix peer unavailable, reporting our figures alone: ${peerUnavailable}`);
          }
        }
      }
    }
    const mine = median(ours.map((r) => r.msgsPerS));
    const cpuMsMedian = (fs: Figures[]) => median(fs.map((f) => cpuMs(f, count))).toFixed(1);
    const cpu = (fs: Figures[]) =>
      `cpu_ms_per_msg=${cpuMsMedian(fs)} cpu=A:${f2(median(fs.map((f) => f.cpu.A!)))},B:${f2(median(fs.map((f) => f.cpu.B!)))}`;
    let peerFields = 'peer=unavailable';
    let peerCells = '— | — | —';
    if (!peerUnavailable && peer.length === RUNS) {
      const theirs = median(peer.map((r) => r.msgsPerS));
      peerCells = `${theirs.toFixed(1)} | ${cpuMsMedian(peer)} | ${f2(mine / theirs)}`;
      peerFields =
        `peer=${peer[0]!.name} peer_msgs_per_s=${theirs.toFixed(1)} ${cpu(peer).replace(/cpu/g, 'peer_cpu')} peer_connections=${peer[0]!.concurrency} ` +
        `peer_tls=secure+client-cert+reuse peer_durable=fsync-queue-file(cleanup)+maildir ratio=${f2(mine / theirs)}`;
    }
    const name = mode === 'drain' ? `relay-${sizeName}` : `relay-e2e-${sizeName}`;
    rows.push(`| ${mode === 'drain' ? 'queue drain' : 'end to end'}, ${sizeName}, ${count} msgs | ${mine.toFixed(1)} | ${cpuMsMedian(ours)} | ${peerCells} |`);
    results.push(
      `RESULT ${name} msgs_per_s=${mine.toFixed(1)} messages=${count} runs=${RUNS} ` +
        `measured=${mode === 'drain' ? 'queue-release-to-last-delivery' : 'first-submission-to-last-delivery'} ` +
        `sign_encrypt=${mode === 'drain' ? 'at-submission(not-in-interval)' : 'in-interval'} decrypt_verify=in-interval sender_check=enforce ` +
        `${cpu(ours)} host_cpu=${f2(median([...ours, ...peer].map((f) => f.host)))}/${ncpu} connections=${CONCURRENCY ?? DEFAULT_MAX_PER_DESTINATION} sessions=${K} ` +
        `durable=fdatasync-before-reply(sqlite-wal-shared-by-concurrent-commits,both-sides) ${peerFields}`,
    );
  }
}
// The README table, then the RESULT lines.
console.log('\n| case | ours msg/s | ours cpu-ms/msg | Postfix msg/s | Postfix cpu-ms/msg | ratio |\n| --- | --- | --- | --- | --- | --- |');
for (const row of rows) console.log(row);
console.log('');
for (const line of results) console.log(line);
