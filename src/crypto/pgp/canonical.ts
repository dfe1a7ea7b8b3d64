/** Line-ending canonicalisation (RFC 3156 §5: the signed part is hashed with CRLF line endings). */

const LF = 0x0a;
const CR = 0x0d;
const CRLF = Buffer.from('\r\n', 'latin1');

/** Every bare LF becomes CRLF; existing CRLF and bare CR are kept. Returns the input when already canonical. */
export function toCrlf(buf: Buffer): Buffer {
  let bare = buf.indexOf(LF);
  while (bare > 0 && buf[bare - 1] === CR) bare = buf.indexOf(LF, bare + 1);
  if (bare < 0) return buf;
  const pieces: Buffer[] = [];
  let from = 0;
  for (let i = bare; i >= 0; i = buf.indexOf(LF, i + 1)) {
    if (i > 0 && buf[i - 1] === CR) continue;
    pieces.push(buf.subarray(from, i), CRLF);
    from = i + 1;
  }
  pieces.push(buf.subarray(from));
  return Buffer.concat(pieces);
}

/** Text produced by openpgp (armor uses LF) with CRLF line endings. */
export function textToCrlf(text: string): Buffer {
  return Buffer.from(text.replace(/\r?\n/g, '\r\n'), 'latin1');
}
