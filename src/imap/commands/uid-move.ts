import { defineCommand, SELECTED } from '../command.js';
import { parseCopy, runCopy } from './copy.js';

/** UID MOVE (RFC 6851 §3.2). */
export default defineCommand({
  name: 'UID MOVE',
  states: SELECTED,
  parse: parseCopy,
  run: (session, args) => runCopy(session, args, { byUid: true, move: true }),
});
