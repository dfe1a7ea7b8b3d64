import { enums, type Key, type PublicKey, type Subkey } from 'openpgp';
import { userIdEmail } from './address.js';
import { fail, type PgpFailure } from './failures.js';
import { MIN_RSA_BITS, PGP_FULL_CONFIG } from './policy.js';

/** What the rest of the system needs to know about a key, without touching openpgp objects. */
export interface KeyInfo {
  /** Primary key fingerprint, 40 lower-case hex digits for v4 keys. */
  fingerprint: string;
  /** Primary key ID, 16 lower-case hex digits. */
  keyId: string;
  /** e.g. `rsaEncryptSign`, `eddsaLegacy`. */
  algorithm: string;
  /** RSA modulus size, when RSA. */
  bits: number | null;
  /** ECC curve name, when ECC. */
  curve: string | null;
  created: Date;
  /** Every user ID string, in key order. */
  userIds: string[];
  /** The normalised emails of those user IDs. */
  emails: string[];
  subkeys: { fingerprint: string; algorithm: string; bits: number | null; curve: string | null }[];
  isPrivate: boolean;
}

export function fingerprintOf(key: Key): string {
  return key.getFingerprint().toLowerCase();
}

export function userIdsOf(key: Key): string[] {
  return key.getUserIDs();
}

export function keyInfo(key: Key): KeyInfo {
  const algo = key.getAlgorithmInfo();
  const userIds = key.getUserIDs();
  return {
    fingerprint: fingerprintOf(key),
    keyId: key.getKeyID().toHex().toLowerCase(),
    algorithm: algo.algorithm,
    bits: algo.bits ?? null,
    curve: algo.curve ?? null,
    created: key.getCreationTime(),
    userIds,
    emails: [...new Set(userIds.map(userIdEmail).filter((e): e is string => e !== null))],
    subkeys: key.subkeys.map((s) => {
      const info = s.getAlgorithmInfo();
      return { fingerprint: s.getFingerprint().toLowerCase(), algorithm: info.algorithm, bits: info.bits ?? null, curve: info.curve ?? null };
    }),
    isPrivate: key.isPrivate(),
  };
}

const REFUSED_ALGORITHMS = new Set<string>(['dsa', 'elgamal']);
const REFUSED_CURVES = new Set<string>([enums.curve.secp256k1]);

/**
 * Refuses weak key material anywhere in the key (primary and every subkey): RSA below 2048 bits, DSA,
 * ElGamal, rejected curves. Strict on purpose: a strong primary with a weak subkey is refused too.
 */
export function checkKeyStrength(key: Key): PgpFailure | null {
  const parts: (Key | Subkey)[] = [key, ...key.subkeys];
  for (const part of parts) {
    const info = part.getAlgorithmInfo();
    const id = part.getKeyID().toHex().toLowerCase();
    if (info.algorithm.startsWith('rsa') && (info.bits ?? 0) < MIN_RSA_BITS) {
      return fail('weak-key', `RSA key ${id} has ${info.bits ?? 0} bits (minimum ${MIN_RSA_BITS})`);
    }
    if (REFUSED_ALGORITHMS.has(info.algorithm)) return fail('weak-key', `key ${id} uses refused algorithm ${info.algorithm}`);
    if (info.curve !== undefined && REFUSED_CURVES.has(info.curve)) return fail('weak-key', `key ${id} uses refused curve ${info.curve}`);
  }
  return null;
}

/**
 * The normalised emails of the user IDs that are currently valid (a good self-certification, not revoked,
 * key not expired at `date`).
 */
export async function verifiedEmails(key: PublicKey, date = new Date()): Promise<string[]> {
  const out = new Set<string>();
  try {
    await key.verifyPrimaryKey(date, undefined, PGP_FULL_CONFIG);
  } catch {
    return [];
  }
  for (const user of key.users) {
    if (!user.userID) continue;
    try {
      await user.verify(date, PGP_FULL_CONFIG);
    } catch {
      continue;
    }
    const email = userIdEmail(user.userID.userID);
    if (email) out.add(email);
  }
  return [...out];
}
