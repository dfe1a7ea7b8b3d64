import { generateKey, type PrivateKey, type PublicKey } from 'openpgp';
import { normalizeAddress } from './address.js';
import { fingerprintOf } from './key-info.js';
import { PGP_CONFIG } from './policy.js';

/**
 * Key pairs for a mailbox: one user ID `Name <address>`, a certify+sign primary key and an encryption
 * subkey, v4 packets (GnuPG 2.2 imports them).
 *
 * - `curve25519Legacy` (default): EdDSA (ed25519) primary, ECDH cv25519 subkey — fast, small.
 * - `rsa3072` / `rsa4096`: RSA primary and subkey.
 *
 * openpgp's `curve25519` type (RFC 9580 Ed25519/X25519 algorithms) is deliberately not offered: gpg 2.2
 * cannot read those keys.
 */
export type MailboxKeyAlgorithm = 'curve25519Legacy' | 'rsa3072' | 'rsa4096';

export interface GenerateMailboxKeyOptions {
  address: string;
  /** Display name for the user ID; omitted gives a bare `<address>` user ID. */
  name?: string;
  algorithm?: MailboxKeyAlgorithm;
  /** Seconds from creation until expiry; 0 or omitted: no expiry. */
  expiresInSeconds?: number;
  date?: Date;
}

export interface MailboxKeyPair {
  privateKey: PrivateKey;
  publicKey: PublicKey;
  fingerprint: string;
  /** Revocation certificate to keep aside (armored). */
  revocationCertificate: string;
}

export async function generateMailboxKey(options: GenerateMailboxKeyOptions): Promise<MailboxKeyPair> {
  const email = normalizeAddress(options.address);
  if (!/^[^\s@<>]+@[^\s@<>]+$/.test(email)) throw new TypeError(`not a mail address: ${options.address}`);
  const algorithm = options.algorithm ?? 'curve25519Legacy';
  const userIDs = [options.name ? { name: options.name, email } : { email }];
  const common = {
    userIDs,
    keyExpirationTime: options.expiresInSeconds ?? 0,
    date: options.date ?? new Date(),
    format: 'object' as const,
    config: PGP_CONFIG,
  };
  const pair =
    algorithm === 'curve25519Legacy'
      ? await generateKey({ ...common, type: 'ecc', curve: 'curve25519Legacy' })
      : await generateKey({ ...common, type: 'rsa', rsaBits: algorithm === 'rsa3072' ? 3072 : 4096 });
  return {
    privateKey: pair.privateKey,
    publicKey: pair.publicKey,
    fingerprint: fingerprintOf(pair.publicKey),
    revocationCertificate: pair.revocationCertificate,
  };
}
