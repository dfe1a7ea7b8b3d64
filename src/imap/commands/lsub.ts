import { AUTHENTICATED, defineCommand } from '../command.js';
import { runList } from './list.js';

/** LSUB (RFC 3501 §6.3.9): the subscribed folders matching the pattern. */
export default defineCommand({
  name: 'LSUB',
  states: AUTHENTICATED,
  parse: (args) => ({ reference: args.text('reference'), pattern: args.text('mailbox pattern') }),
  async run(session, { reference, pattern }) {
    await runList(session, 'LSUB', reference, pattern);
    return { text: 'LSUB completed' };
  },
});
