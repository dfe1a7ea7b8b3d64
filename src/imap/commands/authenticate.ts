import { defineCommand, ImapError, NOT_AUTHENTICATED } from '../command.js';
import { loginCompletion, PRIVACY_REQUIRED } from '../login-result.js';

/**
 * AUTHENTICATE PLAIN (RFC 9051 §6.2.2, RFC 4616), with the initial response on the command line (SASL-IR,
 * RFC 4959) or after an empty "+" challenge. Refused before TLS. `*` cancels.
 */

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function decodePlain(response: string): { authzid: string; authcid: string; password: string } {
  if (!BASE64.test(response)) throw new ImapError('BAD', 'Invalid base64 in SASL response');
  const parts = Buffer.from(response, 'base64').toString('utf8').split('\0');
  if (parts.length !== 3 || !parts[1]) throw new ImapError('BAD', 'Malformed PLAIN response');
  return { authzid: parts[0]!, authcid: parts[1], password: parts[2]! };
}

export default defineCommand({
  name: 'AUTHENTICATE',
  states: NOT_AUTHENTICATED,
  parse: (args) => {
    const mechanism = args.atom('mechanism').toUpperCase();
    const initial = args.remaining > 0 ? args.text('initial response') : null;
    return { mechanism, initial };
  },
  async run(session, { mechanism, initial }) {
    if (!session.secure) throw PRIVACY_REQUIRED();
    if (mechanism !== 'PLAIN') throw new ImapError('NO', 'Unsupported authentication mechanism', 'CANNOT');
    let response = initial === '=' ? '' : initial;
    if (response === null) {
      const line = await session.readLine('');
      if (line === null) throw new ImapError('BAD', 'SASL response too long');
      response = line.toString('latin1');
    }
    if (response === '*') throw new ImapError('BAD', 'Authentication cancelled');
    const { authzid, authcid, password } = decodePlain(response);
    if (authzid && authzid.toLowerCase() !== authcid.toLowerCase()) {
      throw new ImapError('NO', 'Acting as another user is not allowed', 'AUTHORIZATIONFAILED');
    }
    const result = await session.deps.auth.login(authcid, password, { protocol: 'imap', remote: session.remote });
    return loginCompletion(session, result);
  },
});
