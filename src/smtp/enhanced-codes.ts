import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

/**
 * Two adjustments to smtp-server's replies (see docs/decisions/0003-smtp-server-adjustments.md):
 *
 * 1. smtp-server derives the enhanced status code (RFC 3463) from the basic reply code alone, so a `550` is
 *    always `5.1.1`. Our refusals know their precise code (`5.7.1` for a sender who does not own the From
 *    address): when a reply text already starts with one, smtp-server must not prepend its own.
 * 2. smtp-server advertises AUTH in the EHLO reply before STARTTLS even when it refuses AUTH there. RFC 4954
 *    §4 and the house rule "no AUTH before TLS": a cleartext session is not offered AUTH at all.
 */
const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;
type Send = (code: number, data: unknown, context?: unknown) => void;
interface Connection {
  secure: boolean;
  _server: { options: { allowInsecureAuth?: boolean } };
}
const proto = SMTPConnection.prototype as unknown as { send: Send; __mssPatched?: boolean };

if (!proto.__mssPatched) {
  const original = proto.send;
  proto.send = function send(this: Connection, code: number, data: unknown, context?: unknown) {
    if (Array.isArray(data) && code === 250 && !this.secure && !this._server.options.allowInsecureAuth) {
      data = data.filter((line: unknown) => !(typeof line === 'string' && /^AUTH\b/i.test(line)));
    }
    const own = typeof data === 'string' && ENHANCED.test(data);
    original.call(this, code, data, own ? false : context);
  };
  proto.__mssPatched = true;
}
