import { randomBytes } from 'node:crypto';
import { encodeWords, foldLines } from 'nodemailer/lib/mime-funcs';
import { encode as qpEncode, wrap as qpWrap } from 'nodemailer/lib/qp';
import { parseAddressList } from './address.js';
import { decodeWords } from './encoded-words.js';
import { headerValue, readHeader, type HeaderField } from './headers.js';
import { paramValue } from './params.js';
import { parseMime } from './structure.js';
import type { MimeNode } from './types.js';

/**
 * What MDNs (RFC 8098) and DSNs (RFC 3464) share: the `multipart/report` container (RFC 6522), its
 * human-readable part, the machine-readable field blocks and the returned original; and, for reading one,
 * finding the report in a message and splitting its field groups. Output is CRLF throughout.
 */

const CRLF = '\r\n';

/** One header field value on one line: line breaks and other control characters become spaces. */
export function oneLine(value: string): string {
  return value.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
}

/**
 * A field of a machine-readable block (message/disposition-notification, message/delivery-status), which is
 * US-ASCII: accents are dropped (é → e) and any other non-ASCII character becomes `?`. The human-readable
 * part carries the exact text.
 */
export function asciiField(value: string): string {
  return oneLine(value)
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^\x20-\x7e]/g, '?');
}

/** `Name: value`, folded at 76 columns; a value with non-ASCII text gets RFC 2047 encoded words. */
export function headerLine(name: string, value: string): string {
  const text = oneLine(value);
  const encoded = /^[\x20-\x7e]*$/.test(text) ? text : encodeWords(text, 'Q', 52);
  return foldLines(`${name}: ${encoded}`, 76);
}

/** RFC 5322 date-time in UTC, e.g. `Tue, 20 Feb 2024 00:19:00 +0000`. */
export function mailDate(date: Date): string {
  return date.toUTCString().replace(/GMT$/, '+0000');
}

/** A new, unique Message-ID in angle brackets. */
export function newMessageId(domain: string): string {
  return `<${Date.now().toString(36)}.${randomBytes(9).toString('hex')}@${domain}>`;
}

/** A bare address (`local@domain`) checked for what a header may carry. */
export function bareAddress(address: string, what: string): string {
  const a = address.trim().replace(/^<(.*)>$/, '$1');
  if (!/^[^\s<>()",;:@]+@[^\s<>()",;:@]+$/.test(a)) throw new RangeError(`${what}: not a usable address: ${JSON.stringify(address)}`);
  return a;
}

export interface ReportPart {
  /** Full Content-Type value, e.g. `message/disposition-notification`. */
  contentType: string;
  /** Other header fields of the part (already encoded). */
  headers?: [string, string][];
  body: Buffer;
}

/** A text/plain UTF-8 part in quoted-printable (7-bit safe, so the report can be signed as it is). */
export function textPart(text: string): ReportPart {
  const normalised = text.replace(/\r?\n/g, CRLF);
  return {
    contentType: 'text/plain; charset=utf-8',
    headers: [['Content-Transfer-Encoding', 'quoted-printable']],
    body: Buffer.from(qpWrap(qpEncode(normalised), 76), 'latin1'),
  };
}

/** A machine-readable block: groups of `Name: value` fields, a blank line between groups. */
export function fieldsPart(contentType: string, groups: readonly (readonly [string, string | null | undefined][])[]): ReportPart {
  const text = groups
    .map((group) =>
      group
        .filter((f): f is [string, string] => typeof f[1] === 'string')
        .map(([name, value]) => (value === '' ? `${name}:` : foldLines(`${name}: ${asciiField(value)}`, 76)) + CRLF)
        .join(''),
    )
    .filter((g) => g.length > 0)
    .join(CRLF);
  return { contentType, body: Buffer.from(text, 'latin1') };
}

/** Bare LF line ends (not part of a CRLF) become CRLF, so the whole report has one line ending. */
export function toCrlf(buf: Buffer): Buffer {
  if (!buf.includes(0x0a)) return buf;
  const out: number[] = [];
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i]!;
    if (b === 0x0a && (i === 0 || buf[i - 1] !== 0x0d)) out.push(0x0d);
    out.push(b);
  }
  return Buffer.from(out);
}

/** The identity transfer encoding bytes need inside a message/* or text/rfc822-headers part. */
function identityEncoding(body: Buffer): '7bit' | '8bit' | 'binary' {
  let eightBit = false;
  let lineLength = 0;
  for (const b of body) {
    if (b === 0) return 'binary';
    if (b === 0x0a) {
      lineLength = 0;
      continue;
    }
    if (++lineLength > 998) return 'binary';
    if (b >= 0x80) eightBit = true;
  }
  return eightBit ? '8bit' : '7bit';
}

export type ReturnContent = 'full' | 'headers';

/** Where the header block of a message ends (after its blank line), or its whole length when there is none. */
export function headerEnd(raw: Buffer): number {
  return readHeader(raw, 0, raw.length).bodyStart;
}

/**
 * The original message returned in a report: whole as message/rfc822, or its header block alone as
 * text/rfc822-headers (RFC 6522 §4). Never re-encoded (RFC 2046 §5.2.1): 8-bit content is declared as such.
 */
export function originalPart(raw: Buffer, content: ReturnContent): ReportPart {
  const normalised = toCrlf(raw);
  const body = content === 'full' ? normalised : normalised.subarray(0, headerEnd(normalised));
  const encoding = identityEncoding(body);
  return {
    contentType: content === 'full' ? 'message/rfc822' : 'text/rfc822-headers',
    headers: encoding === '7bit' ? [] : [['Content-Transfer-Encoding', encoding]],
    body,
  };
}

/**
 * A whole `multipart/report` message: `headers` (already encoded lines' names and values) first, then
 * MIME-Version and the Content-Type with `report-type`, then the parts in order.
 */
export function buildReportMessage(headers: readonly [string, string][], reportType: string, parts: readonly ReportPart[]): Buffer {
  let boundary: string;
  do boundary = `=_mss_report_${randomBytes(12).toString('hex')}`;
  while (parts.some((p) => p.body.includes(boundary)));
  const head =
    headers.map(([name, value]) => headerLine(name, value) + CRLF).join('') +
    `MIME-Version: 1.0${CRLF}` +
    `Content-Type: multipart/report; report-type=${reportType};${CRLF} boundary="${boundary}"${CRLF}${CRLF}`;
  const chunks: Buffer[] = [Buffer.from(head + `This is a MIME-formatted message (${reportType}).${CRLF}`, 'latin1')];
  for (const part of parts) {
    const partHead = [`Content-Type: ${part.contentType}`, ...(part.headers ?? []).map(([n, v]) => `${n}: ${v}`)].join(CRLF);
    chunks.push(Buffer.from(`${CRLF}--${boundary}${CRLF}${partHead}${CRLF}${CRLF}`, 'latin1'), part.body);
  }
  chunks.push(Buffer.from(`${CRLF}--${boundary}--${CRLF}`, 'latin1'));
  return Buffer.concat(chunks);
}

// ---------------------------------------------------------------------------------------------------------
// Reading

/** A report that cannot be read (not a multipart/report of the expected type, or its machine part is missing). */
export class ReportParseError extends Error {}

export interface FoundReport {
  /** The multipart/report entity. */
  report: MimeNode;
  /** Its header fields (Subject, From, To, Message-ID of the report message itself). */
  fields: HeaderField[];
  /** The machine-readable part (message/disposition-notification or message/delivery-status). */
  machine: MimeNode;
  /** The returned original (message/rfc822, text/rfc822-headers or message/global-headers), when there is one. */
  original: MimeNode | null;
}

/**
 * The first `multipart/report; report-type=<reportType>` in the message, depth first (a report wrapped in
 * message/rfc822 or in multipart/signed by a security agent is found too).
 */
export function findReport(raw: Buffer, reportType: string, machineSubtypes: readonly string[]): FoundReport {
  const root = parseMime(raw);
  const search = (node: MimeNode, fields: HeaderField[]): FoundReport | null => {
    if (node.type === 'multipart' && node.subtype === 'report' && paramValue(node.params, 'report-type')?.toLowerCase() === reportType) {
      const machine = node.children.find((c) => c.type === 'message' && machineSubtypes.includes(c.subtype));
      if (!machine) throw new ReportParseError(`multipart/report without a message/${machineSubtypes[0]} part`);
      const after = node.children.slice(node.children.indexOf(machine) + 1);
      const original =
        after.find(
          (c) =>
            (c.type === 'message' && (c.subtype === 'rfc822' || c.subtype === 'global' || c.subtype === 'global-headers')) ||
            (c.type === 'text' && c.subtype === 'rfc822-headers'),
        ) ?? null;
      return { report: node, fields, machine, original };
    }
    for (const child of node.children) {
      const childFields = node.type === 'message' ? readHeader(raw, child.headerStart, child.bodyEnd).fields : fields;
      const found = search(child, childFields);
      if (found) return found;
    }
    return null;
  };
  const found = search(root, readHeader(raw, 0, raw.length).fields);
  if (!found) throw new ReportParseError(`not a multipart/report; report-type=${reportType}`);
  return found;
}

/** The groups of fields of a machine-readable block, in order; blank lines separate groups. */
export function fieldGroups(raw: Buffer, node: MimeNode): HeaderField[][] {
  const groups: HeaderField[][] = [];
  let pos = node.bodyStart;
  while (pos < node.bodyEnd) {
    while (pos < node.bodyEnd && (raw[pos] === 0x0d || raw[pos] === 0x0a || raw[pos] === 0x20 || raw[pos] === 0x09)) pos++;
    if (pos >= node.bodyEnd) break;
    const block = readHeader(raw, pos, node.bodyEnd);
    if (block.fields.length > 0) groups.push(block.fields);
    if (block.bodyStart <= pos) break;
    pos = block.bodyStart;
  }
  return groups;
}

/** `rfc822; a@b` → { type: 'rfc822', value: 'a@b' }; a value without a type (seen in the wild) is taken as rfc822. */
export function typedValue(value: string): { type: string; value: string } {
  const semi = value.indexOf(';');
  if (semi < 0) return { type: 'rfc822', value: value.trim().replace(/^<(.*)>$/, '$1') };
  return { type: value.slice(0, semi).trim().toLowerCase(), value: value.slice(semi + 1).trim().replace(/^<(.*)>$/, '$1') };
}

/** The outer message's fields a tracker needs. */
export interface ReportEnvelope {
  messageId: string | null;
  subject: string | null;
  from: string | null;
  to: string[];
  inReplyTo: string | null;
  date: string | null;
}

export function reportEnvelope(fields: readonly HeaderField[]): ReportEnvelope {
  const addresses = (name: string) =>
    (parseAddressList(headerValue(fields, name)) ?? []).filter((a) => a.mailbox && a.host).map((a) => `${a.mailbox}@${a.host}`);
  const subject = headerValue(fields, 'subject');
  return {
    messageId: headerValue(fields, 'message-id'),
    subject: subject === null ? null : decodeWords(subject),
    from: addresses('from')[0] ?? null,
    to: addresses('to'),
    inReplyTo: headerValue(fields, 'in-reply-to'),
    date: headerValue(fields, 'date'),
  };
}

/** A header field of the returned original (its Message-ID, its Subject), whole or headers only. */
export function originalHeader(raw: Buffer, original: MimeNode | null, name: string): string | null {
  if (!original) return null;
  return headerValue(readHeader(raw, original.bodyStart, original.bodyEnd).fields, name);
}
