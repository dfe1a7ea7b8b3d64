import type { LoginResult } from '../accounts/authenticator.js';
import { ImapError, type Completion, type SessionApi } from './command.js';

/** Maps an Authenticator result to the IMAP answer shared by LOGIN and AUTHENTICATE (RFC 5530 codes). */
export function loginCompletion(session: SessionApi, result: LoginResult): Completion {
  if (result.ok) {
    session.authenticated(result.mailbox);
    return { code: `CAPABILITY ${session.capabilities().join(' ')}`, text: 'Logged in' };
  }
  if (result.reason !== 'disabled') session.loginFailed();
  switch (result.reason) {
    case 'bad-credentials':
      throw new ImapError('NO', 'Invalid credentials', 'AUTHENTICATIONFAILED');
    case 'locked':
      throw new ImapError('NO', 'Too many failed logins; try again later', 'UNAVAILABLE');
    case 'disabled':
      throw new ImapError('NO', 'This mailbox is disabled', 'CONTACTADMIN');
  }
}

export const PRIVACY_REQUIRED = () => new ImapError('NO', 'Use STARTTLS or the TLS port before logging in', 'PRIVACYREQUIRED');
