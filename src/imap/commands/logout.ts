import { ANY_STATE, defineCommand } from '../command.js';
import { status } from '../serializer.js';

/** LOGOUT (RFC 9051 §6.1.3): BYE, then the tagged OK, then the connection closes. */
export default defineCommand({
  name: 'LOGOUT',
  states: ANY_STATE,
  parse: () => null,
  async run(session) {
    session.logout();
    await session.send(status(null, 'BYE', 'Logging out'));
    return { text: 'LOGOUT completed' };
  },
});
