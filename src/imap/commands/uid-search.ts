import { defineCommand, SELECTED } from '../command.js';
import { parseSearch } from '../search/keys.js';
import { runSearch } from './search.js';

/** UID SEARCH (RFC 9051 §6.4.9): SEARCH answering with UIDs. */
export default defineCommand({
  name: 'UID SEARCH',
  states: SELECTED,
  parse: parseSearch,
  run: (session, args, tag) => runSearch(session, args, true, tag),
});
