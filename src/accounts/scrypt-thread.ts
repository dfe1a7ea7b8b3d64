import os from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * scrypt on threads of its own, not on libuv's pool. A login's scrypt takes 16 MB and tens of milliseconds; on
 * libuv's four threads a burst of logins (clients reconnecting after a restart) queued every file operation behind
 * it, among them the fdatasync each commit waits for (docs/decisions/0016-sqlite-wal-sync.md), so deliveries
 * stalled while clients logged in. Here hashes wait for the hashing threads only, and glibc keeps the freed 16 MB
 * blocks in as many malloc arenas as there are hashing threads, not one per libuv thread.
 *
 * The thread's code is a few lines of plain JavaScript given as a string: the same from the sources and from the
 * build, with no loader to register.
 */
const THREAD_CODE = `
const { parentPort } = require('node:worker_threads');
const { scryptSync } = require('node:crypto');
parentPort.on('message', ({ id, password, salt, keyLength, options }) => {
  try {
    const key = scryptSync(password, Buffer.from(salt), keyLength, options);
    parentPort.postMessage({ id, key });
  } catch (err) {
    parentPort.postMessage({ id, error: err && err.message ? err.message : String(err) });
  }
});
`;

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
  maxmem: number;
}

interface Job {
  id: number;
  password: string;
  salt: Buffer;
  keyLength: number;
  options: ScryptParams;
  resolve(key: Buffer): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  job: Job | null;
}

function isReply(value: unknown): value is { id: number; key?: Uint8Array; error?: string } {
  return typeof value === 'object' && value !== null && typeof (value as { id?: unknown }).id === 'number';
}

export class ScryptThreads {
  readonly #slots: Slot[] = [];
  readonly #queue: Job[] = [];
  #nextId = 1;

  /** `size`: hashing threads; by default one core in two, at most four (the others serve sessions). */
  constructor(readonly size = Math.max(1, Math.min(4, Math.floor(os.availableParallelism() / 2)))) {}

  derive(password: string, salt: Buffer, keyLength: number, options: ScryptParams): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ id: this.#nextId++, password, salt, keyLength, options, resolve, reject });
      this.#dispatch();
    });
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      let slot = this.#slots.find((s) => s.job === null);
      if (!slot) {
        if (this.#slots.length >= this.size) return;
        slot = this.#start();
      }
      const job = this.#queue.shift()!;
      slot.job = job;
      // Only while it works does the thread keep the process alive.
      slot.worker.ref();
      slot.worker.postMessage({ id: job.id, password: job.password, salt: job.salt, keyLength: job.keyLength, options: job.options });
    }
  }

  #start(): Slot {
    const worker = new Worker(THREAD_CODE, { eval: true });
    const slot: Slot = { worker, job: null };
    worker.on('message', (reply: unknown) => {
      const job = slot.job;
      if (!job || !isReply(reply) || reply.id !== job.id) return;
      slot.job = null;
      worker.unref();
      if (reply.key) job.resolve(Buffer.from(reply.key.buffer, reply.key.byteOffset, reply.key.byteLength));
      else job.reject(new Error(`scrypt failed: ${reply.error ?? 'unknown error'}`));
      this.#dispatch();
    });
    const lost = (err: Error) => {
      const index = this.#slots.indexOf(slot);
      if (index >= 0) this.#slots.splice(index, 1);
      slot.job?.reject(err);
      slot.job = null;
      this.#dispatch();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`scrypt thread stopped (exit code ${code})`)));
    worker.unref();
    this.#slots.push(slot);
    return slot;
  }

  /** Threads started so far (for tests). */
  get threads(): number {
    return this.#slots.length;
  }
}

/** The process's hashing threads, started at the first hash. */
export const scryptThreads = new ScryptThreads();
