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
 * short scavenges and keeps the import's peak RSS within its budget (docs/decisions/0007-directory.md).
 */
const RESOURCE_LIMITS = { maxYoungGenerationSizeMb: 16 };

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
