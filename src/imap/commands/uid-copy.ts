import { defineCommand, SELECTED } from '../command.js';
import { parseCopy, runCopy } from './copy.js';

/** UID COPY (RFC 9051 §6.4.9, COPYUID from RFC 4315). */
export default defineCommand({
  name: 'UID COPY',
  states: SELECTED,
  parse: parseCopy,
  run: (session, args) => runCopy(session, args, { byUid: true, move: false }),
});
