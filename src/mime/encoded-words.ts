/**
 * RFC 2047 encoded-word decoding (`=?charset?B|Q?...?=`) for display and threading values. IMAP ENVELOPE
 * and BODYSTRUCTURE keep the raw form; only derived, human-facing values are decoded.
 */

const WORD = /=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=/g;

/** Decodes bytes in a named charset; unknown charsets fall back to Latin-1 rather than failing. */
export function decodeCharset(bytes: Buffer, charset: string): string {
  const label = charset.split('*')[0]!.trim().toLowerCase() || 'us-ascii';
  try {
    return new TextDecoder(label === 'us-ascii' ? 'utf-8' : label).decode(bytes);
  } catch {
    return bytes.toString('latin1');
  }
}

function wordBytes(encoding: string, text: string): Buffer {
  if (encoding.toUpperCase() === 'B') return Buffer.from(text, 'base64');
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '_') bytes.push(0x20);
    else if (ch === '=' && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(ch.charCodeAt(0) & 0xff);
  }
  return Buffer.from(bytes);
}

/**
 * Decodes every encoded word in `value`. White space between adjacent encoded words is dropped (RFC 2047
 * §6.2), and adjacent words in the same charset are joined at byte level so a character split across
 * words survives.
 */
export function decodeWords(value: string): string {
  let out = '';
  let last = 0;
  let pending: { charset: string; bytes: Buffer[] } | null = null;
  const flush = () => {
    if (pending) out += decodeCharset(Buffer.concat(pending.bytes), pending.charset);
    pending = null;
  };
  for (const match of value.matchAll(WORD)) {
    const between = value.slice(last, match.index);
    const [, charset = '', encoding = 'Q', text = ''] = match;
    const bytes = wordBytes(encoding, text);
    if (pending && /^\s*$/.test(between)) {
      const open: { charset: string; bytes: Buffer[] } = pending;
      if (open.charset.toLowerCase() === charset.toLowerCase()) open.bytes.push(bytes);
      else {
        flush();
        pending = { charset, bytes: [bytes] };
      }
    } else {
      flush();
      out += between;
      pending = { charset, bytes: [bytes] };
    }
    last = match.index + match[0].length;
  }
  flush();
  return out + value.slice(last);
}
