import { defineCommand, SELECTED } from '../command.js';
import { parseStore, runStore } from './store.js';

/** UID STORE (RFC 9051 §6.4.9). */
export default defineCommand({
  name: 'UID STORE',
  states: SELECTED,
  parse: parseStore,
  run: (session, args) => runStore(session, args, true),
});
