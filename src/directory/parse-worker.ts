import { parentPort, workerData } from 'node:worker_threads';
import { failed, firstPass, type FirstPassJob, type ParserCommand, type ParserMessage } from './first-pass.js';

/** Entry of the parsing thread an import starts (`parse-thread.ts`): runs the first pass, talks over `parentPort`. */

const port = parentPort;
if (!port) throw new Error('parse-worker.ts runs as a worker thread');

const inbox: ParserCommand[] = [];
let waiting: ((command: ParserCommand) => void) | null = null;
const onCommand = (command: ParserCommand) => {
  if (waiting) {
    const resolve = waiting;
    waiting = null;
    resolve(command);
  } else {
    inbox.push(command);
  }
};
port.on('message', onCommand);
const next = () => (inbox.length > 0 ? Promise.resolve(inbox.shift()!) : new Promise<ParserCommand>((resolve) => (waiting = resolve)));
const post = (message: ParserMessage) => port.postMessage(message);

firstPass(workerData as FirstPassJob, post, next)
  .catch((err: unknown) => post(failed(err)))
  // Nothing left to wait for: the thread ends once its messages are sent.
  .finally(() => port.off('message', onCommand));
