import { defineCommand, SELECTED } from '../command.js';
import { parseThread, runThread } from './thread.js';

/** UID THREAD (RFC 5256): THREAD answering with UIDs. */
export default defineCommand({
  name: 'UID THREAD',
  states: SELECTED,
  parse: parseThread,
  run: (session, args) => runThread(session, args, true),
});
