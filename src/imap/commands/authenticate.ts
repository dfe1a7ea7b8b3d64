import { defineCommand, ImapError, NOT_AUTHENTICATED, type Completion, type SessionApi } from '../command.js';
import { loginCompletion, PRIVACY_REQUIRED } from '../login-result.js';

/**
 * AUTHENTICATE (RFC 9051 §6.2.2) with PLAIN (RFC 4616) or EXTERNAL (RFC 4422 appendix A: the TLS client
 * certificate), the initial response on the command line (SASL-IR, RFC 4959) or after an empty "+" challenge.
 * Refused before TLS. `*` cancels.
 */

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function decodeBase64(response: string): Buffer {
  if (!BASE64.test(response)) throw new ImapError('BAD', 'Invalid base64 in SASL response');
  return Buffer.from(response, 'base64');
}

function decodePlain(response: string): { authzid: string; authcid: string; password: string } {
  const parts = decodeBase64(response).toString('utf8').split('\0');
  if (parts.length !== 3 || !parts[1]) throw new ImapError('BAD', 'Malformed PLAIN response');
  return { authzid: parts[0]!, authcid: parts[1], password: parts[2]! };
}

/** EXTERNAL: the certificate must be trusted and be the `auth` credential of the mailbox it names. */
async function external(session: SessionApi, response: string): Promise<Completion> {
  const authzid = decodeBase64(response).toString('utf8');
  if (authzid.includes('\0')) throw new ImapError('BAD', 'Malformed EXTERNAL response');
  const certificate = session.clientCertificate;
  const certificates = session.deps.clientAuth?.certificates;
  if (!certificate || !certificates) {
    session.loginFailed();
    throw new ImapError('NO', 'No client certificate was presented', 'AUTHENTICATIONFAILED');
  }
  const result = await certificates.login(certificate, authzid, { protocol: 'imap', remote: session.remote });
  if (result.ok) return loginCompletion(session, result);
  if (result.reason === 'disabled') return loginCompletion(session, { ok: false, reason: 'disabled' });
  session.loginFailed();
  switch (result.reason) {
    case 'untrusted':
      throw new ImapError('NO', 'The client certificate is not trusted', 'AUTHENTICATIONFAILED');
    case 'authorization':
      throw new ImapError('NO', 'The client certificate does not name this mailbox', 'AUTHORIZATIONFAILED');
    case 'unknown-certificate':
      throw new ImapError('NO', 'The client certificate is not a valid authentication certificate of a mailbox', 'AUTHENTICATIONFAILED');
  }
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
    if (mechanism !== 'PLAIN' && !(mechanism === 'EXTERNAL' && session.deps.clientAuth)) {
      throw new ImapError('NO', 'Unsupported authentication mechanism', 'CANNOT');
    }
    let response = initial === '=' ? '' : initial;
    if (response === null) {
      const line = await session.readLine('');
      if (line === null) throw new ImapError('BAD', 'SASL response too long');
      response = line.toString('latin1');
    }
    if (response === '*') throw new ImapError('BAD', 'Authentication cancelled');
    if (mechanism === 'EXTERNAL') return external(session, response);
    const { authzid, authcid, password } = decodePlain(response);
    if (authzid && authzid.toLowerCase() !== authcid.toLowerCase()) {
      throw new ImapError('NO', 'Acting as another user is not allowed', 'AUTHORIZATIONFAILED');
    }
    const result = await session.deps.auth.login(authcid, password, { protocol: 'imap', remote: session.remote });
    return loginCompletion(session, result);
  },
});
