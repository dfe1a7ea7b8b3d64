/**
 * Turns a command frame's argument bytes into tokens (RFC 9051 §4): atoms, quoted strings, literals,
 * literal8 (`~{n}`, RFC 3516: its own token type, so only grammars that ask for one accept it),
 * parenthesised lists, and FETCH section attributes (`BODY.PEEK[1.HEADER.FIELDS (From)]<0.100>`). Pure.
 *
 * `[` starts a section only right after BODY, BODY.PEEK, BINARY, BINARY.PEEK or BINARY.SIZE; anywhere else
 * brackets are ordinary astring characters (mailbox names such as `[Gmail]/Sent`).
 */

export type Token =
  | { type: 'atom'; value: string; section?: Token[]; partial?: string }
  | { type: 'string'; value: Buffer; literal: boolean }
  | { type: 'literal8'; value: Buffer }
  | { type: 'list'; items: Token[] };

export class ImapSyntaxError extends Error {}

const MAX_NESTING = 16;
const SECTION_ATOMS = /^(BODY|BODY\.PEEK|BINARY|BINARY\.PEEK|BINARY\.SIZE)$/i;
const SP = 0x20;

/** A cursor over a frame: line bytes, with literal data standing where each line ends in `{n}`. */
class Cursor {
  private seg = 0;
  private pos: number;

  constructor(
    private readonly segments: Buffer[],
    offset: number,
  ) {
    this.pos = offset;
  }

  private get line(): Buffer {
    return this.segments[this.seg]!;
  }

  atEnd(): boolean {
    return this.seg >= this.segments.length - 1 && this.pos >= this.line.length;
  }

  peek(offset = 0): number | undefined {
    return this.line[this.pos + offset];
  }

  advance(n = 1): void {
    this.pos += n;
  }

  /** When the current line ends with a literal marker at `pos`, returns the literal data and moves past it. */
  literalHere(): Buffer | null {
    const rest = this.line.toString('latin1', this.pos);
    if (!/^\{\d+\+?\}$/.test(rest)) return null;
    const data = this.segments[this.seg + 1];
    if (data === undefined) return null;
    this.seg += 2;
    this.pos = 0;
    return data;
  }
}

function isAtomChar(c: number): boolean {
  return c > SP && c !== 0x7f && c !== 0x28 && c !== 0x29 && c !== 0x7b && c !== 0x22;
}

function readQuoted(cur: Cursor): Token {
  cur.advance(); // opening quote
  const bytes: number[] = [];
  for (;;) {
    const c = cur.peek();
    if (c === undefined) throw new ImapSyntaxError('Unterminated quoted string');
    cur.advance();
    if (c === 0x22) return { type: 'string', value: Buffer.from(bytes), literal: false };
    if (c === 0x5c) {
      const e = cur.peek();
      if (e !== 0x22 && e !== 0x5c) throw new ImapSyntaxError('Invalid escape in quoted string');
      bytes.push(e);
      cur.advance();
    } else if (c === 0x0d || c === 0x0a || c === 0) throw new ImapSyntaxError('Invalid character in quoted string');
    else bytes.push(c);
  }
}

function readBracketed(cur: Cursor, depth: number): Token[] {
  cur.advance(); // [
  const items = readSequence(cur, 0x5d, depth + 1);
  cur.advance(); // ]
  return items;
}

function readAtom(cur: Cursor, depth: number, inSection: boolean): Token {
  const bytes: number[] = [];
  let section: Token[] | undefined;
  let partial: string | undefined;
  for (;;) {
    const c = cur.peek();
    if (c === undefined || !isAtomChar(c)) break;
    if (c === 0x5d && inSection) break;
    if (c === 0x5b && SECTION_ATOMS.test(Buffer.from(bytes).toString('latin1'))) {
      section = readBracketed(cur, depth);
      if (cur.peek() === 0x3c) {
        let text = '';
        cur.advance();
        for (let d = cur.peek(); d !== undefined && d !== 0x3e; d = cur.peek()) {
          text += String.fromCharCode(d);
          cur.advance();
        }
        if (cur.peek() !== 0x3e) throw new ImapSyntaxError('Unterminated partial specifier');
        cur.advance();
        partial = text;
      }
      break;
    }
    bytes.push(c);
    cur.advance();
  }
  if (bytes.length === 0) throw new ImapSyntaxError('Expected an argument');
  const token: Token = { type: 'atom', value: Buffer.from(bytes).toString('utf8') };
  if (section) token.section = section;
  if (partial !== undefined) token.partial = partial;
  return token;
}

function readToken(cur: Cursor, depth: number, inSection: boolean): Token {
  const c = cur.peek();
  if (c === 0x22) return readQuoted(cur);
  if (c === 0x28) {
    if (depth >= MAX_NESTING) throw new ImapSyntaxError('Lists nested too deeply');
    cur.advance();
    const items = readSequence(cur, 0x29, depth + 1);
    cur.advance();
    return { type: 'list', items };
  }
  if (c === 0x7b) {
    const data = cur.literalHere();
    if (!data) throw new ImapSyntaxError('Invalid literal');
    return { type: 'string', value: data, literal: true };
  }
  if (c === 0x7e && cur.peek(1) === 0x7b) {
    cur.advance();
    const data = cur.literalHere();
    if (!data) throw new ImapSyntaxError('Invalid literal8');
    return { type: 'literal8', value: data };
  }
  return readAtom(cur, depth, inSection);
}

/** Reads tokens separated by single spaces until `close` (`)` or `]`), which is left for the caller. */
function readSequence(cur: Cursor, close: number, depth: number): Token[] {
  const items: Token[] = [];
  if (cur.peek() === close) return items;
  for (;;) {
    items.push(readToken(cur, depth, close === 0x5d));
    const c = cur.peek();
    if (c === close) return items;
    if (c !== SP) throw new ImapSyntaxError(c === undefined ? 'Unterminated list' : 'Expected a space');
    cur.advance();
  }
}

/** Tokenises the arguments of a command frame (everything after the command name). */
export function tokenize(segments: Buffer[], offset: number): Token[] {
  const cur = new Cursor(segments, offset);
  const tokens: Token[] = [];
  while (!cur.atEnd()) {
    tokens.push(readToken(cur, 0, false));
    if (cur.atEnd()) break;
    if (cur.peek() !== SP) throw new ImapSyntaxError('Expected a space');
    cur.advance();
    if (cur.atEnd()) throw new ImapSyntaxError('Trailing space');
  }
  return tokens;
}
