import { parseAddressList } from './address.js';
import { headerValue, type HeaderField } from './headers.js';
import type { Envelope } from './types.js';

/**
 * The IMAP ENVELOPE of a message (RFC 9051 §7.5.2) from its header fields. Values are raw (unfolded,
 * encoded words kept); Sender and Reply-To default to From when absent or empty, as the RFC requires.
 */
export function buildEnvelope(fields: readonly HeaderField[]): Envelope {
  const text = (name: string) => {
    const value = headerValue(fields, name);
    return value === null || value === '' ? null : value;
  };
  const from = parseAddressList(headerValue(fields, 'from'));
  return {
    date: text('date'),
    subject: text('subject'),
    from,
    sender: parseAddressList(headerValue(fields, 'sender')) ?? from,
    replyTo: parseAddressList(headerValue(fields, 'reply-to')) ?? from,
    to: parseAddressList(headerValue(fields, 'to')),
    cc: parseAddressList(headerValue(fields, 'cc')),
    bcc: parseAddressList(headerValue(fields, 'bcc')),
    inReplyTo: text('in-reply-to'),
    messageId: text('message-id'),
  };
}
