import { buildMessageMeta } from '../mime/meta.js';
import type { MessageMeta } from '../mime/types.js';
import { Refusal } from './refusal.js';

/** Upper bound on the header block: a message whose header alone is larger is refused, not parsed. */
export const MAX_HEADER_BYTES = 1024 * 1024;

/** Parses the message structure once; every later stage and the store reuse the result. */
export function parseMessage(raw: Buffer): MessageMeta {
  const headerEnd = findHeaderEnd(raw);
  if (headerEnd < 0) throw new Refusal('malformed-message', 'no header/body separator within the header size limit');
  let meta: MessageMeta;
  try {
    meta = buildMessageMeta(raw);
  } catch {
    // The parser's own message may quote the input; the refusal must not carry content.
    throw new Refusal('malformed-message', 'MIME structure could not be parsed');
  }
  if (!meta.envelope.from || meta.envelope.from.length === 0) throw new Refusal('malformed-message', 'no From header');
  return meta;
}

/** Offset of the blank line ending the header (a message may also be header-only, ending at EOF). */
function findHeaderEnd(raw: Buffer): number {
  const limit = Math.min(raw.length, MAX_HEADER_BYTES);
  const crlf = raw.subarray(0, limit + 4).indexOf('\r\n\r\n');
  if (crlf >= 0) return crlf;
  const lf = raw.subarray(0, limit + 2).indexOf('\n\n');
  if (lf >= 0) return lf;
  return raw.length <= MAX_HEADER_BYTES ? raw.length : -1;
}
