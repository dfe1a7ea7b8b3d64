/**
 * SMTP submission throughput: N messages of each size over K concurrent TLS-authenticated sessions, reused
 * (smtp-server waits 100 ms before each greeting), into local mailboxes. The server runs as the real CLI in
 * its own process. Durability: every 250 follows an fsync'd SQLite WAL commit (synchronous=FULL).
 *
 * Peer: the same load, bodies and client against a throwaway Postfix instance (bench/_postfix-peer.ts) in the
 * same run: implicit TLS, SASL AUTH via an auth-only Dovecot when available, 250 after cleanup(8) fsyncs the
 * queue file, then real delivery into a Maildir. `ratio` = our msgs_per_s / Postfix's. If Postfix cannot be
 * installed or started, the RESULT lines say `peer=unavailable` and carry no ratio.
 *
 *   npm run bench -- smtp-submit [--n=2000] [--k=8] [--runs=3]
 */
import { buildIfNeeded, createOperator, DOMAIN, FROM, median, message, percentile, startServer as startMss, stopAllServersSync } from './_operator.js';
import { startPostfixPeer, stopAllPostfixPeersSync } from './_postfix-peer.js';
import { SmtpSession } from './_smtp-session.js';

const arg = (name: string, dflt: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt);
const N = arg('n', 2000);
const K = arg('k', 8);
const RUNS = arg('runs', 3);

const TO = `claire.martin@${DOMAIN}`;
/** Bounds the wait for the peer's deliveries, so the bench always ends by itself. */
const PEER_DELIVERY_TIMEOUT_MS = 120_000;

interface Target {
  port: number;
  ca: string;
  /** Absent when the target offers no AUTH (Postfix peer without Dovecot). */
  auth?: { user: string; password: string };
  stop(): Promise<void>;
}

interface Figures {
  msgsPerS: number;
  p50: number;
  p99: number;
}

/** Our server, as the real CLI in its own process, in a fresh directory. */
async function startServer(): Promise<Target> {
  const operator = createOperator();
  try {
    const server = await startMss(operator.dir);
    const stop = async () => {
      await server.stop();
      operator.remove();
    };
    return { port: server.port, ca: operator.ca, auth: { user: FROM, password: operator.password }, stop };
  } catch (err) {
    operator.remove();
    throw err;
  }
}

/** The same load against any target: `count` messages spread over K reused sessions, each waiting for its 250. */
async function runLoad(target: Pick<Target, 'port' | 'ca' | 'auth'>, bodies: Buffer[], count: number): Promise<Figures> {
  const sessions: SmtpSession[] = [];
  try {
    for (const s of await Promise.allSettled(Array.from({ length: K }, () => SmtpSession.open(target.port, target.ca, target.auth)))) {
      if (s.status === 'rejected') throw s.reason;
      sessions.push(s.value);
    }
    const latencies: number[] = [];
    let next = 0;
    const start = process.hrtime.bigint();
    await Promise.all(
      sessions.map(async (s) => {
        while (next < count) {
          const i = next++;
          latencies.push(await s.send(FROM, TO, bodies[i % bodies.length]!));
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    await Promise.all(sessions.map((s) => s.close()));
    latencies.sort((a, b) => a - b);
    return { msgsPerS: count / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
  } catch (err) {
    for (const s of sessions) s.destroy();
    throw err;
  }
}

async function runOurs(bodies: Buffer[], count: number): Promise<Figures> {
  const server = await startServer();
  try {
    return await runLoad(server, bodies, count);
  } finally {
    await server.stop();
  }
}

/** One run against a fresh Postfix peer; also checks that Postfix really delivered every message to the Maildir. */
async function runPeer(bodies: Buffer[], count: number): Promise<Figures & { name: string; auth: boolean }> {
  const peer = await startPostfixPeer({ domain: DOMAIN, recipients: [TO], user: FROM });
  try {
    const auth = peer.user ? { user: peer.user, password: peer.password! } : undefined;
    const figures = await runLoad({ port: peer.port, ca: peer.ca, auth }, bodies, count);
    // Not timed: delivery is asynchronous after the 250 (as in any MTA); this only proves nothing was discarded.
    const delivered = await peer.waitDelivered(count, PEER_DELIVERY_TIMEOUT_MS);
    if (delivered < count) console.warn(`warning: postfix peer delivered only ${delivered}/${count} messages within ${PEER_DELIVERY_TIMEOUT_MS} ms`);
    return { ...figures, name: peer.name, auth: Boolean(peer.user) };
  } finally {
    await peer.stop();
  }
}

// Whatever way the bench ends (error, Ctrl-C, kill), leave no server, Postfix or Dovecot behind. 'exit' handlers
// must be synchronous, hence the sync variants; the signals are turned into a normal exit so that it runs.
process.once('exit', () => {
  stopAllServersSync();
  stopAllPostfixPeersSync();
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => process.exit(130));

const fmt = (r: Figures) => `${r.msgsPerS.toFixed(0)} msg/s, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms`;

buildIfNeeded();
const cases = [
  { name: '5KB', size: 5 * 1024, count: N },
  { name: '100KB', size: 100 * 1024, count: Math.max(1, Math.floor(N / 4)) },
];
/** Set once the peer fails: later cases then skip it rather than retrying installation or start-up. */
let peerUnavailable: string | null = null;
const results: string[] = [];
for (const c of cases) {
  const bodies = Array.from({ length: 16 }, (_, i) => message(c.size, i));
  const ours: Figures[] = [];
  const peer: (Figures & { name: string; auth: boolean })[] = [];
  for (let r = 0; r < RUNS; r++) {
    // Alternate who goes first so neither side always gets the warmer (or more fragmented) machine.
    const order = r % 2 === 0 ? (['ours', 'peer'] as const) : (['peer', 'ours'] as const);
    for (const who of order) {
      if (who === 'ours') {
        const res = await runOurs(bodies, c.count);
        console.log(`run ${r + 1}/${RUNS} ${c.name} ours:    ${fmt(res)}`);
        ours.push(res);
      } else if (!peerUnavailable) {
        try {
          const res = await runPeer(bodies, c.count);
          console.log(`run ${r + 1}/${RUNS} ${c.name} ${res.name}: ${fmt(res)}${res.auth ? '' : ' (no AUTH)'}`);
          peer.push(res);
        } catch (err) {
          peerUnavailable = (err as Error).message;
          console.warn(`postfix peer unavailable, reporting our figures alone: ${peerUnavailable}`);
        }
      }
    }
  }
  const mine = { msgsPerS: median(ours.map((r) => r.msgsPerS)), p50: median(ours.map((r) => r.p50)), p99: median(ours.map((r) => r.p99)) };
  let peerFields = 'peer=unavailable';
  // Only a peer measured as many times as we were gives a ratio (a peer failing mid-case does not).
  if (!peerUnavailable && peer.length === RUNS) {
    const theirs = { msgsPerS: median(peer.map((r) => r.msgsPerS)), p50: median(peer.map((r) => r.p50)), p99: median(peer.map((r) => r.p99)) };
    peerFields =
      `peer=${peer[0]!.name} peer_msgs_per_s=${theirs.msgsPerS.toFixed(0)} peer_p50_ms=${theirs.p50.toFixed(1)} ` +
      `peer_p99_ms=${theirs.p99.toFixed(1)} peer_auth=${peer.every((r) => r.auth) ? 'yes' : 'no'} ratio=${(mine.msgsPerS / theirs.msgsPerS).toFixed(2)}`;
  }
  results.push(
    `RESULT smtp-submit-${c.name} msgs_per_s=${mine.msgsPerS.toFixed(0)} p50_ms=${mine.p50.toFixed(1)} ` +
      `p99_ms=${mine.p99.toFixed(1)} messages=${c.count} sessions=${K} runs=${RUNS} ` +
      `durable=fdatasync-before-reply(sqlite-wal-shared-by-concurrent-commits) tls=yes ${peerFields}`,
  );
}
for (const line of results) console.log(line);
