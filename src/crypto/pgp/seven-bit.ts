import { readHeader } from '../../mime/headers.js';
import { MAX_DEPTH, MAX_PARTS, parseMime } from '../../mime/structure.js';
import type { MimeNode } from '../../mime/types.js';
import { toCrlf } from './canonical.js';
import { fail, ok, type PgpResult } from './failures.js';
import { encodeBase64Lines, encodeQuotedPrintable } from './transfer-encoding.js';

/**
 * Prepares a MIME entity for signing (RFC 3156 §3 and §5): every leaf body that a mail transport could
 * alter is re-encoded — 8-bit or NUL bytes, bare CR, lines over 998 bytes, trailing white space, lines
 * starting with `From ` — text as quoted-printable, anything else as base64; containers labelled 8bit or
 * binary are relabelled 7bit; then line endings become CRLF. Parts already in base64 or quoted-printable
 * and parts that need nothing are copied byte for byte.
 */

const IDENTITY = new Set(['7bit', '8bit', 'binary']);
const CRLF = Buffer.from('\r\n', 'latin1');
const MAX_LINE = 998;

/** Whether an identity-encoded body would not survive transport unchanged. */
export function needsEncoding(buf: Buffer, start: number, end: number): boolean {
  let lineStart = start;
  for (let i = start; i < end; i++) {
    const byte = buf[i]!;
    if (byte >= 0x80 || byte === 0) return true;
    if (byte === 0x0d && buf[i + 1] !== 0x0a) return true;
    if (byte === 0x0a) {
      const contentEnd = i > lineStart && buf[i - 1] === 0x0d ? i - 1 : i;
      if (lineIsUnsafe(buf, lineStart, contentEnd)) return true;
      lineStart = i + 1;
    }
  }
  return lineIsUnsafe(buf, lineStart, end);
}

function lineIsUnsafe(buf: Buffer, start: number, end: number): boolean {
  if (end - start > MAX_LINE) return true;
  if (end > start && (buf[end - 1] === 0x20 || buf[end - 1] === 0x09)) return true;
  return end - start >= 5 && buf.toString('latin1', start, start + 5) === 'From ';
}

/** The header of a node with its Content-Transfer-Encoding field(s) replaced by one with `encoding`. */
function rewriteEncoding(buf: Buffer, node: MimeNode, encoding: string): Buffer {
  const header = readHeader(buf, node.headerStart, node.bodyEnd);
  const pieces: Buffer[] = [];
  let pos = node.headerStart;
  for (const field of header.fields) {
    if (field.name !== 'content-transfer-encoding') continue;
    pieces.push(buf.subarray(pos, field.start));
    pos = field.end;
  }
  // The empty line ending the header, if there is one: the last line break(s) before the body.
  const b = header.bodyStart;
  let blankStart = b;
  if (b > node.headerStart && buf[b - 1] === 0x0a) {
    if (b - 2 >= node.headerStart && buf[b - 2] === 0x0d && (b - 2 === node.headerStart || buf[b - 3] === 0x0a)) blankStart = b - 2;
    else if (b - 1 === node.headerStart || buf[b - 2] === 0x0a) blankStart = b - 1;
  }
  blankStart = Math.max(blankStart, pos);
  pieces.push(buf.subarray(pos, blankStart));
  if (blankStart > node.headerStart && buf[blankStart - 1] !== 0x0a) pieces.push(CRLF);
  pieces.push(Buffer.from(`Content-Transfer-Encoding: ${encoding}\r\n`, 'latin1'));
  pieces.push(blankStart < b ? buf.subarray(blankStart, b) : CRLF);
  return Buffer.concat(pieces);
}

interface Walk {
  buf: Buffer;
  parts: number;
  failure: string | null;
}

function emit(walk: Walk, node: MimeNode, depth: number): Buffer[] {
  const { buf } = walk;
  walk.parts++;
  if (depth >= MAX_DEPTH - 1 || walk.parts >= MAX_PARTS - 1) {
    walk.failure = 'MIME structure too deep or too many parts to sign safely';
    return [];
  }
  const synthetic = node.children.length === 1 && node.children[0]!.headerStart === node.children[0]!.bodyStart && node.type === 'multipart';
  if (node.children.length > 0 && !synthetic) {
    const out: Buffer[] = [];
    const relabel = node.encoding === '8bit' || node.encoding === 'binary';
    out.push(relabel ? rewriteEncoding(buf, node, '7bit') : buf.subarray(node.headerStart, node.bodyStart));
    let pos = node.bodyStart;
    for (const child of node.children) {
      out.push(buf.subarray(pos, child.headerStart), ...emit(walk, child, depth + 1));
      pos = child.bodyEnd;
    }
    out.push(buf.subarray(pos, node.bodyEnd));
    return out;
  }
  if (synthetic) {
    // A multipart without usable delimiters: nothing safe to rewrite inside it.
    if (node.encoding === 'binary' || needsEncoding(buf, node.bodyStart, node.bodyEnd)) {
      walk.failure = 'multipart without boundary delimiters holds content that cannot be sent in 7 bits';
      return [];
    }
    return [buf.subarray(node.headerStart, node.bodyEnd)];
  }
  const body = buf.subarray(node.bodyStart, node.bodyEnd);
  if (!IDENTITY.has(node.encoding) || (node.encoding !== 'binary' && !needsEncoding(buf, node.bodyStart, node.bodyEnd))) {
    return [buf.subarray(node.headerStart, node.bodyEnd)];
  }
  if (node.type === 'message' || node.type === 'multipart') {
    walk.failure = `${node.type}/${node.subtype} part cannot be re-encoded`;
    return [];
  }
  const text = node.type === 'text' && node.encoding !== 'binary';
  return text
    ? [rewriteEncoding(buf, node, 'quoted-printable'), encodeQuotedPrintable(body)]
    : [rewriteEncoding(buf, node, 'base64'), encodeBase64Lines(body)];
}

/** The entity made transport-safe and CRLF-canonical: the exact bytes to sign or encrypt (RFC 3156 §4, §5). */
export function canonicalEntity(entity: Buffer): PgpResult<Buffer> {
  const walk: Walk = { buf: entity, parts: 0, failure: null };
  const pieces = emit(walk, parseMime(entity), 0);
  if (walk.failure) return fail('malformed', walk.failure);
  return ok(toCrlf(Buffer.concat(pieces)));
}
