/** The byte-level MIME helpers of the S/MIME layer and the outer/inner header comparison. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readHeader } from '../../src/mime/headers.js';
import { base64Lines, canonicalize, decodeBase64 } from '../../src/crypto/smime/canonical.js';
import { buildMultipartSigned, multipartParts, readEntity, splitMultipartSigned, wrapMessage } from '../../src/crypto/smime/entity.js';
import { headerMismatch } from '../../src/crypto/smime/header-check.js';

describe('canonical form and base64', () => {
  it('turns bare LF into CRLF, leaves CRLF alone, and returns the same Buffer when nothing changes', () => {
    const crlf = Buffer.from('a\r\nb\r\n');
    expect(canonicalize(crlf)).toBe(crlf);
    expect(canonicalize(Buffer.from('a\nb\r\nc\n\n')).toString()).toBe('a\r\nb\r\nc\r\n\r\n');
    expect(canonicalize(Buffer.from('\n')).toString()).toBe('\r\n');
    expect(canonicalize(Buffer.from('no newline')).toString()).toBe('no newline');
  });

  it('writes base64 in 76-character CRLF lines that decode back', () => {
    for (const n of [0, 1, 2, 3, 56, 57, 58, 114, 1000, 100_003]) {
      const data = randomBytes(n);
      const out = base64Lines(data);
      const lines = out.toString('latin1').split('\r\n');
      expect(lines.pop()).toBe('');
      for (const l of lines) expect(l.length).toBeLessThanOrEqual(76);
      expect(lines.slice(0, -1).every((l) => l.length === 76)).toBe(true);
      expect(decodeBase64(out).equals(data)).toBe(true);
    }
  });
});

describe('multipart/signed', () => {
  it('keeps the signed part byte for byte, with LF or CRLF structure', () => {
    const content = Buffer.from('Content-Type: text/plain\r\n\r\nline\r\n\r\n');
    const entity = buildMultipartSigned(content, randomBytes(300), 'sha-256');
    const parts = splitMultipartSigned(readEntity(entity));
    expect(parts.content.equals(content)).toBe(true);
    expect(parts.signature.length).toBe(300);
    const lf = Buffer.from(entity.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
    expect(canonicalize(splitMultipartSigned(readEntity(lf)).content).equals(content)).toBe(true);
  });

  it('a boundary-like line inside the content, or transport padding, does not split it', () => {
    const e = readEntity(
      Buffer.from('Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary=b\r\n\r\npreamble\r\n--b \r\nX\r\n--bb\r\n--b\r\nContent-Type: application/pkcs7-signature\r\n\r\nsig\r\n--b--\r\nepilogue'),
    );
    const parts = multipartParts(e)!;
    expect(parts.map((p) => p.toString())).toEqual(['X\r\n--bb', 'Content-Type: application/pkcs7-signature\r\n\r\nsig']);
  });

  it('refuses a wrong protocol, a missing close delimiter, or a part count other than two', () => {
    const make = (s: string) => readEntity(Buffer.from(s));
    expect(() => splitMultipartSigned(make('Content-Type: multipart/signed; protocol="application/pgp-signature"; boundary=b\r\n\r\n--b\r\nx\r\n--b--\r\n'))).toThrow(/protocol/);
    expect(() => splitMultipartSigned(make('Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary=b\r\n\r\n--b\r\nx\r\n--b\r\ny\r\n'))).toThrow(/two parts/);
    expect(() => splitMultipartSigned(make('Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary=b\r\n\r\n--b\r\nx\r\n--b--\r\n'))).toThrow(/two parts/);
  });

  it('wraps a whole message as message/rfc822 in canonical form', () => {
    expect(wrapMessage(Buffer.from('From: a@b\n\nhi\n')).toString()).toBe('Content-Type: message/rfc822\r\n\r\nFrom: a@b\r\n\r\nhi\r\n');
  });
});

describe('headerMismatch', () => {
  const fields = (s: string) => readHeader(Buffer.from(s), 0, s.length).fields;
  const inner = fields('From: "Dr A" <a@hopital.test>\r\nTo: b@x.test, c@y.test\r\nDate: Tue, 24 Nov 2026 10:00:00 +0100\r\nMessage-ID: <1@h>\r\nSubject: s\r\n\r\n');
  const names = ['from', 'to', 'cc', 'date', 'message-id'];
  it('accepts equal routing headers written differently', () => {
    expect(headerMismatch(fields('From: A@Hopital.test\r\nTo: c@y.test,\r\n b@x.test\r\nDate: Tue, 24 Nov 2026 09:00:00 +0000\r\nSubject: other\r\n\r\n'), inner, names)).toBeNull();
    expect(headerMismatch(fields('X-Other: 1\r\n\r\n'), inner, names)).toBeNull();
  });
  it('finds a changed, added, duplicated or outer-only field', () => {
    expect(headerMismatch(fields('From: z@hopital.test\r\n\r\n'), inner, names)).toMatch(/^from:/);
    expect(headerMismatch(fields('To: b@x.test\r\n\r\n'), inner, names)).toMatch(/^to:/);
    expect(headerMismatch(fields('From: a@hopital.test\r\nFrom: z@pirate.test\r\n\r\n'), inner, names)).toMatch(/appears 2 times/);
    expect(headerMismatch(fields('Cc: spy@pirate.test\r\n\r\n'), inner, names)).toMatch(/^cc: in the outer header but not/);
    expect(headerMismatch(fields('Message-ID: <2@h>\r\n\r\n'), inner, names)).toMatch(/^message-id/);
  });
});
