import { AUTHENTICATED, defineCommand } from '../command.js';

/**
 * UNAUTHENTICATE (RFC 8437): back to the not-authenticated state on the same connection. The selected folder is
 * closed without expunging, change notifications stop, and extensions turned on with ENABLE are off again; TLS
 * and COMPRESS stay. The pre-authentication deadline starts again.
 */
export default defineCommand({
  name: 'UNAUTHENTICATE',
  states: AUTHENTICATED,
  parse: () => null,
  async run(session) {
    session.unauthenticate();
    return { text: 'UNAUTHENTICATE completed' };
  },
});
