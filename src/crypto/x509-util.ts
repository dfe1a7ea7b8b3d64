/**
 * One place that prepares @peculiar/x509: it needs `reflect-metadata` loaded before it (tsyringe), and a
 * WebCrypto provider (Node's). Import `x509` from here rather than from the package so the set-up has run.
 */
import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
export const subtle = webcrypto.subtle;

/** PEM armour with an explicit label (the library writes `BEGIN CRL`; OpenSSL and RFC 7468 say `X509 CRL`). */
export function toPem(der: ArrayBuffer | Uint8Array, label: string): string {
  const b64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Every PEM block of one label in a text, as DER. */
export function pemBlocks(text: string, label: string): Buffer[] {
  const re = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+?)-----END ${label}-----`, 'g');
  return [...text.matchAll(re)].map((m) => Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64'));
}

/** A random positive 16-byte certificate serial, hex, minimally encoded (first byte 0x01..0x7f). */
export function randomSerialHex(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) || 0x01;
  return b.toString('hex');
}

/** DER INTEGER of a non-negative bigint (for the CRL number extension, whose value is a bare INTEGER). */
export function derInteger(value: bigint): Uint8Array {
  if (value < 0n) throw new RangeError('negative INTEGER not supported');
  let hex = value.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  let body = Buffer.from(hex, 'hex');
  if (body[0]! & 0x80) body = Buffer.concat([Buffer.of(0), body]);
  if (body.length > 127) throw new RangeError('INTEGER too long');
  return Uint8Array.from(Buffer.concat([Buffer.of(0x02, body.length), body]));
}

export const OID = {
  serialNumber: '2.5.4.5',
  surname: '2.5.4.4',
  givenName: '2.5.4.42',
  commonName: '2.5.4.3',
  organisation: '2.5.4.10',
  organisationalUnit: '2.5.4.11',
  country: '2.5.4.6',
  crlNumber: '2.5.29.20',
} as const;
