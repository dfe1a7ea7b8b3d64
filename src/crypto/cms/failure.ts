/**
 * Every refusal of the S/MIME security agent carries one code from this union (STYLE.md §9), plus the party
 * it concerns, so that an expired *sender* certificate is never reported as a recipient problem. The pipeline
 * maps the codes to its Refusal table; the detail is for logs and audit and never holds message content.
 */
export const SMIME_FAILURE_CODES = [
  'malformed', // not decodable: MIME, base64, CMS or certificate structure
  'unsupported-algorithm', // well-formed but an algorithm or structure we do not implement
  'weak-digest', // MD5, or SHA-1 unless allowed
  'weak-cipher', // 3DES, DES, RC2, RC4 content encryption
  'weak-key', // RSA below the minimum size, or a curve not allowed
  'bad-signature', // the signature or the message digest does not verify: content or signature altered
  'no-signer-certificate', // the SignerInfo names a certificate the message does not carry
  'chain-untrusted', // no path to a configured trust anchor, or an invalid path
  'cert-expired',
  'cert-not-yet-valid',
  'cert-revoked',
  'revocation-unknown', // revocation required but no valid CRL could be had
  'key-usage', // the certificate is not for this use (keyUsage, extKeyUsage)
  'identity-mismatch', // the signer certificate does not name the From address (or its domain)
  'header-mismatch', // an outer header differs from the signed, wrapped one
  'cannot-decrypt', // no usable RecipientInfo for our keys, or the content does not decrypt
  'no-recipient-certificate', // outbound encryption without a single recipient certificate
  'not-signed', // a signature is required and there is none
  'not-encrypted', // encryption is required and the message is not encrypted
] as const;

export type SmimeFailureCode = (typeof SMIME_FAILURE_CODES)[number];

/** Whose certificate or which part a failure is about. */
export type SmimeParty = 'signer' | 'recipient' | 'sender' | 'message';

export interface CertificateRef {
  subject: string;
  issuer: string;
  serialNumber: string;
  fingerprint256: string;
}

export interface SmimeFailure {
  ok: false;
  code: SmimeFailureCode;
  party: SmimeParty;
  detail: string;
  certificate?: CertificateRef;
}

export class SmimeError extends Error {
  constructor(
    readonly code: SmimeFailureCode,
    readonly detail: string,
    readonly party: SmimeParty = 'message',
    readonly certificate?: CertificateRef,
  ) {
    super(`${code}: ${detail}`);
    this.name = 'SmimeError';
  }

  toFailure(): SmimeFailure {
    const f: SmimeFailure = { ok: false, code: this.code, party: this.party, detail: this.detail };
    if (this.certificate) f.certificate = this.certificate;
    return f;
  }
}

export function malformed(detail: string, party: SmimeParty = 'message'): SmimeError {
  return new SmimeError('malformed', detail, party);
}
