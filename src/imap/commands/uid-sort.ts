import { defineCommand, SELECTED } from '../command.js';
import { parseSort, runSort } from './sort.js';

/** UID SORT (RFC 5256): SORT answering with UIDs. */
export default defineCommand({
  name: 'UID SORT',
  states: SELECTED,
  parse: parseSort,
  run: (session, args) => runSort(session, args, true),
});
