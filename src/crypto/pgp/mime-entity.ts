import { readHeader, type HeaderField } from '../../mime/headers.js';
import { toCrlf } from './canonical.js';

/**
 * A message seen as RFC 3156 sees it: outer header fields that route and describe the message, and one MIME
 * entity (the Content-* fields and the body) that gets signed or encrypted.
 */

export interface RawField {
  /** Lower-case field name. */
  name: string;
  /** Unfolded value. */
  value: string;
  /** The field's bytes, folding kept, CRLF line endings. */
  raw: Buffer;
}

export interface SplitMessage {
  /** Every field except Content-* and MIME-Version, in order. */
  outer: RawField[];
  /** Content-* fields, then the empty line, then the body: a MIME entity (RFC 2045 §2.4). */
  entity: Buffer;
}

const CRLF = Buffer.from('\r\n', 'latin1');
const DEFAULT_CONTENT_TYPE = Buffer.from('Content-Type: text/plain; charset=us-ascii\r\n', 'latin1');

export function isContentField(name: string): boolean {
  return name.startsWith('content-');
}

function rawField(buf: Buffer, field: HeaderField): RawField {
  let raw = toCrlf(buf.subarray(field.start, field.end));
  if (raw.length < 2 || raw[raw.length - 1] !== 0x0a) raw = Buffer.concat([raw, CRLF]);
  return { name: field.name, value: field.value, raw };
}

/** The parsed header fields of an entity or message (for reading values). */
export function headerFields(buf: Buffer): HeaderField[] {
  return readHeader(buf, 0, buf.length).fields;
}

/**
 * Splits a message into outer fields and its MIME entity. A message without Content-Type gets the RFC 2045
 * default written out, so the entity stays self-describing once it is moved inside a container.
 */
export function splitMessage(raw: Buffer): SplitMessage {
  const header = readHeader(raw, 0, raw.length);
  const outer: RawField[] = [];
  const content: Buffer[] = [];
  for (const field of header.fields) {
    if (isContentField(field.name)) content.push(rawField(raw, field).raw);
    else if (field.name !== 'mime-version') outer.push(rawField(raw, field));
  }
  if (!header.fields.some((f) => f.name === 'content-type')) content.unshift(DEFAULT_CONTENT_TYPE);
  return { outer, entity: Buffer.concat([...content, CRLF, raw.subarray(header.bodyStart)]) };
}

/** A new outer message: the kept fields, MIME-Version, the container's Content-Type, then its body. */
export function assembleMessage(outer: readonly RawField[], contentType: string, body: Buffer): Buffer {
  return Buffer.concat([
    ...outer.map((f) => f.raw),
    Buffer.from(`MIME-Version: 1.0\r\nContent-Type: ${contentType}\r\n\r\n`, 'latin1'),
    body,
  ]);
}

/**
 * Header fields a sender may protect by putting them inside the signed or encrypted entity (RFC 9788
 * header protection): when the entity carries one, it replaces the outer copy.
 */
const PROTECTED_FIELDS = new Set([
  'from',
  'sender',
  'reply-to',
  'to',
  'cc',
  'subject',
  'date',
  'message-id',
  'in-reply-to',
  'references',
  'keywords',
  'comments',
]);

/**
 * The message a recipient reads: the outer fields (minus those the entity protects), MIME-Version, then the
 * entity (its own header fields, empty line and body) as it was signed or decrypted.
 */
export function recombine(outer: readonly RawField[], entity: Buffer): Buffer {
  const names = headerFields(entity).map((f) => f.name);
  const kept = outer.filter((f) => !(PROTECTED_FIELDS.has(f.name) && names.includes(f.name)));
  const version = names.includes('mime-version') ? [] : [Buffer.from('MIME-Version: 1.0\r\n', 'latin1')];
  return Buffer.concat([...kept.map((f) => f.raw), ...version, entity]);
}
