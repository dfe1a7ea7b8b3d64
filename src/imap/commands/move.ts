import { defineCommand, SELECTED } from '../command.js';
import { parseCopy, runCopy } from './copy.js';

/** MOVE (RFC 6851 §3.1). */
export default defineCommand({
  name: 'MOVE',
  states: SELECTED,
  parse: parseCopy,
  run: (session, args) => runCopy(session, args, { byUid: false, move: true }),
});
