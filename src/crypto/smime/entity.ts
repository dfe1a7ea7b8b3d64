/**
 * MIME entities of S/MIME (RFC 8551, RFC 1847): building multipart/signed and application/pkcs7-mime
 * entities, the Direct message/rfc822 wrapper (RFC 8551 §3.1), and taking received ones apart by byte offsets.
 */
import { randomBytes } from 'node:crypto';
import { headerValue, type HeaderField, lineEnd, readHeader } from '../../mime/headers.js';
import { parseStructured } from '../../mime/params.js';
import { malformed } from '../cms/failure.js';
import { base64Lines, canonicalize, decodeBase64 } from './canonical.js';

const CRLF = Buffer.from('\r\n', 'latin1');

export type SmimeType = 'enveloped-data' | 'authEnveloped-data' | 'signed-data';

export interface Entity {
  buf: Buffer;
  fields: HeaderField[];
  bodyStart: number;
  /** Lower-case `type/subtype`; text/plain when absent. */
  mediaType: string;
  params: [string, string][];
  /** Lower-case Content-Transfer-Encoding, default 7bit. */
  encoding: string;
}

export function readEntity(buf: Buffer): Entity {
  const { fields, bodyStart } = readHeader(buf, 0, buf.length);
  const ct = headerValue(fields, 'content-type');
  const parsed = ct === null ? null : parseStructured(ct);
  const valid = parsed && /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(parsed.value);
  return {
    buf,
    fields,
    bodyStart,
    mediaType: valid ? parsed.value : 'text/plain',
    params: valid ? parsed.params : [],
    encoding: (headerValue(fields, 'content-transfer-encoding') ?? '7bit').trim().toLowerCase(),
  };
}

export function param(entity: Entity, name: string): string | null {
  return entity.params.find(([n]) => n === name)?.[1] ?? null;
}

export function hasContentType(entity: Entity): boolean {
  return entity.fields.some((f) => f.name === 'content-type');
}

/** The body, transfer-decoded (base64, or the identity encodings); null for anything else or bad base64. */
export function decodedBody(entity: Entity): Buffer | null {
  const body = entity.buf.subarray(entity.bodyStart);
  if (entity.encoding === 'base64') return decodeBase64(body);
  if (entity.encoding === '7bit' || entity.encoding === '8bit' || entity.encoding === 'binary') return body;
  return null;
}

/** The body parts of a multipart entity as byte ranges (RFC 2046 §5.1.1); null without a close delimiter. */
export function multipartParts(entity: Entity): Buffer[] | null {
  const boundary = param(entity, 'boundary');
  if (!boundary) return null;
  const { buf } = entity;
  const start = entity.bodyStart;
  const end = buf.length;
  const delimiter = Buffer.from(`--${boundary}`, 'latin1');
  const parts: Buffer[] = [];
  let partStart = -1;
  for (let at = buf.indexOf(delimiter, start); at >= 0 && at < end; at = buf.indexOf(delimiter, at + 1)) {
    if (at !== start && buf[at - 1] !== 0x0a) continue;
    const after = at + delimiter.length;
    const close = buf[after] === 0x2d && buf[after + 1] === 0x2d;
    const stop = lineEnd(buf, at, end);
    if (!/^[ \t]*\r?\n?$/.test(buf.toString('latin1', close ? after + 2 : after, stop))) continue;
    if (partStart >= 0) {
      let partEnd = at - 1;
      if (partEnd > partStart && buf[partEnd - 1] === 0x0d) partEnd--;
      parts.push(buf.subarray(partStart, Math.max(partStart, partEnd)));
    }
    if (close) return parts;
    partStart = stop;
  }
  return null;
}

function boundaryFor(content: Buffer): string {
  for (;;) {
    const b = `----=_smime_${randomBytes(12).toString('hex')}`;
    if (!content.includes(b)) return b;
  }
}

/** A multipart/signed entity (RFC 8551 §3.5.3) around `content` (a canonical MIME entity) and its detached signature. */
export function buildMultipartSigned(content: Buffer, signatureDer: Buffer, micalg: string): Buffer {
  const b = boundaryFor(content);
  const head =
    `Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=${micalg};\r\n boundary="${b}"\r\n` +
    `\r\nThis is an S/MIME signed message.\r\n\r\n--${b}\r\n`;
  const sigHead =
    `\r\n--${b}\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n` +
    `Content-Disposition: attachment; filename=smime.p7s\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), content, Buffer.from(sigHead, 'latin1'), base64Lines(signatureDer), Buffer.from(`--${b}--\r\n`, 'latin1')]);
}

/** An application/pkcs7-mime entity (RFC 8551 §3.3, §3.5.2; authEnveloped-data per RFC 8551 §3.4). */
export function buildPkcs7Mime(der: Buffer, smimeType: SmimeType): Buffer {
  return Buffer.concat(pkcs7MimeParts(der, smimeType));
}

/** The same entity as pieces, so that a caller adding a header copies the big body only once. */
export function pkcs7MimeParts(der: Buffer, smimeType: SmimeType): Buffer[] {
  const head =
    `Content-Type: application/pkcs7-mime; smime-type=${smimeType}; name=smime.p7m\r\n` +
    `Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=smime.p7m\r\n\r\n`;
  return [Buffer.from(head, 'latin1'), base64Lines(der)];
}

/** The whole RFC 5322 message as a message/rfc822 entity, canonical line endings. */
export function wrapMessage(message: Buffer): Buffer {
  return Buffer.concat([Buffer.from('Content-Type: message/rfc822\r\n\r\n', 'latin1'), canonicalize(message)]);
}

/** The parts of a received multipart/signed: the signed content (exact bytes) and the DER signature. */
export function splitMultipartSigned(entity: Entity): { content: Buffer; signature: Buffer } {
  const protocol = (param(entity, 'protocol') ?? '').toLowerCase();
  if (protocol !== 'application/pkcs7-signature' && protocol !== 'application/x-pkcs7-signature') {
    throw malformed(`multipart/signed with protocol ${JSON.stringify(protocol)}`);
  }
  const parts = multipartParts(entity);
  if (!parts || parts.length !== 2) throw malformed('multipart/signed must have exactly two parts');
  const sigPart = readEntity(parts[1]!);
  if (sigPart.mediaType !== 'application/pkcs7-signature' && sigPart.mediaType !== 'application/x-pkcs7-signature') {
    throw malformed(`signature part of type ${sigPart.mediaType}`);
  }
  const signature = decodedBody(sigPart);
  if (!signature || signature.length === 0) throw malformed('undecodable signature part');
  return { content: parts[0]!, signature };
}

/** Joins header lines (each with its CRLF), a MIME-Version field, and an entity (in one piece or several). */
export function assemble(headerLines: readonly Buffer[], ...entity: Buffer[]): Buffer {
  return Buffer.concat([...headerLines, Buffer.from('MIME-Version: 1.0\r\n', 'latin1'), ...entity]);
}

/** A header field's raw bytes with a CRLF ending, ready to be copied. */
export function rawField(buf: Buffer, f: HeaderField): Buffer {
  const raw = canonicalize(buf.subarray(f.start, f.end));
  return raw.length >= 2 && raw[raw.length - 2] === 0x0d && raw[raw.length - 1] === 0x0a ? raw : Buffer.concat([raw, CRLF]);
}
