/**
 * Byte-level helpers of the S/MIME MIME layer, on Buffers only (STYLE.md §6): canonical CRLF line endings
 * (RFC 8551 §3.1.1), base64 with 76-character lines, and base64 decoding of a body range.
 */

const CR = 0x0d;
const LF = 0x0a;

/** The input with every bare LF turned into CRLF; the same Buffer when it already is canonical. */
export function canonicalize(buf: Buffer): Buffer {
  let bare = 0;
  for (let i = buf.indexOf(LF); i >= 0; i = buf.indexOf(LF, i + 1)) if (i === 0 || buf[i - 1] !== CR) bare++;
  if (bare === 0) return buf;
  const out = Buffer.allocUnsafe(buf.length + bare);
  let o = 0;
  let from = 0;
  for (let i = buf.indexOf(LF); i >= 0; i = buf.indexOf(LF, i + 1)) {
    if (i > 0 && buf[i - 1] === CR) continue;
    o += buf.copy(out, o, from, i);
    out[o++] = CR;
    out[o++] = LF;
    from = i + 1;
  }
  o += buf.copy(out, o, from);
  return out;
}

/** base64 in lines of 76 characters, each ending with CRLF. */
export function base64Lines(data: Buffer): Buffer {
  const LINE = 76;
  const b64Length = Math.ceil(data.length / 3) * 4;
  const total = b64Length + Math.ceil(b64Length / LINE) * 2;
  const out = Buffer.allocUnsafe(total);
  // Encode into the tail, then move each line forward: the write position never overtakes the read position,
  // and copyWithin (memmove) is far cheaper than one small Buffer per line.
  const start = total - b64Length;
  out.write(data.toString('base64'), start, 'latin1');
  let o = 0;
  for (let i = start; i < total; i += LINE) {
    const end = Math.min(i + LINE, total);
    out.copyWithin(o, i, end);
    o += end - i;
    out[o++] = CR;
    out[o++] = LF;
  }
  return out;
}

/**
 * Decodes base64 text. Line breaks and white space are skipped (as are other stray characters, by Node's
 * decoder): what is decoded is then parsed as DER, strictly, so garbage ends as a malformed structure.
 */
export function decodeBase64(buf: Buffer, start = 0, end = buf.length): Buffer {
  return Buffer.from(buf.toString('latin1', start, end), 'base64');
}
