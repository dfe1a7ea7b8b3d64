import type { Refusal } from '../pipeline/refusal.js';

/** What an smtp-server callback is given to answer with a reply code and text. */
export type SmtpError = Error & { responseCode?: number };

export function smtpError(code: number, text: string): SmtpError {
  return Object.assign(new Error(text), { responseCode: code });
}

/** The SMTP answer of a pipeline refusal (its code, enhanced status code and text). */
export function refusalError(refusal: Refusal): SmtpError {
  return smtpError(refusal.smtpCode, refusal.smtpText);
}
