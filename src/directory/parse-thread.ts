import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { FirstPassJob, ParserCommand, ParserMessage } from './first-pass.js';
import { DirectoryFileError } from './formats.js';

/**
 * The main thread's side of the parsing thread (`parse-worker.ts`, `first-pass.ts`): starts it, hands over its
 * messages one at a time, turns its failures back into errors (a `DirectoryFileError` stays one), and ends it.
 */

/**
 * The parser allocates fast and keeps little: a young generation smaller than V8's default costs a few more
 * short scavenges and keeps the import's peak RSS within its budget (docs/decisions/0007-directory.md). What it
 * keeps is bounded (the keys it remembers, `first-pass.ts`, about 15 MB at their limits; the names it folds; the
 * batches not yet acknowledged), but V8 lets the old generation fill with what a batch promoted before collecting
 * it: each thread's heap grew to 55 MB on a re-import, and the second thread of a re-import took the peak RSS past
 * 280 MB. Capped, the heaps are collected sooner (about 5 % more time).
 */
const RESOURCE_LIMITS = { maxYoungGenerationSizeMb: 16, maxOldGenerationSizeMb: 48 };

/**
 * How to start the worker. Its entry sits next to this module, with the same extension: `.js` in the build,
 * `.ts` when the sources run under `tsx` (`npm run bench`) or vitest. Node 20 does not apply the module hooks of
 * `--import tsx` to a worker's entry (the worker fails with ERR_UNKNOWN_FILE_EXTENSION), so a `.ts` entry is
 * loaded through tsx's CommonJS hook instead (tsx is a devDependency, there whenever the sources run).
 */
function startWorker(workerData: FirstPassJob): Worker {
  const extension = path.extname(fileURLToPath(import.meta.url));
  const entry = new URL(`./parse-worker${extension}`, import.meta.url);
  if (extension !== '.ts') return new Worker(entry, { workerData, resourceLimits: RESOURCE_LIMITS });
  const tsx = createRequire(import.meta.url).resolve('tsx/cjs/api');
  const bootstrap = `require(${JSON.stringify(tsx)}).register(); require(${JSON.stringify(fileURLToPath(entry))});`;
  return new Worker(bootstrap, { eval: true, workerData, resourceLimits: RESOURCE_LIMITS });
}

export class ParsingThread {
  readonly #worker: Worker;
  readonly #inbox: ParserMessage[] = [];
  #waiting: { resolve: (m: ParserMessage) => void; reject: (err: Error) => void } | null = null;
  #failure: Error | null = null;

  constructor(job: FirstPassJob) {
    this.#worker = startWorker(job);
    this.#worker.on('message', (message: ParserMessage) => this.#deliver(message));
    this.#worker.on('error', (err) => this.#fail(err));
    this.#worker.on('exit', (code) => this.#fail(new Error(`the parsing thread stopped (exit code ${code})`)));
  }

  #deliver(message: ParserMessage): void {
    if (message.type === 'failed') {
      this.#fail(message.fileError ? new DirectoryFileError(message.message) : new Error(message.message));
      return;
    }
    if (this.#waiting) {
      const { resolve } = this.#waiting;
      this.#waiting = null;
      resolve(message);
    } else {
      this.#inbox.push(message);
    }
  }

  /** The first failure wins (a later `exit` does not hide the reason the thread gave). */
  #fail(err: Error): void {
    this.#failure ??= err;
    if (this.#waiting) {
      const { reject } = this.#waiting;
      this.#waiting = null;
      reject(this.#failure);
    }
  }

  /** The next message; rejects with the thread's failure once its earlier messages are taken. */
  next(): Promise<ParserMessage> {
    const message = this.#inbox.shift();
    if (message) return Promise.resolve(message);
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => (this.#waiting = { resolve, reject }));
  }

  send(command: ParserCommand): void {
    this.#worker.postMessage(command);
  }

  /** Stops the thread, wherever it is (at the end of an import, or when it fails or is aborted). */
  async terminate(): Promise<void> {
    await this.#worker.terminate();
  }
}

/**
 * The threads of a first pass as one stream of messages, each with the part of the file it comes from: the first
 * thread's (the whole file until `add` starts another), then each added one's. A thread's messages stop after its
 * `end`.
 */
export class ParsingThreads {
  readonly #threads: ParsingThread[] = [];
  readonly #pending: (Promise<{ part: number; message: ParserMessage }> | null)[] = [];
  readonly #ended: boolean[] = [];

  constructor(job: FirstPassJob) {
    this.add(job);
  }

  get parts(): number {
    return this.#threads.length;
  }

  /** Starts a thread for a later part of the file (`job.part`). */
  add(job: FirstPassJob): void {
    this.#threads.push(new ParsingThread(job));
    this.#pending.push(null);
    this.#ended.push(false);
  }

  /** The next message of any thread; rejects with the first failure. */
  async next(): Promise<{ part: number; message: ParserMessage }> {
    this.#threads.forEach((thread, part) => {
      if (!this.#ended[part]) this.#pending[part] ??= thread.next().then((message) => ({ part, message }));
    });
    const pending = this.#pending.filter((p) => p !== null);
    if (pending.length === 0) throw new Error('every parsing thread has ended');
    const out = await Promise.race(pending);
    this.#pending[out.part] = null;
    if (out.message.type === 'end') this.#ended[out.part] = true;
    return out;
  }

  send(part: number, command: ParserCommand): void {
    this.#threads[part]!.send(command);
  }

  async terminate(): Promise<void> {
    await Promise.all(this.#threads.map((t) => t.terminate()));
  }
}
