/**
 * RFC 6409 §8.1 / RFC 5322 §3.6.3: the submission server removes `Bcc:` fields, so blind recipients are not
 * revealed to everyone who receives the message. Works on the raw header bytes; the body is untouched.
 */
export function stripBcc(raw: Buffer): Buffer {
  return stripHeaderFields(raw, ['bcc']);
}

/** Removes every field with one of these (lower-case) names from the top-level header, continuation lines included. */
export function stripHeaderFields(raw: Buffer, names: readonly string[]): Buffer {
  const wanted = new Set(names);
  const headerEnd = endOfHeader(raw);
  const kept: Buffer[] = [];
  let dropping = false;
  let start = 0;
  let changed = false;
  while (start < headerEnd) {
    let end = raw.indexOf(0x0a, start);
    end = end < 0 || end >= headerEnd ? headerEnd : end + 1;
    const line = raw.subarray(start, end);
    const continuation = line[0] === 0x20 || line[0] === 0x09;
    if (!continuation) {
      const colon = line.indexOf(0x3a);
      dropping = colon > 0 && wanted.has(line.toString('latin1', 0, colon).trim().toLowerCase());
    }
    if (dropping) changed = true;
    else kept.push(line);
    start = end;
  }
  if (!changed) return raw;
  kept.push(raw.subarray(headerEnd));
  return Buffer.concat(kept);
}

/** Offset of the first byte after the header block (the blank line stays with the body). */
function endOfHeader(raw: Buffer): number {
  if (raw[0] === 0x0a || (raw[0] === 0x0d && raw[1] === 0x0a)) return 0;
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  if (crlf < 0 && lf < 0) return raw.length;
  if (crlf < 0) return lf + 1;
  if (lf < 0) return crlf + 2;
  return Math.min(crlf + 2, lf + 1);
}
