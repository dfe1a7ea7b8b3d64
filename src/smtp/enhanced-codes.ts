import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

/**
 * smtp-server derives the enhanced status code (RFC 3463) from the basic reply code alone, so a `550` is
 * always `5.1.1`. Our refusals know their precise code (`5.7.1` for a sender who does not own the From
 * address): when a reply text already starts with one, smtp-server must not prepend its own.
 * See docs/decisions/0003-smtp-enhanced-status-codes.md.
 */
const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;
type Send = (code: number, data: unknown, context?: unknown) => void;
const proto = SMTPConnection.prototype as unknown as { send: Send; __mssPatched?: boolean };

if (!proto.__mssPatched) {
  const original = proto.send;
  proto.send = function send(this: unknown, code: number, data: unknown, context?: unknown) {
    const own = typeof data === 'string' && ENHANCED.test(data);
    original.call(this, code, data, own ? false : context);
  };
  proto.__mssPatched = true;
}
