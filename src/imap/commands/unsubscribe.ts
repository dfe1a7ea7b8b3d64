import { AUTHENTICATED, defineCommand } from '../command.js';
import { parseSubscribe, runSubscribe } from './subscribe.js';

/** UNSUBSCRIBE (RFC 9051 §6.3.8). */
export default defineCommand({
  name: 'UNSUBSCRIBE',
  states: AUTHENTICATED,
  parse: parseSubscribe,
  run: (session, { mailbox }) => runSubscribe(session, mailbox, false),
});
