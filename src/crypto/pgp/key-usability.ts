import type { KeyID, PrivateKey, PublicKey } from 'openpgp';
import { errorText, fail, type PgpFailure, type PgpFailureCode } from './failures.js';
import { checkKeyStrength } from './key-info.js';
import { PGP_FULL_CONFIG } from './policy.js';

/**
 * Whether a key can be used now for a purpose, with the precise reason when it cannot. openpgp reports
 * validity problems as error texts; `keyErrorCode` maps them to failure codes for every caller.
 */

/** Maps an openpgp key-validity error text to a code (`fallback` when the text names no known cause). */
export function keyErrorCode(err: unknown, fallback: PgpFailureCode): PgpFailureCode {
  const text = errorText(err);
  if (/revoked/i.test(text)) return 'key-revoked';
  if (/key is expired|key.*expired|expired.*key/i.test(text)) return 'key-expired';
  if (/too weak|shorter than|rejected|insecure key|unsupported curve/i.test(text)) return 'weak-key';
  return fallback;
}

function keyId(key: PublicKey): string {
  return key.getKeyID().toHex().toLowerCase();
}

/** The primary key is strong, self-certified, not revoked and not expired at `date`. */
export async function checkPrimaryKey(key: PublicKey, date: Date): Promise<PgpFailure | null> {
  const weak = checkKeyStrength(key);
  if (weak) return weak;
  try {
    await key.verifyPrimaryKey(date, undefined, PGP_FULL_CONFIG);
    return null;
  } catch (err) {
    return fail(keyErrorCode(err, 'malformed'), `key ${keyId(key)}: ${errorText(err)}`);
  }
}

/** The key has a valid encryption-capable (sub)key at `date`. */
export async function checkEncryptionKey(key: PublicKey, date: Date): Promise<PgpFailure | null> {
  const primary = await checkPrimaryKey(key, date);
  if (primary) return primary;
  try {
    await key.getEncryptionKey(undefined, date, undefined, PGP_FULL_CONFIG);
    return null;
  } catch (err) {
    return fail(keyErrorCode(err, 'no-recipient-key'), `key ${keyId(key)} has no usable encryption key: ${errorText(err)}`);
  }
}

/** The private key is unlocked and has a valid signing-capable (sub)key at `date`. */
export async function checkSigningKey(key: PrivateKey, date: Date): Promise<PgpFailure | null> {
  if (!key.isPrivate()) return fail('no-signing-key', `key ${keyId(key)} is a public key`);
  if (!key.isDecrypted()) return fail('key-locked', `private key ${keyId(key)} is locked`);
  const primary = await checkPrimaryKey(key, date);
  if (primary) return primary;
  try {
    await key.getSigningKey(undefined, date, undefined, PGP_FULL_CONFIG);
    return null;
  } catch (err) {
    return fail(keyErrorCode(err, 'no-signing-key'), `key ${keyId(key)} has no usable signing key: ${errorText(err)}`);
  }
}

/** The (sub)key `id` of `key` is a valid signing key at `date`. */
export async function checkSigningSubkey(key: PublicKey, id: KeyID, date: Date): Promise<PgpFailure | null> {
  try {
    await key.getSigningKey(id, date, undefined, PGP_FULL_CONFIG);
    return null;
  } catch (err) {
    return fail(keyErrorCode(err, 'bad-signature'), `key ${id.toHex()} cannot sign: ${errorText(err)}`);
  }
}
