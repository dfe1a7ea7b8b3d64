import cluster, { type Worker } from 'node:cluster';
import { z } from 'zod';
import { ImapDispatcher, type DispatchLimits } from './connection-dispatch.js';
import type { ImapListenerKind } from './imap/server.js';
import { serverEnvironment } from './malloc-env.js';
import { relayEvents } from './store/cluster-notifier.js';

/**
 * `mss start` with `processes` > 1 (docs/decisions/0015-server-processes.md): the primary process forks that many
 * workers, each a whole server on the same database (the same `mss start` run again by node:cluster), which share
 * the listening sockets (IMAP's are the primary's own, which deals their connections: src/connection-dispatch.ts,
 * ADR 0017); it relays the workers' mailbox events to one another, announces the listeners once all
 * workers are up, replaces a worker that dies, and stops them all on SIGTERM or SIGINT.
 */

/** A listening socket, as a worker reports it. */
export interface Announced {
  protocol: string;
  host: string;
  port: number;
}

const ready = z.object({
  mss: z.literal('ready'),
  listeners: z.array(z.object({ protocol: z.string(), host: z.string(), port: z.number().int() })),
});

/** A worker that dies this soon after it started is not replaced: the next one would die the same way. */
const MIN_UPTIME_MS = 10_000;
const RESPAWN_DELAY_MS = 1000;

export interface PrimaryEvents {
  /** All workers are serving: the listeners of the first one (they all share them), and the IMAP ones. */
  onReady(listeners: Announced[]): void;
  onStopping(signal: string): void;
  /** Every worker has exited; `ok` false when one failed to stop cleanly or could not start. */
  onStopped(ok: boolean): void;
  onWorkerExit(pid: number, code: number | null, signal: string | null, replaced: boolean): void;
}

/** The IMAP listeners the primary holds, by kind, and the limits it counts across workers. */
export interface PrimaryImap {
  listeners: Record<ImapListenerKind, { host: string; port: number; protocol: string }>;
  limits: DispatchLimits;
}

/** Where the IMAP listeners go among a worker's: before the first HTTPS one (as one process prints them). */
function withImap(listeners: readonly Announced[], imap: readonly Announced[]): Announced[] {
  const at = listeners.findIndex((l) => l.protocol.startsWith('https'));
  const cut = at < 0 ? listeners.length : at;
  return [...listeners.slice(0, cut), ...imap, ...listeners.slice(cut)];
}

export function runPrimary(count: number, imap: PrimaryImap, events: PrimaryEvents): void {
  relayEvents(cluster);
  const started = new Map<Worker, number>();
  const readyWorkers = new Set<Worker>();
  const dispatcher = new ImapDispatcher(imap.limits, () => [...readyWorkers].filter((w) => w.isConnected()));
  let announced = false;
  let stopping = false;
  let failed = false;

  const fork = () => started.set(cluster.fork(serverEnvironment()), Date.now());
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    events.onStopping(signal);
    void dispatcher.close();
    for (const worker of started.keys()) if (!worker.isDead()) worker.process.kill('SIGTERM');
    if (started.size === 0) events.onStopped(!failed);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  const listenImap = async (): Promise<Announced[]> => {
    const out: Announced[] = [];
    for (const kind of ['plain', 'tls'] as const) {
      const { host, port, protocol } = imap.listeners[kind];
      const address = await dispatcher.listen(kind, host, port);
      out.push({ protocol, host: address.address, port: address.port });
    }
    return out;
  };
  cluster.on('message', (worker, message: unknown) => {
    dispatcher.onMessage(message);
    const parsed = ready.safeParse(message);
    if (!parsed.success) return;
    readyWorkers.add(worker);
    if (!announced && readyWorkers.size === count) {
      announced = true;
      listenImap().then(
        (imapListeners) => !stopping && events.onReady(withImap(parsed.data.listeners, imapListeners)),
        (err: unknown) => {
          console.error(`IMAP listener: ${err instanceof Error ? err.message : String(err)}`);
          failed = true;
          stop('IMAP listener failure');
        },
      );
    }
  });
  cluster.on('exit', (worker, code, signal) => {
    const since = started.get(worker) ?? Date.now();
    started.delete(worker);
    readyWorkers.delete(worker);
    dispatcher.onWorkerExit(worker);
    const clean = code === 0;
    const replace = !stopping && Date.now() - since >= MIN_UPTIME_MS;
    if (!clean && (stopping || !replace)) failed = true;
    events.onWorkerExit(worker.process.pid ?? 0, code, signal, replace);
    if (replace) setTimeout(() => !stopping && fork(), RESPAWN_DELAY_MS);
    else if (!stopping) stop('worker exit'); // it died at start: the others would too
    if (stopping && started.size === 0) events.onStopped(!failed);
  });
  for (let i = 0; i < count; i++) fork();
}

/** In a worker: tells the primary this worker serves these listeners. */
export function reportReady(listeners: readonly Announced[]): void {
  process.send?.({ mss: 'ready', listeners });
}
