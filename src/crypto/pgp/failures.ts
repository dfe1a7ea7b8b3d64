/**
 * Typed failure causes of the OpenPGP agent (STYLE §9). The pipeline maps each code to its refusal table;
 * `detail` adds precision for the log and audit (key IDs, addresses, never message content).
 */
export type PgpFailureCode =
  /** MIME or OpenPGP structure that cannot be read (bad armor, missing part, wrong part types). */
  | 'malformed'
  /** Well-formed PGP/MIME of a version or form this agent does not handle (e.g. `Version: 2`). */
  | 'unsupported'
  /** None of the mailbox's private keys can open the message (it was not encrypted to this mailbox). */
  | 'cannot-decrypt'
  /** The ciphertext was opened but failed its integrity check (modified, or no MDC/AEAD protection). */
  | 'integrity-failure'
  /** The signature does not match the signed data. */
  | 'bad-signature'
  /** No key known for the sender matches the signature's issuer. */
  | 'unknown-signer'
  /** The signing key is valid but none of its user IDs carries the From address. */
  | 'identity-mismatch'
  /** The message is neither signed nor acceptable unsigned (only when a signature is required). */
  | 'unsigned'
  /** RSA below 2048 bits, DSA, ElGamal or a rejected curve. */
  | 'weak-key'
  /** A hash or cipher algorithm that is refused (MD5, SHA-1 message signatures...). */
  | 'weak-algorithm'
  /** The key (or the subkey needed) has expired. */
  | 'key-expired'
  /** The key (or the subkey needed) is revoked. */
  | 'key-revoked'
  /** Outbound: no usable public encryption key for a recipient. */
  | 'no-recipient-key'
  /** Outbound: the sender's private key cannot sign (no signing-capable key, or locked). */
  | 'no-signing-key'
  /** A private key is passphrase-protected and no passphrase was given. */
  | 'key-locked'
  /** The passphrase given does not unlock the private key. */
  | 'bad-passphrase'
  /** The public key resolver failed (directory unavailable): a temporary condition. */
  | 'key-lookup-failed';

export interface PgpFailure {
  ok: false;
  code: PgpFailureCode;
  /** One line for the log and audit: never message content, never key material. */
  detail: string;
  /** The address concerned, when one is (a recipient without key, the sender of a bad signature). */
  address?: string;
}

export type PgpResult<T> = { ok: true; value: T } | PgpFailure;

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

export function fail(code: PgpFailureCode, detail: string, address?: string): PgpFailure {
  return address === undefined ? { ok: false, code, detail } : { ok: false, code, detail, address };
}

/** The message of an unknown thrown value, shortened for a log line. */
export function errorText(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
