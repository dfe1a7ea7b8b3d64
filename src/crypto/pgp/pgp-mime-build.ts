import { randomBytes } from 'node:crypto';
import { textToCrlf } from './canonical.js';

/**
 * The two RFC 3156 containers, built around bytes the caller has already signed or encrypted.
 * Every line ends with CRLF; the boundary is random and checked against the content.
 */

export interface Container {
  /** The Content-Type field value for the container. */
  contentType: string;
  body: Buffer;
}

function boundaryFor(...contents: Buffer[]): string {
  for (;;) {
    const boundary = `=_pgp_${randomBytes(15).toString('base64url')}`;
    const delimiter = Buffer.from(`--${boundary}`, 'latin1');
    if (!contents.some((c) => c.includes(delimiter))) return boundary;
  }
}

/** multipart/signed (RFC 3156 §5): the signed entity byte for byte, then the detached armored signature. */
export function buildSigned(signedEntity: Buffer, armoredSignature: string, micalg: string): Container {
  const signature = textToCrlf(armoredSignature.trimEnd() + '\n');
  const boundary = boundaryFor(signedEntity, signature);
  const body = Buffer.concat([
    Buffer.from(`This is an OpenPGP/MIME signed message (RFC 3156).\r\n--${boundary}\r\n`, 'latin1'),
    signedEntity,
    Buffer.from(
      `\r\n--${boundary}\r\n` +
        'Content-Type: application/pgp-signature; name="signature.asc"\r\n' +
        'Content-Description: OpenPGP digital signature\r\n' +
        'Content-Disposition: attachment; filename="signature.asc"\r\n\r\n',
      'latin1',
    ),
    signature,
    Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'),
  ]);
  return {
    contentType: `multipart/signed; micalg=${micalg}; protocol="application/pgp-signature"; boundary="${boundary}"`,
    body,
  };
}

/** multipart/encrypted (RFC 3156 §4): the version part, then the armored OpenPGP message. */
export function buildEncrypted(armoredMessage: string): Container {
  const data = textToCrlf(armoredMessage.trimEnd() + '\n');
  const boundary = boundaryFor(data);
  const body = Buffer.concat([
    Buffer.from(
      `This is an OpenPGP/MIME encrypted message (RFC 3156).\r\n--${boundary}\r\n` +
        'Content-Type: application/pgp-encrypted\r\n' +
        'Content-Description: PGP/MIME version identification\r\n\r\n' +
        `Version: 1\r\n\r\n--${boundary}\r\n` +
        'Content-Type: application/octet-stream; name="encrypted.asc"\r\n' +
        'Content-Description: OpenPGP encrypted message\r\n' +
        'Content-Disposition: inline; filename="encrypted.asc"\r\n\r\n',
      'latin1',
    ),
    data,
    Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'),
  ]);
  return {
    contentType: `multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${boundary}"`,
    body,
  };
}

/** The complete entity (header and body) of a container, e.g. to encrypt a multipart/signed. */
export function containerEntity(container: Container): Buffer {
  return Buffer.concat([Buffer.from(`Content-Type: ${container.contentType}\r\n\r\n`, 'latin1'), container.body]);
}
