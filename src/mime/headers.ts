/**
 * Header blocks of RFC 5322 messages and MIME parts, located by byte offsets. Works with CRLF and bare-LF
 * line endings; header values are unfolded and decoded as UTF-8 (Latin-1 when the bytes are not UTF-8).
 */

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const TAB = 0x09;
const COLON = 0x3a;

export interface HeaderField {
  /** Lower-case field name. */
  name: string;
  /** Unfolded value, leading and trailing white space removed. */
  value: string;
  /** Offset of the first byte of the field. */
  start: number;
  /** Offset just after the line break ending the field's last line. */
  end: number;
}

export interface HeaderBlock {
  fields: HeaderField[];
  /** Offset of the first body byte: after the empty line, or `end` when the header has none. */
  bodyStart: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes to text: UTF-8 when valid (RFC 6532 headers), Latin-1 otherwise, so no byte is lost or replaced. */
export function decodeBytes(buf: Buffer, start = 0, end = buf.length): string {
  const slice = buf.subarray(start, end);
  for (let i = 0; i < slice.length; i++) {
    if (slice[i]! >= 0x80) {
      try {
        return utf8.decode(slice);
      } catch {
        return slice.toString('latin1');
      }
    }
  }
  return slice.toString('latin1');
}

/** Offset just after the next LF at or after `from` (or `end` when there is none). */
export function lineEnd(buf: Buffer, from: number, end: number): number {
  if (from >= end) return end;
  const i = buf.indexOf(LF, from);
  return i < 0 || i >= end ? end : i + 1;
}

function isBlankLine(buf: Buffer, start: number, stop: number): boolean {
  const len = stop - start;
  if (len === 0) return false;
  if (len === 1) return buf[start] === LF;
  return len === 2 && buf[start] === CR && buf[start + 1] === LF;
}

/** Unfolds a field's bytes (from after the colon to its end) into one trimmed line of text. */
function unfold(buf: Buffer, start: number, end: number): string {
  return decodeBytes(buf, start, end)
    .replace(/\r?\n(?=[ \t])/g, '')
    .replace(/\r?\n$/, '')
    .replace(/\r/g, '')
    .trim();
}

/**
 * Reads the header block starting at `start`. Lines without a colon are kept inside the block but produce
 * no field (lenient, as deployed parsers are); the block ends at the first empty line.
 */
export function readHeader(buf: Buffer, start: number, end: number): HeaderBlock {
  const fields: HeaderField[] = [];
  let pos = start;
  let current: { start: number; colon: number; name: string } | null = null;
  const close = (stop: number) => {
    if (current) {
      fields.push({ name: current.name, value: unfold(buf, current.colon + 1, stop), start: current.start, end: stop });
      current = null;
    }
  };
  while (pos < end) {
    const next = lineEnd(buf, pos, end);
    if (isBlankLine(buf, pos, next)) {
      close(pos);
      return { fields, bodyStart: next };
    }
    const first = buf[pos];
    if ((first === SP || first === TAB) && current) {
      pos = next;
      continue;
    }
    close(pos);
    const colon = buf.indexOf(COLON, pos);
    if (colon > pos && colon < next) {
      const name = buf.toString('latin1', pos, colon).trim().toLowerCase();
      if (name.length > 0 && !/[\s]/.test(name)) current = { start: pos, colon, name };
    }
    pos = next;
  }
  close(end);
  return { fields, bodyStart: end };
}

/** The value of the first field with this (lower-case) name, or null. */
export function headerValue(fields: readonly HeaderField[], name: string): string | null {
  for (const field of fields) if (field.name === name) return field.value;
  return null;
}
