import { describe, expect, it } from 'vitest';
import { toCrlf } from '../../../src/crypto/pgp/canonical.js';
import { recombine, splitMessage } from '../../../src/crypto/pgp/mime-entity.js';
import { buildEncrypted, buildSigned } from '../../../src/crypto/pgp/pgp-mime-build.js';
import { parsePgpMime } from '../../../src/crypto/pgp/pgp-mime-parse.js';
import { canonicalEntity, needsEncoding } from '../../../src/crypto/pgp/seven-bit.js';
import {
  decodeTransferEncoding,
  encodeBase64Lines,
  encodeQuotedPrintable,
} from '../../../src/crypto/pgp/transfer-encoding.js';
import { parseMime } from '../../../src/mime/structure.js';
import { sampleMessage } from './fixtures.js';

describe('canonical line endings', () => {
  it('turns bare LF into CRLF and keeps existing CRLF', () => {
    expect(toCrlf(Buffer.from('a\nb\r\nc\n')).toString()).toBe('a\r\nb\r\nc\r\n');
    const canonical = Buffer.from('a\r\nb');
    expect(toCrlf(canonical)).toBe(canonical);
  });
});

describe('transfer encodings', () => {
  it('quoted-printable escapes 8-bit bytes, =, trailing space, From and a lone dot; lines stay under 77', () => {
    const text = Buffer.from('Café = ok \nFrom here\n.\n' + 'x'.repeat(200) + '\n', 'utf8');
    const qp = encodeQuotedPrintable(text).toString('latin1');
    expect(qp).toContain('Caf=C3=A9 =3D ok=20\r\n');
    expect(qp).toContain('=46rom here\r\n=2E\r\n');
    for (const line of qp.split('\r\n')) expect(line.length).toBeLessThanOrEqual(76);
    expect(decodeTransferEncoding(Buffer.from(qp, 'latin1'), 'quoted-printable').toString('utf8')).toBe(
      text.toString('utf8').replace(/\n/g, '\r\n'),
    );
  });

  it('base64 round-trips in 76-column lines', () => {
    const bytes = Buffer.from(Array.from({ length: 300 }, (_, i) => i % 256));
    const b64 = encodeBase64Lines(bytes);
    expect(b64.toString('latin1').split('\r\n')[0]).toHaveLength(76);
    expect(decodeTransferEncoding(b64, 'base64').equals(bytes)).toBe(true);
  });
});

describe('preparing an entity for signing', () => {
  it('detects what transport would alter', () => {
    const check = (s: string) => needsEncoding(Buffer.from(s, 'latin1'), 0, Buffer.byteLength(s, 'latin1'));
    expect(check('plain\r\nascii\r\n')).toBe(false);
    expect(check('caf\xe9\r\n')).toBe(true);
    expect(check('trailing \r\n')).toBe(true);
    expect(check('From me\r\n')).toBe(true);
    expect(check('bare\rCR')).toBe(true);
    expect(check('x'.repeat(999))).toBe(true);
  });

  it('re-encodes an 8-bit text leaf as quoted-printable and canonicalises line endings', () => {
    const entity = Buffer.from('Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nÉté\n', 'utf8');
    const prepared = canonicalEntity(entity);
    expect(prepared.ok).toBe(true);
    if (!prepared.ok) return;
    expect(prepared.value.toString('latin1')).toBe(
      'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=C3=89t=C3=A9\r\n',
    );
  });

  it('re-encodes binary leaves inside a multipart as base64, relabels the container and copies the rest', () => {
    const entity = Buffer.concat([
      Buffer.from(
        'Content-Type: multipart/mixed; boundary="b"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n--b\r\n' +
          'Content-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: binary\r\n\r\n',
        'latin1',
      ),
      Buffer.from([0x25, 0x50, 0x44, 0x46, 0x00, 0xff, 0x0a, 0x0d]),
      Buffer.from('\r\n--b--\r\n', 'latin1'),
    ]);
    const prepared = canonicalEntity(entity);
    expect(prepared.ok).toBe(true);
    if (!prepared.ok) return;
    const text = prepared.value.toString('latin1');
    expect(text).toContain('Content-Transfer-Encoding: 7bit\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\n');
    expect(text).toContain('Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERgD/Cg0=\r\n');
    const pdf = parseMime(prepared.value).children[1]!;
    expect(decodeTransferEncoding(prepared.value.subarray(pdf.bodyStart, pdf.bodyEnd), pdf.encoding)).toEqual(
      Buffer.from([0x25, 0x50, 0x44, 0x46, 0x00, 0xff, 0x0a, 0x0d]),
    );
  });

  it('leaves a clean 7-bit entity byte for byte', () => {
    const entity = Buffer.from('Content-Type: text/plain\r\n\r\nhello\r\n', 'latin1');
    const prepared = canonicalEntity(entity);
    expect(prepared.ok && prepared.value.equals(entity)).toBe(true);
  });
});

describe('splitting and recombining a message', () => {
  it('moves Content-* fields inside and keeps routing fields outside', () => {
    const raw = sampleMessage({ from: 'a@x.test', to: 'b@x.test', encoding: '8bit', extra: ['X-Custom: 1'] });
    const { outer, entity } = splitMessage(raw);
    expect(outer.map((f) => f.name)).toEqual(['from', 'to', 'cc', 'date', 'message-id', 'subject', 'x-custom']);
    expect(entity.toString('utf8')).toBe(
      'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nBonjour,\r\nVoici le compte rendu.\r\n',
    );
  });

  it('writes the default Content-Type out when the message has none', () => {
    const raw = Buffer.from('From: a@x.test\nSubject: hi\n\nbody\n');
    expect(splitMessage(raw).entity.toString()).toBe('Content-Type: text/plain; charset=us-ascii\r\n\r\nbody\n');
  });

  it('lets protected fields inside the entity replace the outer ones', () => {
    const raw = sampleMessage({ from: 'a@x.test', to: 'b@x.test', subject: '...' });
    const entity = Buffer.from('Content-Type: text/plain\r\nSubject: Real subject\r\n\r\nbody\r\n');
    const text = recombine(splitMessage(raw).outer, entity).toString();
    expect(text).not.toContain('Subject: ...');
    expect(text).toContain('MIME-Version: 1.0\r\nContent-Type: text/plain\r\nSubject: Real subject\r\n\r\nbody\r\n');
  });
});

describe('PGP/MIME containers', () => {
  const entity = Buffer.from('Content-Type: text/plain\r\n\r\nhello\r\n');
  const signature = '-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n';

  it('builds a multipart/signed that parses back to the exact signed bytes', () => {
    const built = buildSigned(entity, signature, 'pgp-sha256');
    expect(built.contentType).toMatch(/^multipart\/signed; micalg=pgp-sha256; protocol="application\/pgp-signature"; boundary="/);
    const message = Buffer.concat([Buffer.from(`Content-Type: ${built.contentType}\r\n\r\n`), built.body]);
    const parsed = parsePgpMime(message);
    expect(parsed.ok && parsed.value.kind === 'signed').toBe(true);
    if (!parsed.ok || parsed.value.kind !== 'signed') return;
    expect(parsed.value.signedData.equals(entity)).toBe(true);
    expect(parsed.value.micalg).toBe('pgp-sha256');
    expect(parsed.value.signature.toString()).toContain('-----BEGIN PGP SIGNATURE-----\r\n');
  });

  it('builds a multipart/encrypted with the version part and the octet-stream part', () => {
    const built = buildEncrypted('-----BEGIN PGP MESSAGE-----\n\nAAAA\n-----END PGP MESSAGE-----\n');
    const message = Buffer.concat([Buffer.from(`Content-Type: ${built.contentType}\r\n\r\n`), built.body]);
    const root = parseMime(message);
    expect(root.children.map((c) => `${c.type}/${c.subtype}`)).toEqual(['application/pgp-encrypted', 'application/octet-stream']);
    expect(message.subarray(root.children[0]!.bodyStart, root.children[0]!.bodyEnd).toString()).toBe('Version: 1\r\n');
    const parsed = parsePgpMime(message);
    expect(parsed.ok && parsed.value.kind === 'encrypted' && parsed.value.data.toString().startsWith('-----BEGIN PGP MESSAGE')).toBe(true);
  });

  it('ignores what is not PGP/MIME, refuses broken containers with typed codes', () => {
    const codeOf = (ct: string, body: string) => {
      const r = parsePgpMime(Buffer.from(`Content-Type: ${ct}\r\n\r\n${body}`));
      return r.ok ? r.value.kind : r.code;
    };
    expect(codeOf('text/plain', 'hi')).toBe('none');
    expect(codeOf('multipart/signed; protocol="application/pkcs7-signature"; boundary=b', '--b\r\n\r\nx\r\n--b--')).toBe('none');
    expect(codeOf('multipart/encrypted; protocol="application/pgp-encrypted"; boundary=b', 'no parts')).toBe('malformed');
    expect(
      codeOf(
        'multipart/encrypted; protocol="application/pgp-encrypted"; boundary=b',
        '--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 2\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\nx\r\n--b--\r\n',
      ),
    ).toBe('unsupported');
    expect(
      codeOf(
        'multipart/signed; protocol="application/pgp-signature"; boundary=b',
        '--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b\r\nContent-Type: text/plain\r\n\r\nsig\r\n--b--\r\n',
      ),
    ).toBe('malformed');
  });
});
