import { decodeWords } from './encoded-words.js';
import { buildEnvelope } from './envelope.js';
import { headerValue, readHeader } from './headers.js';
import { parseMime } from './structure.js';
import type { MessageMeta } from './types.js';

/** At most this many References ids are kept for threading (the newest ones). */
export const MAX_REFERENCES = 100;

const MSG_ID = /<[^<>\s]+>/g;

function messageIds(value: string | null): string[] {
  return value === null ? [] : [...value.matchAll(MSG_ID)].map((m) => m[0]);
}

/** Everything derived from a message's bytes that the store keeps (sealed) beside it. Pure. */
export function buildMessageMeta(raw: Buffer): MessageMeta {
  const { fields } = readHeader(raw, 0, raw.length);
  const messageId = headerValue(fields, 'message-id');
  const subject = headerValue(fields, 'subject');
  return {
    version: 1,
    envelope: buildEnvelope(fields),
    mime: parseMime(raw),
    thread: {
      messageId: messageIds(messageId)[0] ?? (messageId || null),
      inReplyTo: messageIds(headerValue(fields, 'in-reply-to'))[0] ?? null,
      references: messageIds(headerValue(fields, 'references')).slice(-MAX_REFERENCES),
      subject: subject === null ? null : decodeWords(subject),
    },
  };
}
