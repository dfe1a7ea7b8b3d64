import { defineCommand, NOT_AUTHENTICATED } from '../command.js';
import { loginCompletion, PRIVACY_REQUIRED } from '../login-result.js';

/** LOGIN (RFC 9051 §6.2.3): refused before TLS (LOGINDISABLED). */
export default defineCommand({
  name: 'LOGIN',
  states: NOT_AUTHENTICATED,
  parse: (args) => ({ user: args.text('user name'), password: args.text('password') }),
  async run(session, { user, password }) {
    if (!session.secure) throw PRIVACY_REQUIRED();
    const result = await session.deps.auth.login(user, password, { protocol: 'imap', remote: session.remote });
    return loginCompletion(session, result);
  },
});
