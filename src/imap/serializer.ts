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

/** A value already encoded (`encodedText`): its bytes, one character per byte, written as they are. */
export class Encoded {
  constructor(readonly bytes: string) {}
}

/** A literal whose bytes are read while they are sent (a message body opened from its sealed blob). */
export class StreamedLiteral {
  constructor(
    readonly size: number,
    readonly open: () => AsyncIterable<Buffer>,
  ) {}
}

export type Value = null | number | string | Buffer | Atom | Literal | StreamedLiteral | Utf8Text | Adjacent | Encoded | readonly Value[];
/** What a response is written as: bytes, and the streamed literals between them. */
export type Piece = Buffer | StreamedLiteral;

export const atom = (value: string) => new Atom(value);
export const literal = (value: Buffer, binary = false) => new Literal(value, binary);
export const adjacent = (items: readonly Value[]) => new Adjacent(items);
export const utf8Text = (value: string) => new Utf8Text(value);

const MAX_QUOTED = 1024;
/** Literals at least this long go out as buffers of their own (message bodies), never copied into the line. */
const COALESCE = 16 * 1024;
const ASCII = /^[\x00-\x7f]*$/;

/** A string's UTF-8 bytes as a byte string (one character per byte). */
const utf8Bytes = (value: string): string => (ASCII.test(value) ? value : Buffer.from(value, 'utf8').toString('latin1'));

/**
 * Builds a response as few buffers: text accumulates in a byte string (one character per byte, written out
 * as latin1), and only long literals and streamed ones become pieces of their own.
 */
class Encoder {
  #text = '';
  readonly #pieces: Piece[] = [];

  text(bytes: string): void {
    this.#text += bytes;
  }

  piece(piece: Piece): void {
    this.#flush();
    this.#pieces.push(piece);
  }

  #flush(): void {
    if (this.#text.length === 0) return;
    this.#pieces.push(Buffer.from(this.#text, 'latin1'));
    this.#text = '';
  }

  finish(): Piece[] {
    this.#flush();
    return this.#pieces;
  }
}

/** Quoted when short and free of NUL, CR, LF (and of 8-bit bytes unless `utf8`); a literal otherwise. */
function writeString(e: Encoder, value: string | Buffer, utf8: boolean): void {
  if (value.length > MAX_QUOTED) return writeLiteral(e, '', value);
  const bytes = typeof value === 'string' ? value : value.toString('latin1');
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes.charCodeAt(i);
    if (b === 0 || b === 0x0a || b === 0x0d || (b >= 0x80 && !utf8)) return writeLiteral(e, '', bytes);
  }
  e.text(`"${bytes.replace(/(["\\])/g, '\\$1')}"`);
}

/** `{n}` and the bytes (`value` a byte string or a buffer); `prefix` `~` for literal8. */
function writeLiteral(e: Encoder, prefix: string, value: string | Buffer): void {
  e.text(`${prefix}{${value.length}}\r\n`);
  if (typeof value === 'string') e.text(value);
  else if (value.length < COALESCE) e.text(value.toString('latin1'));
  else e.piece(value);
}

function encode(value: Value, e: Encoder): void {
  if (value === null) e.text('NIL');
  else if (typeof value === 'number') e.text(String(value));
  else if (typeof value === 'string') writeString(e, utf8Bytes(value), false);
  else if (Buffer.isBuffer(value)) writeString(e, value, false);
  else if (value instanceof Utf8Text) writeString(e, utf8Bytes(value.value), true);
  else if (value instanceof Atom) e.text(utf8Bytes(value.value));
  else if (value instanceof Encoded) e.text(value.bytes);
  else if (value instanceof Literal) writeLiteral(e, value.binary ? '~' : '', value.value);
  else if (value instanceof StreamedLiteral) {
    e.text(`{${value.size}}\r\n`);
    e.piece(value);
  } else if (value instanceof Adjacent) {
    e.text('(');
    for (const item of value.items) encode(item, e);
    e.text(')');
  } else {
    e.text('(');
    for (let i = 0; i < value.length; i++) {
      if (i > 0) e.text(' ');
      encode(value[i]!, e);
    }
    e.text(')');
  }
}

/**
 * A value's encoding as a byte string, to be kept and sent again as `Encoded`; null when it holds a literal long
 * enough to go out as a buffer of its own (or a streamed one).
 */
export function encodedText(value: Value): string | null {
  const e = new Encoder();
  encode(value, e);
  const pieces = e.finish();
  if (pieces.length > 1 || pieces.some((p) => !Buffer.isBuffer(p))) return null;
  return pieces.length === 0 ? '' : pieces[0]!.toString('latin1');
}

function bytesOnly(pieces: readonly Piece[]): Buffer[] {
  return pieces.map((p) => {
    if (p instanceof StreamedLiteral) throw new Error('a streamed literal must be sent with untaggedPieces');
    return p;
  });
}

/** Values separated by spaces. */
export function encodeValues(values: readonly Value[]): Buffer {
  const e = new Encoder();
  values.forEach((v, i) => {
    if (i > 0) e.text(' ');
    encode(v, e);
  });
  return Buffer.concat(bytesOnly(e.finish()));
}

/** `* <values>\r\n` */
export function untagged(values: readonly Value[]): Buffer {
  return Buffer.concat(untaggedParts(values));
}

/**
 * `* <values>\r\n` as a few buffers: small pieces are joined, large ones (message bodies) are passed
 * through uncopied, so a big FETCH response is never assembled into one more buffer.
 */
export function untaggedParts(values: readonly Value[]): Buffer[] {
  return bytesOnly(untaggedPieces(values));
}

/** Several `* <values>\r\n` responses in one buffer (none may hold a streamed literal). */
export function untaggedLines(lines: readonly (readonly Value[])[]): Buffer {
  const e = new Encoder();
  for (const values of lines) {
    e.text('* ');
    for (let i = 0; i < values.length; i++) {
      if (i > 0) e.text(' ');
      encode(values[i]!, e);
    }
    e.text('\r\n');
  }
  return Buffer.concat(bytesOnly(e.finish()));
}

/** `untaggedParts`, where a `StreamedLiteral` stays a piece of its own, for the sender to read and write. */
export function untaggedPieces(values: readonly Value[]): Piece[] {
  const e = new Encoder();
  e.text('* ');
  for (let i = 0; i < values.length; i++) {
    if (i > 0) e.text(' ');
    encode(values[i]!, e);
  }
  e.text('\r\n');
  return e.finish();
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
