import type { EnvelopeAddress, MessageMeta } from '../mime/types.js';
import type { MailboxRow } from '../store/types.js';
import { Refusal } from './refusal.js';

function addressOf(a: EnvelopeAddress): string | null {
  return a.mailbox && a.host ? `${a.mailbox}@${a.host}`.toLowerCase() : null;
}

/**
 * The envelope sender (MAIL FROM) must be the authenticated mailbox's own address. Only professionals write
 * first: a patient mailbox never submits by SMTP (its replies come through the webmail, under the reply rules of
 * src/policy/patient-threads.ts).
 */
export function checkEnvelopeSender(sender: MailboxRow, mailFrom: string, channel: 'submission' | 'webmail' = 'submission'): void {
  if (sender.type === 'PATIENT' && channel !== 'webmail') throw new Refusal('patient-may-not-initiate');
  if (mailFrom.trim().toLowerCase() !== sender.address) {
    throw new Refusal('sender-not-owned', 'MAIL FROM differs from the authenticated mailbox');
  }
}

/**
 * The author the message claims (From, and Sender when present) must be the authenticated mailbox: a
 * clinician cannot write in a colleague's name.
 */
export function checkHeaderSender(sender: MailboxRow, meta: MessageMeta): void {
  const from = meta.envelope.from ?? [];
  const authors = from.map(addressOf);
  if (authors.length !== 1 || authors[0] !== sender.address) {
    throw new Refusal('sender-not-owned', 'From header is not the authenticated mailbox');
  }
  const senderHeader = (meta.envelope.sender ?? []).map(addressOf);
  // IMAP ENVELOPE repeats From as Sender when there is no Sender header, so equality is the normal case.
  if (senderHeader.some((a) => a !== sender.address)) {
    throw new Refusal('sender-not-owned', 'Sender header is not the authenticated mailbox');
  }
}
