/**
 * Content-Transfer-Encoding (RFC 2045 §6) encoders used before signing, and decoders for the parts of an
 * incoming PGP/MIME message. Encoded output uses CRLF line breaks.
 */

const CRLF = '\r\n';
const MAX_QP_LINE = 76;

function hex(byte: number): string {
  return '=' + byte.toString(16).toUpperCase().padStart(2, '0');
}

/** Splits on LF or CRLF. A final line break gives a final empty line, so the structure is kept on join. */
function splitLines(buf: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let from = 0;
  for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, i + 1)) {
    lines.push(buf.subarray(from, i > from && buf[i - 1] === 0x0d ? i - 1 : i));
    from = i + 1;
  }
  lines.push(buf.subarray(from));
  return lines;
}

function encodeQpLine(line: Buffer): string {
  const tokens: string[] = [];
  for (let i = 0; i < line.length; i++) {
    const byte = line[i]!;
    const last = i === line.length - 1;
    const literal =
      (byte >= 33 && byte <= 126 && byte !== 0x3d) || ((byte === 0x20 || byte === 0x09) && !last);
    tokens.push(literal ? String.fromCharCode(byte) : hex(byte));
  }
  // Lines that transports alter: `From ` (mbox escaping) and a lone dot.
  if (tokens.length >= 5 && tokens.slice(0, 5).join('') === 'From ') tokens[0] = hex(0x46);
  if (tokens.length === 1 && tokens[0] === '.') tokens[0] = hex(0x2e);
  let out = '';
  let width = 0;
  for (const token of tokens) {
    if (width + token.length > MAX_QP_LINE - 1) {
      out += '=' + CRLF;
      width = 0;
    }
    out += token;
    width += token.length;
  }
  return out;
}

/** Quoted-printable for text: line breaks stay hard breaks (CRLF), everything else unsafe is escaped. */
export function encodeQuotedPrintable(buf: Buffer): Buffer {
  return Buffer.from(splitLines(buf).map(encodeQpLine).join(CRLF), 'latin1');
}

/** Base64 in 76-character lines, each ending with CRLF. */
export function encodeBase64Lines(buf: Buffer): Buffer {
  const text = buf.toString('base64');
  let out = '';
  for (let i = 0; i < text.length; i += 76) out += text.slice(i, i + 76) + CRLF;
  return Buffer.from(out, 'latin1');
}

function decodeQuotedPrintable(buf: Buffer): Buffer {
  const text = buf.toString('latin1').replace(/[ \t]+(?=\r?\n)/g, '').replace(/=\r?\n/g, '');
  const out = Buffer.alloc(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x3d && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      out[n++] = parseInt(text.slice(i + 1, i + 3), 16);
      i += 2;
    } else out[n++] = ch;
  }
  return out.subarray(0, n);
}

/** Decodes a part body by its (lower-case) Content-Transfer-Encoding; identity encodings return the input. */
export function decodeTransferEncoding(body: Buffer, encoding: string): Buffer {
  if (encoding === 'base64') return Buffer.from(body.toString('latin1').replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(body);
  return body;
}
