import { buildEnvelope } from './envelope.js';
import { headerValue, lineEnd, readHeader } from './headers.js';
import { parseStructured } from './params.js';
import type { MimeNode } from './types.js';

/**
 * The MIME tree of a message with byte offsets (RFC 2045/2046), for IMAP BODY[section] and BODYSTRUCTURE.
 *
 * - No or unparsable Content-Type: `text/plain; charset=us-ascii` (in a multipart/digest: message/rfc822).
 * - Multipart: the line break before a delimiter belongs to the delimiter; preamble and epilogue belong to
 *   no part; a missing close delimiter ends the last part at the end of the parent; a multipart without a
 *   boundary or without any delimiter line gets one synthetic text/plain part covering its body.
 * - message/rfc822 (and message/global) in 7bit/8bit/binary are parsed recursively.
 * - Depth and part count are bounded: deeper containers become opaque application/octet-stream leaves.
 * - CRLF and bare-LF line endings both work; offsets always refer to the stored bytes.
 */

export const MAX_DEPTH = 24;
export const MAX_PARTS = 2000;

interface Context {
  buf: Buffer;
  parts: number;
}

/** Body lines as IMAP counts them: line breaks, plus a final unterminated line. */
export function countLines(buf: Buffer, start: number, end: number): number {
  if (end <= start) return 0;
  let lines = 0;
  for (let i = buf.indexOf(0x0a, start); i >= 0 && i < end; i = buf.indexOf(0x0a, i + 1)) lines++;
  return buf[end - 1] === 0x0a ? lines : lines + 1;
}

function isMessageType(type: string, subtype: string): boolean {
  return type === 'message' && (subtype === 'rfc822' || subtype === 'global');
}

function splitMultipart(ctx: Context, boundary: string, start: number, end: number): { start: number; end: number }[] {
  const { buf } = ctx;
  const delimiter = Buffer.from(`--${boundary}`, 'latin1');
  const parts: { start: number; end: number }[] = [];
  let partStart = -1;
  for (let at = buf.indexOf(delimiter, start); at >= 0 && at < end; at = buf.indexOf(delimiter, at + 1)) {
    if (at !== start && buf[at - 1] !== 0x0a) continue;
    const afterDelimiter = at + delimiter.length;
    const close = buf[afterDelimiter] === 0x2d && buf[afterDelimiter + 1] === 0x2d && afterDelimiter + 1 < end;
    const stop = lineEnd(buf, at, end);
    // Only transport padding may follow the delimiter, so `--abc` does not match `--abcd`.
    const rest = buf.toString('latin1', close ? afterDelimiter + 2 : afterDelimiter, stop);
    if (!/^[ \t]*\r?\n?$/.test(rest)) continue;
    if (partStart >= 0) {
      let partEnd = at === start ? at : at - 1;
      if (partEnd > partStart && buf[partEnd - 1] === 0x0d) partEnd--;
      parts.push({ start: partStart, end: Math.max(partStart, partEnd) });
      if (ctx.parts + parts.length >= MAX_PARTS) return parts;
    }
    if (close) return parts;
    partStart = stop;
  }
  if (partStart >= 0) parts.push({ start: partStart, end });
  return parts;
}

function leaf(start: number, end: number, buf: Buffer): MimeNode {
  return {
    headerStart: start,
    bodyStart: start,
    bodyEnd: end,
    type: 'text',
    subtype: 'plain',
    params: [['charset', 'us-ascii']],
    id: null,
    description: null,
    encoding: '7bit',
    md5: null,
    disposition: null,
    language: null,
    location: null,
    lines: countLines(buf, start, end),
    children: [],
  };
}

function parseEntity(ctx: Context, start: number, end: number, depth: number, digest: boolean): MimeNode {
  const { buf } = ctx;
  ctx.parts++;
  const header = readHeader(buf, start, end);
  const fields = header.fields;
  const contentType = headerValue(fields, 'content-type');
  const parsed = contentType === null ? null : parseStructured(contentType);
  const slash = parsed?.value.indexOf('/') ?? -1;
  let type = digest ? 'message' : 'text';
  let subtype = digest ? 'rfc822' : 'plain';
  let params: [string, string][] = digest ? [] : [['charset', 'us-ascii']];
  if (parsed && slash > 0 && slash < parsed.value.length - 1 && !/[\s/]/.test(parsed.value.slice(slash + 1))) {
    type = parsed.value.slice(0, slash);
    subtype = parsed.value.slice(slash + 1);
    params = parsed.params;
  }
  const disposition = headerValue(fields, 'content-disposition');
  const dsp = disposition === null ? null : parseStructured(disposition);
  const language = headerValue(fields, 'content-language');
  const location = headerValue(fields, 'content-location');
  const encoding = (headerValue(fields, 'content-transfer-encoding') ?? '').trim().toLowerCase() || '7bit';
  const node: MimeNode = {
    headerStart: start,
    bodyStart: header.bodyStart,
    bodyEnd: end,
    type,
    subtype,
    params,
    id: headerValue(fields, 'content-id'),
    description: headerValue(fields, 'content-description'),
    encoding,
    md5: headerValue(fields, 'content-md5'),
    disposition: dsp && dsp.value ? { type: dsp.value, params: dsp.params } : null,
    language: language ? language.split(',').map((l) => l.trim()).filter(Boolean) : null,
    location: location ? location.replace(/\s+/g, '') : null,
    lines: 0,
    children: [],
  };
  const opaque = depth >= MAX_DEPTH || ctx.parts >= MAX_PARTS;
  if (type === 'multipart') {
    if (opaque) return { ...node, type: 'application', subtype: 'octet-stream', params: [] };
    const boundary = params.find(([n]) => n === 'boundary')?.[1];
    const ranges = boundary ? splitMultipart(ctx, boundary, header.bodyStart, end) : [];
    node.children =
      ranges.length > 0
        ? ranges.map((r) => parseEntity(ctx, r.start, r.end, depth + 1, subtype === 'digest'))
        : [leaf(header.bodyStart, end, buf)];
    return node;
  }
  if (isMessageType(type, subtype) && !['base64', 'quoted-printable'].includes(encoding)) {
    if (opaque) return { ...node, type: 'application', subtype: 'octet-stream' };
    const inner = parseEntity(ctx, header.bodyStart, end, depth + 1, false);
    node.children = [inner];
    node.envelope = buildEnvelope(readHeader(buf, header.bodyStart, end).fields);
  }
  if (type === 'text' || isMessageType(type, subtype)) node.lines = countLines(buf, header.bodyStart, end);
  return node;
}

/** Parses a whole message (or the `[start, end)` range holding one). */
export function parseMime(buf: Buffer, start = 0, end = buf.length): MimeNode {
  return parseEntity({ buf, parts: 0 }, start, end, 0, false);
}
