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
  | { kind: 'delivered'; report?: DeliveryReport }
  /** A temporary failure: try again later (e.g. SMTP 4xx, connection refused). */
  | { kind: 'retry'; reason: string }
  /** A permanent failure: no further attempt (e.g. SMTP 5xx); `onFailed` reports it. */
  | { kind: 'failed'; reason: string };

/** What the transport tells `onDelivered` about a handoff. */
export interface DeliveryReport {
  /** The peer's last reply, e.g. `250 2.0.0 Ok`. */
  response?: string;
  /** The host that took it. */
  remoteMta?: string;
  /** Recipients the peer refused while the item was otherwise handed over (the item is removed all the same). */
  rejected?: readonly { recipient: string; response: string; permanent: boolean }[];
}

/** Returned by a hook: runs once its unit of work is committed (e.g. publishing the mailbox event of a DSN). */
export type AfterCommit = () => void;

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
  onFailed?: (tx: StoreTx, item: QueueItem, reason: string) => Promise<void | AfterCommit>;
  /** Runs in the unit of work that removes a delivered item (the audit record of the handoff). */
  onDelivered?: (tx: StoreTx, item: QueueItem, report: DeliveryReport) => Promise<void | AfterCommit>;
  /**
   * Runs in the unit of work that gives an item back after a temporary failure (not when the worker stops):
   * the reason kept for `mss queue show`, the delay DSN.
   */
  onRetry?: (tx: StoreTx, item: QueueItem, reason: string, nextAttemptAt: number) => Promise<void | AfterCommit>;
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

type Hook = 'onFailed' | 'onDelivered' | 'onRetry' | 'onError';

export class QueueWorker {
  readonly workerId: string;
  readonly #o: Required<Omit<QueueWorkerOptions, 'workerId' | Hook>> & Pick<QueueWorkerOptions, Hook>;
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
      onDelivered: options.onDelivered,
      onRetry: options.onRetry,
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
    const { now, maxAgeMs, retryDelayMs } = this.#o;
    if (outcome.kind === 'retry' && now() - item.createdAt >= maxAgeMs) {
      outcome = { kind: 'failed', reason: `gave up after ${item.attempts} attempts: ${outcome.reason}` };
    }
    const { onDelivered, onFailed, onRetry } = this.#o;
    switch (outcome.kind) {
      case 'delivered': {
        const report = outcome.report ?? {};
        await this.#unit(async (tx) => ((await tx.completeQueueItem(item.id, this.workerId)) && onDelivered ? onDelivered(tx, item, report) : undefined));
        return;
      }
      case 'failed': {
        const reason = outcome.reason;
        await this.#unit(async (tx) => ((await tx.completeQueueItem(item.id, this.workerId)) && onFailed ? onFailed(tx, item, reason) : undefined));
        return;
      }
      case 'retry': {
        // Stopping is not the item's fault: it goes back at once for another worker.
        const stopping = signal.aborted && this.#stopping.signal.aborted;
        const next = stopping ? now() : now() + retryDelayMs(item.attempts);
        const reason = outcome.reason;
        await this.#unit(async (tx) =>
          (await tx.releaseQueueItem(item.id, this.workerId, next)) && !stopping && onRetry ? onRetry(tx, item, reason, next) : undefined,
        );
        return;
      }
    }
  }

  /** One unit of work, then what its hook asked to run after the commit. */
  async #unit(work: (tx: StoreTx) => Promise<void | AfterCommit>): Promise<void> {
    const after = await this.#o.store.transaction(work);
    if (typeof after !== 'function') return;
    try {
      after();
    } catch (err) {
      this.#o.onError?.(err);
    }
  }
}
