import type { Cluster, Worker } from 'node:cluster';
import { z } from 'zod';
import { LocalNotifier } from './notifier.js';
import type { MailboxEvent, Notifier } from './types.js';

/**
 * Mailbox events across the processes of one `mss start` on SQLite (`processes` > 1, docs/decisions/0015-server-processes.md):
 * each worker publishes to its own sessions at once, as `LocalNotifier` does, and sends its events, gathered per
 * event-loop turn, to the primary process, which passes them on to every other worker. What a worker receives is
 * validated before its sessions see it.
 */

const id = z.number().int().nonnegative();
const eventSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('exists'), mailboxId: id, folderId: id, uid: id, modseq: id }).strict(),
  z.object({ kind: z.literal('flags'), mailboxId: id, folderId: id, uid: id, modseq: id, flags: z.array(z.string()), origin: z.string().optional() }).strict(),
  z.object({ kind: z.literal('expunge'), mailboxId: id, folderId: id, uid: id, modseq: id }).strict(),
  z.object({ kind: z.literal('resync'), mailboxId: id }).strict(),
]);
const relayed = z.object({ mss: z.literal('events'), events: z.array(eventSchema) }).strict();

/** What a worker sends and receives. */
interface Relayed {
  mss: 'events';
  events: MailboxEvent[];
}

/** The side of the IPC channel a worker sees (`process` in a cluster worker). */
export interface WorkerChannel {
  readonly connected: boolean;
  send(message: Relayed, callback: (err: Error | null) => void): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

/** This process's channel to its primary (a cluster worker's `process`). */
export function primaryChannel(): WorkerChannel {
  return {
    get connected() {
      return process.connected;
    },
    send: (message, callback) => process.send?.(message, undefined, undefined, callback) ?? false,
    on: (event, listener) => process.on(event, listener),
    off: (event, listener) => process.off(event, listener),
  };
}

export class ClusterNotifier implements Notifier {
  readonly #local = new LocalNotifier();
  #outbox: MailboxEvent[] = [];
  readonly #receive = (message: unknown) => {
    const parsed = relayed.safeParse(message);
    if (!parsed.success) return; // another kind of message, or not ours
    for (const event of parsed.data.events) this.#local.publish(event as MailboxEvent);
  };

  constructor(private readonly channel: WorkerChannel) {
    channel.on('message', this.#receive);
  }

  publish(event: MailboxEvent): void {
    this.#local.publish(event);
    if (this.#outbox.push(event) === 1) setImmediate(() => this.#flush());
  }

  subscribe(mailboxId: number, listener: (event: MailboxEvent) => void): () => void {
    return this.#local.subscribe(mailboxId, listener);
  }

  #flush(): void {
    const events = this.#outbox;
    this.#outbox = [];
    // A primary that went away takes the other workers with it: nobody is left to tell.
    if (events.length > 0 && this.channel.connected) this.channel.send({ mss: 'events', events }, () => {});
  }

  async close(): Promise<void> {
    this.#flush();
    this.channel.off('message', this.#receive);
    await this.#local.close();
  }
}

/** In the primary: passes each worker's events on to the other workers. */
export function relayEvents(cluster: Cluster): void {
  cluster.on('message', (from: Worker, message: unknown) => {
    if (typeof message !== 'object' || message === null || (message as { mss?: unknown }).mss !== 'events') return;
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (worker && worker !== from && worker.isConnected()) worker.send(message as Relayed, () => {});
    }
  });
}
