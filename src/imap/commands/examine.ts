import { AUTHENTICATED, defineCommand } from '../command.js';
import { openFolder } from './select.js';

/** EXAMINE (RFC 3501 §6.3.2): SELECT, read-only. */
export default defineCommand({
  name: 'EXAMINE',
  states: AUTHENTICATED,
  parse: (args) => ({ mailbox: args.text('mailbox name') }),
  run: (session, { mailbox }) => openFolder(session, mailbox, true),
});
