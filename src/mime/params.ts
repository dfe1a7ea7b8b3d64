import { decodeCharset, decodeWords } from './encoded-words.js';

/**
 * Structured MIME header values: `Content-Type` and `Content-Disposition` (RFC 2045 §5.1, RFC 2183) with
 * RFC 2231 parameter continuations. Parsing is lenient, as mail in the wild requires.
 *
 * RFC 2231 continuations are joined: `name*0="a"; name*1="b"` becomes `name="ab"`; when any piece is
 * charset-encoded the result is one extended parameter, `name*=utf-8''%C3%A9t%C3%A9.pdf`, which keeps the
 * value ASCII (IMAP BODYSTRUCTURE sends it as is; `paramValue` decodes it).
 */

export interface StructuredValue {
  /** Lower-case value before the first `;`, e.g. `text/plain`, `attachment`. */
  value: string;
  /** Parameters in order of first appearance; names lower-case. */
  params: [string, string][];
}

function skipComment(s: string, i: number): number {
  let depth = 0;
  for (; i < s.length; i++) {
    const ch = s[i];
    if (ch === '\\') i++;
    else if (ch === '(') depth++;
    else if (ch === ')' && --depth === 0) return i + 1;
  }
  return s.length;
}

function readQuoted(s: string, i: number): { text: string; next: number } {
  let text = '';
  for (i++; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === '\\' && i + 1 < s.length) text += s[++i];
    else if (ch === '"') return { text, next: i + 1 };
    else text += ch;
  }
  return { text, next: s.length };
}

/** Splits on top-level `;`, dropping comments and unquoting quoted strings in values. */
function splitSegments(s: string): { text: string; quoted: boolean }[] {
  const segments: { text: string; quoted: boolean }[] = [];
  let text = '';
  let quoted = false; // the current segment's value came from a quoted string
  const endSegment = () => {
    segments.push({ text: quoted ? text : text.trim(), quoted });
    text = '';
    quoted = false;
  };
  for (let i = 0; i < s.length; ) {
    const ch = s[i]!;
    if (ch === '(') i = skipComment(s, i);
    else if (ch === '"') {
      const q = readQuoted(s, i);
      text = quoted ? text + q.text : text.trim() + q.text;
      quoted = true;
      i = q.next;
    } else if (ch === ';') {
      endSegment();
      i++;
    } else {
      if (!quoted || ch.trim()) text += ch;
      i++;
    }
  }
  endSegment();
  return segments;
}

interface RawParam {
  name: string;
  section: number | null;
  extended: boolean;
  value: string;
}

function parseRawParams(segments: { text: string; quoted: boolean }[]): RawParam[] {
  const out: RawParam[] = [];
  for (const { text: segment, quoted } of segments) {
    const eq = segment.indexOf('=');
    if (eq <= 0) continue;
    const key = segment.slice(0, eq).trim().toLowerCase();
    const value = quoted ? segment.slice(eq + 1) : segment.slice(eq + 1).trim();
    const m = /^([^*\s]+)(?:\*(\d{1,3}))?(\*)?$/.exec(key);
    if (!m) continue;
    out.push({ name: m[1]!, section: m[2] === undefined ? null : Number(m[2]), extended: m[3] === '*', value });
  }
  return out;
}

const ATTR_CHAR = /[A-Za-z0-9!#$&+\-.^_`|~]/;

function percentEncode(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += byte < 0x80 && ATTR_CHAR.test(ch) ? ch : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** Joins RFC 2231 continuations; keeps the first occurrence of each parameter name. */
function joinParams(raw: RawParam[]): [string, string][] {
  const order: string[] = [];
  const groups = new Map<string, RawParam[]>();
  for (const p of raw) {
    const key = p.section === null && !p.extended ? p.name : `${p.name}*`;
    let group = groups.get(key);
    if (!group) {
      groups.set(key, (group = []));
      order.push(key);
    }
    group.push(p);
  }
  const out: [string, string][] = [];
  for (const key of order) {
    const group = groups.get(key)!;
    if (!key.endsWith('*')) {
      out.push([key, group[0]!.value]);
      continue;
    }
    const name = key.slice(0, -1);
    const pieces = [...group].sort((a, b) => (a.section ?? 0) - (b.section ?? 0));
    const seen = new Set<number>();
    const unique = pieces.filter((p) => !seen.has(p.section ?? 0) && seen.add(p.section ?? 0));
    if (!unique.some((p) => p.extended)) {
      out.push([name, unique.map((p) => p.value).join('')]);
      continue;
    }
    let prefix = "us-ascii''";
    let body = '';
    unique.forEach((p, index) => {
      if (!p.extended) body += percentEncode(p.value);
      else if (index === 0) {
        const m = /^([^']*)'([^']*)'(.*)$/.exec(p.value);
        if (m) {
          prefix = `${m[1]}'${m[2]}'`;
          body += m[3];
        } else body += p.value;
      } else body += p.value;
    });
    out.push([`${name}*`, prefix + body]);
  }
  return out;
}

export function parseStructured(header: string): StructuredValue {
  const segments = splitSegments(header);
  const value = (segments[0]?.text ?? '').trim().toLowerCase();
  return { value, params: joinParams(parseRawParams(segments.slice(1))) };
}

/** Decodes an RFC 2231 extended value (`charset'lang'%XX...`). */
export function decodeExtendedValue(value: string): string {
  const m = /^([^']*)'[^']*'(.*)$/.exec(value);
  if (!m) return value;
  const bytes: number[] = [];
  const text = m[2]!;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '%' && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(text.charCodeAt(i) & 0xff);
  }
  return decodeCharset(Buffer.from(bytes), m[1] || 'us-ascii');
}

/** A parameter's human value: the RFC 2231 form wins, else the plain one with encoded words decoded. */
export function paramValue(params: readonly [string, string][], name: string): string | null {
  const lower = name.toLowerCase();
  const extended = params.find(([n]) => n === `${lower}*`);
  if (extended) return decodeExtendedValue(extended[1]);
  const plain = params.find(([n]) => n === lower);
  return plain ? decodeWords(plain[1]) : null;
}
