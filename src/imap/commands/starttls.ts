import { defineCommand, ImapError, NOT_AUTHENTICATED } from '../command.js';

/** STARTTLS (RFC 9051 §6.2.1): OK, then the handshake; anything the client sent before it is discarded. */
export default defineCommand({
  name: 'STARTTLS',
  states: NOT_AUTHENTICATED,
  parse: () => null,
  async run(session) {
    if (session.secure) throw new ImapError('BAD', 'TLS is already active');
    return { text: 'Begin TLS negotiation now', after: () => session.startTls() };
  },
});
