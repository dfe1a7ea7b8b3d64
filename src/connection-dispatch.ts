import type { Worker } from 'node:cluster';
import net from 'node:net';
import { z } from 'zod';
import type { ConnectionRefusal, ImapListenerKind } from './imap/server.js';

/** How the listeners of IMAP are named where they are printed. */
export const IMAP_PROTOCOLS = { plain: 'imap (STARTTLS)', tls: 'imap (TLS)' } as const;

/**
 * IMAP connections with `processes` > 1 (docs/decisions/0017-imap-connection-dispatch.md). The primary listens on
 * the IMAP ports itself and hands each new connection, before reading a byte of it, to the worker that holds the
 * fewest IMAP connections, the one started first on a tie. Under load the connections spread evenly; on a quiet
 * server they land in one worker, whose folder states and caches are then warm when a client reconnects (with
 * cluster's round robin each reconnection found another worker, which read the folder again). Seeing every
 * connection, the primary also counts the limits that hold across workers: connections per listener and per
 * client address. A connection beyond one is still handed to a worker, which speaks the BYE (over TLS on the
 * implicit-TLS listener).
 */

const kind = z.enum(['plain', 'tls']);
const handed = z.object({ mss: z.literal('imap-connection'), id: z.number().int().nonnegative(), kind, refusal: z.enum(['busy', 'address']).nullable() }).strict();
const closed = z.object({ mss: z.literal('imap-closed'), id: z.number().int().nonnegative() }).strict();

export interface DispatchLimits {
  /** Per listener, across workers. */
  maxConnections: number;
  /** Per client address, both listeners together, across workers. */
  maxConnectionsPerIp: number;
}

interface Open {
  worker: Worker;
  ip: string;
  kind: ImapListenerKind;
}

/** In the primary: the IMAP listeners, and who holds each connection. */
export class ImapDispatcher {
  readonly #servers: net.Server[] = [];
  readonly #open = new Map<number, Open>();
  readonly #perWorker = new Map<Worker, number>();
  readonly #perIp = new Map<string, number>();
  readonly #perKind: Record<ImapListenerKind, number> = { plain: 0, tls: 0 };
  #nextId = 0;

  /** `workers`: those that serve (ready and connected). */
  constructor(
    private readonly limits: DispatchLimits,
    private readonly workers: () => Iterable<Worker>,
  ) {}

  listen(kind: ImapListenerKind, host: string, port: number): Promise<net.AddressInfo> {
    const server = net.createServer({ pauseOnConnect: true }, (socket) => this.#dispatch(kind, socket));
    this.#servers.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve(server.address() as net.AddressInfo);
      });
    });
  }

  /** The serving worker with the fewest connections; the first started (lowest id) on a tie. */
  #leastBusy(): Worker | null {
    let best: Worker | null = null;
    let bestCount = Infinity;
    for (const worker of this.workers()) {
      const count = this.#perWorker.get(worker) ?? 0;
      if (count < bestCount || (count === bestCount && best !== null && worker.id < best.id)) {
        best = worker;
        bestCount = count;
      }
    }
    return best;
  }

  #dispatch(kind: ImapListenerKind, socket: net.Socket): void {
    socket.on('error', () => {});
    const worker = this.#leastBusy();
    if (!worker) {
      socket.destroy(); // no worker serves (all are being replaced): the client tries again
      return;
    }
    const ip = socket.remoteAddress ?? 'unknown';
    const fromIp = this.#perIp.get(ip) ?? 0;
    const refusal: Exclude<ConnectionRefusal, 'closing'> | null =
      this.#perKind[kind] >= this.limits.maxConnections ? 'busy' : fromIp >= this.limits.maxConnectionsPerIp ? 'address' : null;
    const id = this.#nextId++;
    if (!refusal) {
      this.#open.set(id, { worker, ip, kind });
      this.#perWorker.set(worker, (this.#perWorker.get(worker) ?? 0) + 1);
      this.#perIp.set(ip, fromIp + 1);
      this.#perKind[kind]++;
    }
    const message: z.infer<typeof handed> = { mss: 'imap-connection', id, kind, refusal };
    worker.send(message, socket, (err) => {
      if (!err) return;
      socket.destroy();
      this.#closed(id);
    });
  }

  #closed(id: number): void {
    const open = this.#open.get(id);
    if (!open) return;
    this.#open.delete(id);
    const count = (this.#perWorker.get(open.worker) ?? 1) - 1;
    if (count > 0) this.#perWorker.set(open.worker, count);
    else this.#perWorker.delete(open.worker);
    const fromIp = (this.#perIp.get(open.ip) ?? 1) - 1;
    if (fromIp > 0) this.#perIp.set(open.ip, fromIp);
    else this.#perIp.delete(open.ip);
    this.#perKind[open.kind]--;
  }

  /** A worker's message: the session of a connection it was handed is over. Other messages are not this dispatcher's. */
  onMessage(message: unknown): void {
    const parsed = closed.safeParse(message);
    if (parsed.success) this.#closed(parsed.data.id);
  }

  /** A worker is gone: so are the connections it held. */
  onWorkerExit(worker: Worker): void {
    for (const [id, open] of this.#open) if (open.worker === worker) this.#closed(id);
  }

  /** Stops listening; connections already handed over stay with their workers. */
  close(): Promise<void> {
    return Promise.all(this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))).then(() => {});
  }
}

export interface ConnectionAdopter {
  adopt(kind: ImapListenerKind, socket: net.Socket, refusal: ConnectionRefusal | null, onEnding: () => void): void;
}

/** In a worker: serves the IMAP connections the primary hands over, and tells it when each closes. */
export function adoptImapConnections(imap: ConnectionAdopter): () => void {
  const onMessage = (message: unknown, handle: unknown) => {
    const parsed = handed.safeParse(message);
    if (!parsed.success || !(handle instanceof net.Socket)) return;
    const { id, kind, refusal } = parsed.data;
    // Said when the session ends (LOGOUT: before its reply, so that a client reconnecting at once is counted
    // right), or else when the connection closes; said once.
    let said = false;
    const over = () => {
      if (said) return;
      said = true;
      if (process.connected) process.send?.({ mss: 'imap-closed', id } satisfies z.infer<typeof closed>);
    };
    handle.once('close', over);
    imap.adopt(kind, handle, refusal, over);
  };
  process.on('message', onMessage);
  return () => process.off('message', onMessage);
}
