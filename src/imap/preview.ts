import { decodeCharset } from '../mime/encoded-words.js';
import { paramValue } from '../mime/params.js';
import { decodeTransfer, isKnownEncoding } from '../mime/transfer.js';
import type { MimeNode } from '../mime/types.js';

/**
 * PREVIEW (RFC 8970): a short plain-text excerpt of a message, computed from the opened message each time it
 * is asked for (nothing derived from the content is kept, so nothing more needs sealing at rest). Pure.
 *
 * The text comes from the first text/plain or text/html part that is not an attachment (in a
 * multipart/alternative, the text/plain one when there is one; an attached message/rfc822 is not looked
 * into). HTML loses its markup, the content of script, style and head elements, and its comments, and its
 * character references are decoded. White space runs become one space, control characters go, and the result
 * is cut at 256 characters (code points). A message without such a part, or whose part has an encoding we do
 * not know, previews as the empty string.
 */

export const PREVIEW_MAX_CHARS = 256;
/** Bytes of the chosen part read at most (enough for 256 visible characters under heavy markup). */
const MAX_SOURCE_BYTES = 128 * 1024;

function isAttachment(node: MimeNode): boolean {
  return node.disposition?.type === 'attachment';
}

function isText(node: MimeNode): boolean {
  return node.type === 'text' && (node.subtype === 'plain' || node.subtype === 'html') && !isAttachment(node);
}

/** The part the preview is taken from, or null. */
export function previewPart(node: MimeNode): MimeNode | null {
  if (node.type !== 'multipart') return isText(node) ? node : null;
  if (node.subtype === 'alternative') {
    const plain = node.children.find((c) => isText(c) && c.subtype === 'plain');
    if (plain) return plain;
  }
  for (const child of node.children) {
    const part = previewPart(child);
    if (part) return part;
  }
  return null;
}

const ENTITIES: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ',
  eacute: 'é', egrave: 'è', ecirc: 'ê', euml: 'ë', agrave: 'à', acirc: 'â', auml: 'ä', ccedil: 'ç',
  icirc: 'î', iuml: 'ï', ocirc: 'ô', ouml: 'ö', ugrave: 'ù', ucirc: 'û', uuml: 'ü', oelig: 'œ', aelig: 'æ',
  Eacute: 'É', Egrave: 'È', Ecirc: 'Ê', Agrave: 'À', Acirc: 'Â', Ccedil: 'Ç', Ocirc: 'Ô', OElig: 'Œ',
  laquo: '«', raquo: '»', lsquo: '‘', rsquo: '’', ldquo: '“', rdquo: '”', hellip: '…', ndash: '–', mdash: '—',
  euro: '€', deg: '°', middot: '·', copy: '©', reg: '®', bull: '•', shy: '',
};

function decodeEntities(text: string): string {
  return text.replace(/&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z]{2,8});/g, (whole, ref: string) => {
    if (ref.startsWith('#')) {
      const code = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return code > 0 && code <= 0x10ffff && (code < 0xd800 || code > 0xdfff) ? String.fromCodePoint(code) : ' ';
    }
    return ENTITIES[ref] ?? whole;
  });
}

const HIDDEN = new Set(['script', 'style', 'head', 'title']);
const BLOCK = new Set([
  'address', 'article', 'aside', 'blockquote', 'br', 'dd', 'div', 'dl', 'dt', 'footer', 'h1', 'h2', 'h3', 'h4',
  'h5', 'h6', 'header', 'hr', 'li', 'ol', 'p', 'pre', 'section', 'table', 'td', 'th', 'tr', 'ul',
]);

/** Visible text of an HTML fragment. One forward scan: linear in the input whatever it holds. */
export function htmlText(html: string): string {
  const lower = html.replace(/[A-Z]/g, (c) => c.toLowerCase()); // same length as html, unlike toLowerCase()
  let out = '';
  let i = 0;
  while (i < html.length) {
    const open = html.indexOf('<', i);
    if (open < 0) {
      out += html.slice(i);
      break;
    }
    out += html.slice(i, open);
    if (html.startsWith('<!--', open)) {
      const end = html.indexOf('-->', open + 4);
      i = end < 0 ? html.length : end + 3;
      continue;
    }
    const close = html.indexOf('>', open + 1);
    if (close < 0) break; // an unterminated tag: nothing after it is text
    const name = /^\/?([a-z][a-z0-9]*)/.exec(lower.slice(open + 1, Math.min(close, open + 20)))?.[1] ?? '';
    i = close + 1;
    if (HIDDEN.has(name) && lower[open + 1] !== '/') {
      const end = lower.indexOf(`</${name}`, i);
      if (end < 0) break;
      const endClose = html.indexOf('>', end);
      i = endClose < 0 ? html.length : endClose + 1;
      continue;
    }
    if (BLOCK.has(name)) out += ' ';
  }
  return decodeEntities(out);
}

/** White space runs as one space, no control characters, at most `PREVIEW_MAX_CHARS` code points. */
export function normalisePreview(text: string): string {
  const flat = text
    .replace(/\s+/gu, ' ')
    .replace(/[\u0000-\u001f\u007f-\u009f\u200b\ufeff]/gu, '')
    .trim();
  let out = '';
  let count = 0;
  for (const ch of flat) {
    if (count++ === PREVIEW_MAX_CHARS) break;
    out += ch;
  }
  return out.trimEnd();
}

/** The preview of a stored message, from its raw bytes and MIME structure. */
export function previewText(raw: Buffer, root: MimeNode): string {
  const part = previewPart(root);
  if (!part || !isKnownEncoding(part.encoding)) return '';
  const source = raw.subarray(part.bodyStart, Math.min(part.bodyEnd, part.bodyStart + MAX_SOURCE_BYTES));
  const text = decodeCharset(decodeTransfer(source, part.encoding), paramValue(part.params, 'charset') ?? 'us-ascii');
  return normalisePreview(part.subtype === 'html' ? htmlText(text) : text);
}
