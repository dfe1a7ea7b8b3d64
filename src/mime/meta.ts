import { decodeWords } from './encoded-words.js';
import { buildEnvelope } from './envelope.js';
import { headerValue, readHeader, type HeaderField } from './headers.js';
import { parseMime } from './structure.js';
import { SEARCH_HEADER_LIMIT, SEARCH_HEADER_NAMES, type MessageMeta, type SearchHeaderName } from './types.js';

/** At most this many References ids are kept for threading (the newest ones). */
export const MAX_REFERENCES = 100;

const MSG_ID = /<[^<>\s]+>/g;

function messageIds(value: string | null): string[] {
  return value === null ? [] : [...value.matchAll(MSG_ID)].map((m) => m[0]);
}

function searchHeaders(fields: readonly HeaderField[]): Partial<Record<SearchHeaderName, string[]>> {
  const out: Partial<Record<SearchHeaderName, string[]>> = {};
  for (const name of SEARCH_HEADER_NAMES) {
    const values = fields.filter((f) => f.name === name).map((f) => decodeWords(f.value));
    if (values.reduce((n, v) => n + v.length, 0) <= SEARCH_HEADER_LIMIT) out[name] = values;
  }
  return out;
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
    searchHeaders: searchHeaders(fields),
  };
}
