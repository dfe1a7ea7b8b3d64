import { AUTHENTICATED, defineCommand } from '../command.js';
import { openFolder, parseSelect } from './select.js';

/** EXAMINE (RFC 3501 §6.3.2): SELECT, read-only. */
export default defineCommand({
  name: 'EXAMINE',
  states: AUTHENTICATED,
  parse: parseSelect,
  run: (session, args) => openFolder(session, args, true),
});
