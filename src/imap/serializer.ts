/**
 * Response encoding (RFC 9051 §4, §7): pure functions from values to bytes.
 *
 * Values: `null` is NIL; a number is a number; a JS string or Buffer is an IMAP string, sent quoted when
 * that is safe (short, 7-bit, no CR/LF/NUL) and as a literal otherwise; `Atom` is sent verbatim;
 * `Literal` forces a literal; `Utf8Text` is a string that may be quoted with UTF-8 in it (RFC 9051 and
 * RFC 6855 `uQUOTED-CHAR`: for sessions that enabled IMAP4rev2 or UTF8=ACCEPT); an array is a
 * parenthesised list with spaces; `Adjacent` is a list whose members touch (the `1*body` and `1*address`
 * productions).
 */

export class Atom {
  constructor(readonly value: string) {}
}
export class Literal {
  constructor(
    readonly value: Buffer,
    /** `~{n}` (RFC 3516 literal8): the bytes may hold NUL. */
    readonly binary = false,
  ) {}
}
export class Utf8Text {
  constructor(readonly value: string) {}
}
export class Adjacent {
  constructor(readonly items: readonly Value[]) {}
}

/** A literal whose bytes are read while they are sent (a message body opened from its sealed blob). */
export class StreamedLiteral {
  constructor(
    readonly size: number,
    readonly open: () => AsyncIterable<Buffer>,
  ) {}
}

export type Value = null | number | string | Buffer | Atom | Literal | StreamedLiteral | Utf8Text | Adjacent | readonly Value[];
/** What a response is written as: bytes, and the streamed literals between them. */
export type Piece = Buffer | StreamedLiteral;

export const atom = (value: string) => new Atom(value);
export const literal = (value: Buffer, binary = false) => new Literal(value, binary);
export const adjacent = (items: readonly Value[]) => new Adjacent(items);
export const utf8Text = (value: string) => new Utf8Text(value);

const MAX_QUOTED = 1024;
const CRLF = Buffer.from('\r\n');

function canQuote(bytes: Buffer, utf8: boolean): boolean {
  if (bytes.length > MAX_QUOTED) return false;
  for (const b of bytes) if (b === 0 || b === 0x0a || b === 0x0d || (b >= 0x80 && !utf8)) return false;
  return true;
}

function writeString(bytes: Buffer, out: Piece[], utf8 = false): void {
  if (canQuote(bytes, utf8)) out.push(Buffer.from(`"${bytes.toString('latin1').replace(/(["\\])/g, '\\$1')}"`, 'latin1'));
  else out.push(Buffer.from(`{${bytes.length}}\r\n`, 'latin1'), bytes);
}

export function encodeValue(value: Value, out: Piece[]): void {
  if (value === null) out.push(Buffer.from('NIL'));
  else if (typeof value === 'number') out.push(Buffer.from(String(value)));
  else if (typeof value === 'string') writeString(Buffer.from(value, 'utf8'), out);
  else if (Buffer.isBuffer(value)) writeString(value, out);
  else if (value instanceof Utf8Text) writeString(Buffer.from(value.value, 'utf8'), out, true);
  else if (value instanceof Atom) out.push(Buffer.from(value.value, 'utf8'));
  else if (value instanceof Literal) out.push(Buffer.from(`${value.binary ? '~' : ''}{${value.value.length}}\r\n`, 'latin1'), value.value);
  else if (value instanceof StreamedLiteral) out.push(Buffer.from(`{${value.size}}\r\n`, 'latin1'), value);
  else if (value instanceof Adjacent) {
    out.push(Buffer.from('('));
    for (const item of value.items) encodeValue(item, out);
    out.push(Buffer.from(')'));
  } else {
    out.push(Buffer.from('('));
    value.forEach((item, i) => {
      if (i > 0) out.push(Buffer.from(' '));
      encodeValue(item, out);
    });
    out.push(Buffer.from(')'));
  }
}

function bytesOnly(pieces: readonly Piece[]): Buffer[] {
  return pieces.map((p) => {
    if (p instanceof StreamedLiteral) throw new Error('a streamed literal must be sent with untaggedPieces');
    return p;
  });
}

/** Values separated by spaces. */
export function encodeValues(values: readonly Value[]): Buffer {
  const out: Piece[] = [];
  values.forEach((v, i) => {
    if (i > 0) out.push(Buffer.from(' '));
    encodeValue(v, out);
  });
  return Buffer.concat(bytesOnly(out));
}

/** `* <values>\r\n` */
export function untagged(values: readonly Value[]): Buffer {
  return Buffer.concat(untaggedParts(values));
}

const COALESCE = 16 * 1024;

/**
 * `* <values>\r\n` as a few buffers: small pieces are joined, large ones (message bodies) are passed
 * through uncopied, so a big FETCH response is never assembled into one more buffer.
 */
export function untaggedParts(values: readonly Value[]): Buffer[] {
  return bytesOnly(untaggedPieces(values));
}

/** `untaggedParts`, where a `StreamedLiteral` stays a piece of its own, for the sender to read and write. */
export function untaggedPieces(values: readonly Value[]): Piece[] {
  const pieces: Piece[] = [Buffer.from('* ')];
  values.forEach((v, i) => {
    if (i > 0) pieces.push(Buffer.from(' '));
    encodeValue(v, pieces);
  });
  pieces.push(CRLF);
  const out: Piece[] = [];
  let small: Buffer[] = [];
  for (const piece of pieces) {
    if (Buffer.isBuffer(piece) && piece.length < COALESCE) {
      small.push(piece);
      continue;
    }
    if (small.length > 0) out.push(Buffer.concat(small));
    small = [];
    out.push(piece);
  }
  if (small.length > 0) out.push(Buffer.concat(small));
  return out;
}

export type Status = 'OK' | 'NO' | 'BAD' | 'BYE' | 'PREAUTH';

/** Human text in a status response: one line, printable ASCII only. */
export function safeText(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').replace(/^\s*$/, 'Done');
}

/** `<tag|*> <status> [<code>] <text>\r\n`; the code is written as given (`APPENDUID 3 7`). */
export function status(tag: string | null, kind: Status, text: string, code?: string): Buffer {
  const prefix = `${tag ?? '*'} ${kind} `;
  const bracket = code ? `[${code}] ` : '';
  return Buffer.from(`${prefix}${bracket}${safeText(text)}\r\n`, 'latin1');
}

/** `+ <text>\r\n`; the text may be empty (an empty SASL challenge). */
export function continuation(text: string): Buffer {
  return Buffer.from(`+ ${text.replace(/[^\x20-\x7e]/g, '?')}\r\n`, 'latin1');
}
