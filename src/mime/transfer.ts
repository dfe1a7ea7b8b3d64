/** Content-Transfer-Encoding decoding (RFC 2045 §6): base64 and quoted-printable; identity encodings as they are. */

export const IDENTITY_ENCODINGS = ['7bit', '8bit', 'binary'] as const;

export function isKnownEncoding(encoding: string): boolean {
  return encoding === 'base64' || encoding === 'quoted-printable' || (IDENTITY_ENCODINGS as readonly string[]).includes(encoding);
}

/** Decodes `bytes` in `encoding` (lower-case); an unknown encoding returns the bytes unchanged. */
export function decodeTransfer(bytes: Buffer, encoding: string): Buffer {
  if (encoding === 'base64') return Buffer.from(bytes.toString('latin1').replace(/[^A-Za-z0-9+/]/g, ''), 'base64');
  if (encoding === 'quoted-printable') {
    const text = bytes.toString('latin1').replace(/[ \t]+(?=\r?\n)/g, '').replace(/=\r?\n/g, '');
    const out = Buffer.allocUnsafe(text.length);
    let n = 0;
    for (let i = 0; i < text.length; i++) {
      const hex = text.slice(i + 1, i + 3);
      if (text[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
        out[n++] = parseInt(hex, 16);
        i += 2;
      } else out[n++] = text.charCodeAt(i) & 0xff;
    }
    return out.subarray(0, n);
  }
  return bytes;
}
