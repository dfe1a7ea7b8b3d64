import { defineCommand, SELECTED } from '../command.js';
import { parseFetch, runFetch } from './fetch.js';

/** UID FETCH (RFC 9051 §6.4.9): FETCH addressed by UID; the responses always carry UID. */
export default defineCommand({
  name: 'UID FETCH',
  states: SELECTED,
  parse: parseFetch,
  run: (session, args) => runFetch(session, args, true),
});
