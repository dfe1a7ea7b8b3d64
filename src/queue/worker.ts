import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { QueueItem, Store, StoreTx } from '../store/types.js';

/**
 * The outbound queue worker: claims due items (docs/decisions/0008-queue-delivery.md), hands each to a
 * transport, then completes or reschedules it. Any number of workers in any number of processes share one
 * queue: claims use the store's lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL), a live delivery renews its
 * lease, and a worker that dies loses its items when their lease expires.
 *
 * Delivery is at least once from the queue's side: a worker can die after the peer accepted an item and before
 * the removal commits. Every attempt therefore carries the item id as an idempotency key (`DeliveryAttempt`);
 * the receiving side drops a second arrival of a key it has already accepted, which makes the handoff
 * exactly once.
 */

export type DeliveryOutcome =
  | { kind: 'delivered' }
  /** A temporary failure: try again later (e.g. SMTP 4xx, connection refused). */
  | { kind: 'retry'; reason: string }
  /** A permanent failure: no further attempt (e.g. SMTP 5xx); `onFailed` reports it. */
  | { kind: 'failed'; reason: string };

export interface DeliveryAttempt {
  item: QueueItem;
  /** The same for every attempt of one item, in every process: the receiver's duplicate check. */
  idempotencyKey: string;
  /** Aborted when the worker lost the item's lease or is stopping. */
  signal: AbortSignal;
}

export interface QueueTransport {
  /** Throwing counts as a temporary failure. */
  deliver(attempt: DeliveryAttempt): Promise<DeliveryOutcome>;
}

export interface QueueWorkerOptions {
  store: Store;
  transport: QueueTransport;
  /** Unique across every process on the database; default host:pid:random. */
  workerId?: string;
  /** Items claimed at once and delivered concurrently. */
  batch?: number;
  /** How long a claim lives without renewal; a delivery in progress renews it every third of this. */
  leaseMs?: number;
  /** How long to wait when nothing is due (a `kick()` ends the wait early). */
  idleMs?: number;
  /** Delay before the next attempt, from the number of attempts made so far (1 after the first). */
  retryDelayMs?: (attempts: number) => number;
  /** An item whose first attempt is older than this fails instead of being retried. */
  maxAgeMs?: number;
  /**
   * Runs in the unit of work that removes an item after a permanent failure (the failure DSN goes into the
   * sender's mailbox with it, or not at all); like any unit of work it may run again after a conflict.
   */
  onFailed?: (tx: StoreTx, item: QueueItem, reason: string) => Promise<void>;
  /** Transient store or transport errors, for the log. */
  onError?: (err: unknown, item?: QueueItem) => void;
  now?: () => number;
}

/** Exponential backoff: 1 min, 2, 4 … capped at 1 h; the federation config supplies its own schedule. */
export function defaultRetryDelayMs(attempts: number): number {
  return Math.min(60_000 * 2 ** Math.max(0, attempts - 1), 3_600_000);
}

export function newWorkerId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
}

export class QueueWorker {
  readonly workerId: string;
  readonly #o: Required<Omit<QueueWorkerOptions, 'workerId' | 'onFailed' | 'onError'>> &
    Pick<QueueWorkerOptions, 'onFailed' | 'onError'>;
  readonly #stopping = new AbortController();
  #wake: (() => void) | null = null;
  #loop: Promise<void> | null = null;

  constructor(options: QueueWorkerOptions) {
    this.workerId = options.workerId ?? newWorkerId();
    this.#o = {
      store: options.store,
      transport: options.transport,
      batch: options.batch ?? 8,
      leaseMs: options.leaseMs ?? 5 * 60_000,
      idleMs: options.idleMs ?? 1000,
      retryDelayMs: options.retryDelayMs ?? defaultRetryDelayMs,
      maxAgeMs: options.maxAgeMs ?? 5 * 24 * 3_600_000,
      onFailed: options.onFailed,
      onError: options.onError,
      now: options.now ?? Date.now,
    };
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Ends the idle wait: new items were enqueued. */
  kick(): void {
    this.#wake?.();
  }

  /** Stops claiming, aborts deliveries in progress (their items go back to the queue) and waits for them. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    this.kick();
    await this.#loop;
  }

  /** One claim-and-deliver round; resolves with the number of items claimed (for tests and `mss queue`). */
  async runOnce(): Promise<number> {
    const { store, batch, leaseMs, now } = this.#o;
    const items = await store.transaction((tx) => tx.claimDue(this.workerId, batch, leaseMs, now()));
    await Promise.all(items.map((item) => this.#deliver(item)));
    return items.length;
  }

  async #run(): Promise<void> {
    while (!this.#stopping.signal.aborted) {
      let claimed = 0;
      try {
        claimed = await this.runOnce();
      } catch (err) {
        this.#o.onError?.(err);
      }
      if (claimed === 0 && !this.#stopping.signal.aborted) await this.#idle();
    }
  }

  #idle(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, this.#o.idleMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = null;
        done();
      };
    });
  }

  async #deliver(item: QueueItem): Promise<void> {
    const { store, transport, leaseMs, now } = this.#o;
    const lost = new AbortController();
    const signal = AbortSignal.any([lost.signal, this.#stopping.signal]);
    const renewal = setInterval(() => {
      store
        .transaction((tx) => tx.renewQueueLease(item.id, this.workerId, now() + leaseMs))
        .then((held) => {
          if (!held) lost.abort(new Error('lease lost'));
        })
        .catch((err: unknown) => this.#o.onError?.(err, item));
    }, Math.max(1, Math.floor(leaseMs / 3)));
    let outcome: DeliveryOutcome;
    try {
      outcome = await transport.deliver({ item, idempotencyKey: item.id, signal });
    } catch (err) {
      outcome = { kind: 'retry', reason: err instanceof Error ? err.message : String(err) };
    } finally {
      clearInterval(renewal);
    }
    try {
      await this.#settle(item, outcome, signal);
    } catch (err) {
      // The lease expires and another attempt follows; the receiver drops it if this one got through.
      this.#o.onError?.(err, item);
    }
  }

  async #settle(item: QueueItem, outcome: DeliveryOutcome, signal: AbortSignal): Promise<void> {
    const { store, now, maxAgeMs, retryDelayMs } = this.#o;
    if (outcome.kind === 'retry' && now() - item.createdAt >= maxAgeMs) {
      outcome = { kind: 'failed', reason: `gave up after ${item.attempts} attempts: ${outcome.reason}` };
    }
    switch (outcome.kind) {
      case 'delivered':
        await store.transaction((tx) => tx.completeQueueItem(item.id, this.workerId));
        return;
      case 'failed': {
        const reason = outcome.reason;
        await store.transaction(async (tx) => {
          if ((await tx.completeQueueItem(item.id, this.workerId)) && this.#o.onFailed) await this.#o.onFailed(tx, item, reason);
        });
        return;
      }
      case 'retry': {
        // Stopping is not the item's fault: it goes back at once for another worker.
        const next = signal.aborted && this.#stopping.signal.aborted ? now() : now() + retryDelayMs(item.attempts);
        await store.transaction((tx) => tx.releaseQueueItem(item.id, this.workerId, next));
        return;
      }
    }
  }
}
