import { readHeader } from '../mime/headers.js';
import type { MimeNode } from '../mime/types.js';
import { ImapSyntaxError, type Token } from './tokenizer.js';

/**
 * BODY[<section>] (RFC 9051 §6.4.5): parsing the section spec, naming it in the response, and cutting the
 * bytes out of a stored message with its MIME tree. Pure.
 */

export type SectionText = 'HEADER' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT' | 'TEXT' | 'MIME';

export interface SectionSpec {
  /** Part numbers, `[]` for the whole message. */
  path: number[];
  text: SectionText | null;
  /** Header field names for HEADER.FIELDS[.NOT], as the client wrote them. */
  fields: string[];
}

const TEXTS: readonly SectionText[] = ['HEADER', 'HEADER.FIELDS', 'HEADER.FIELDS.NOT', 'TEXT', 'MIME'];
const MAX_FIELDS = 100;

export function parseSection(tokens: readonly Token[]): SectionSpec {
  if (tokens.length === 0) return { path: [], text: null, fields: [] };
  const [first, list, extra] = tokens;
  if (first?.type !== 'atom' || first.section || extra) throw new ImapSyntaxError('Invalid section');
  const parts = first.value.split('.');
  const path: number[] = [];
  while (parts.length > 0 && /^[1-9]\d{0,8}$/.test(parts[0]!)) path.push(Number(parts.shift()));
  const rest = parts.join('.').toUpperCase();
  if (rest === '') {
    if (path.length === 0 || list) throw new ImapSyntaxError('Invalid section');
    return { path, text: null, fields: [] };
  }
  const text = TEXTS.find((t) => t === rest);
  if (!text || (text === 'MIME' && path.length === 0)) throw new ImapSyntaxError('Invalid section');
  if (text === 'HEADER.FIELDS' || text === 'HEADER.FIELDS.NOT') {
    if (list?.type !== 'list' || list.items.length === 0 || list.items.length > MAX_FIELDS) {
      throw new ImapSyntaxError('HEADER.FIELDS needs a list of field names');
    }
    const fields = list.items.map((t) => {
      if (t.type === 'list' || (t.type === 'atom' && t.section)) throw new ImapSyntaxError('Invalid header field name');
      const name = t.type === 'atom' ? t.value : t.value.toString('utf8');
      if (!/^[\x21-\x39\x3b-\x7e]+$/.test(name)) throw new ImapSyntaxError('Invalid header field name');
      return name;
    });
    return { path, text, fields };
  }
  if (list) throw new ImapSyntaxError('Invalid section');
  return { path, text, fields: [] };
}

/** The section as it is echoed in the FETCH response: `1.2.HEADER.FIELDS (FROM TO)`. */
export function sectionLabel(spec: SectionSpec): string {
  const parts = [...spec.path.map(String), ...(spec.text ? [spec.text] : [])].join('.');
  return spec.fields.length > 0 ? `${parts} (${spec.fields.map((f) => f.toUpperCase()).join(' ')})` : parts;
}

function isMessage(node: MimeNode): boolean {
  return node.type === 'message' && (node.subtype === 'rfc822' || node.subtype === 'global') && node.children.length === 1;
}

/** The node a part path names, or null. Inside message/rfc822 parts, numbering restarts at its body. */
export function findPart(root: MimeNode, path: readonly number[]): MimeNode | null {
  let node = root;
  let atMessage = true; // a non-multipart message's body is its part 1
  for (let i = 0; i < path.length; i++) {
    const index = path[i]!;
    if (node.type === 'multipart') {
      const child = node.children[index - 1];
      if (!child) return null;
      node = child;
    } else if (index !== 1 || !atMessage) return null;
    atMessage = false;
    if (i < path.length - 1 && isMessage(node)) {
      node = node.children[0]!;
      atMessage = true;
    }
  }
  return node;
}

function headerFields(raw: Buffer, start: number, end: number, names: readonly string[], not: boolean): Buffer {
  const wanted = new Set(names.map((n) => n.toLowerCase()));
  const { fields } = readHeader(raw, start, end);
  const pieces = fields.filter((f) => wanted.has(f.name) !== not).map((f) => raw.subarray(f.start, f.end));
  const last = pieces[pieces.length - 1];
  const needsBreak = last && last[last.length - 1] !== 0x0a;
  return Buffer.concat([...pieces, ...(needsBreak ? [Buffer.from('\r\n')] : []), Buffer.from('\r\n')]);
}

/** The bytes of a section, or null when the message has no such part. */
export function extractSection(raw: Buffer, root: MimeNode, spec: SectionSpec): Buffer | null {
  if (spec.path.length === 0 && spec.text === null) return raw;
  const part = findPart(root, spec.path);
  if (!part) return null;
  if (spec.text === null) return raw.subarray(part.bodyStart, part.bodyEnd);
  if (spec.text === 'MIME') return raw.subarray(part.headerStart, part.bodyStart);
  // HEADER / TEXT name the top-level message, or the message inside a message/rfc822 part.
  let message: MimeNode;
  if (spec.path.length === 0) message = root;
  else if (isMessage(part)) message = part.children[0]!;
  else return null;
  switch (spec.text) {
    case 'HEADER':
      return raw.subarray(message.headerStart, message.bodyStart);
    case 'TEXT':
      return raw.subarray(message.bodyStart, message.bodyEnd);
    case 'HEADER.FIELDS':
    case 'HEADER.FIELDS.NOT':
      return headerFields(raw, message.headerStart, message.bodyStart, spec.fields, spec.text === 'HEADER.FIELDS.NOT');
  }
}

/** `<start.count>` of a partial fetch. */
export function applyPartial(data: Buffer, partial: { start: number; count: number } | undefined): Buffer {
  if (!partial) return data;
  return data.subarray(Math.min(partial.start, data.length), Math.min(partial.start + partial.count, data.length));
}
