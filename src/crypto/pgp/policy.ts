import { config as libraryDefaults, enums, type Config, type PartialConfig } from 'openpgp';

/**
 * The algorithm policy of the OpenPGP agent, passed explicitly to every openpgp call so that a change of
 * the library's global defaults cannot silently change what we produce or accept.
 *
 * Produced: v4 keys and packets (RFC 4880), SEIPDv1 with MDC, AES-256, SHA-256, no compression — what GnuPG
 * 2.2 reads. SEIPDv2/AEAD is used only when every recipient key advertises it (openpgp's rule); keys we
 * generate do not advertise it, so mail between our mailboxes stays readable by gpg 2.2 clients.
 *
 * Accepted: RSA from 2048 bits, ECC except the curves openpgp rejects; no DSA or ElGamal; no MD5, RIPEMD-160
 * or SHA-1 message signatures; no unauthenticated (MDC-less) encryption.
 */
export const MIN_RSA_BITS = 2048;

/** Bound on what a compressed OpenPGP message may expand to (a decompression bomb is `malformed`). */
export const MAX_DECOMPRESSED_BYTES = 128 * 1024 * 1024;

export const PGP_CONFIG: PartialConfig = Object.freeze({
  v6Keys: false,
  aeadProtect: false,
  preferredHashAlgorithm: enums.hash.sha256,
  preferredSymmetricAlgorithm: enums.symmetric.aes256,
  preferredCompressionAlgorithm: enums.compression.uncompressed,
  minRSABits: MIN_RSA_BITS,
  allowUnauthenticatedMessages: false,
  allowUnauthenticatedStream: false,
  allowInsecureDecryptionWithSigningKeys: false,
  allowInsecureVerificationWithReformattedKeys: false,
  s2kType: enums.s2k.iterated,
  maxDecompressedMessageSize: MAX_DECOMPRESSED_BYTES,
  rejectHashAlgorithms: new Set([enums.hash.md5, enums.hash.ripemd]),
  rejectMessageHashAlgorithms: new Set([enums.hash.md5, enums.hash.ripemd, enums.hash.sha1]),
  rejectPublicKeyAlgorithms: new Set([enums.publicKey.elgamal, enums.publicKey.dsa]),
  rejectCurves: new Set([enums.curve.secp256k1]),
  showVersion: false,
  showComment: false,
});

/** The same policy as a full Config, for the Key and User methods that take one (they do not merge defaults). */
export const PGP_FULL_CONFIG: Config = Object.freeze({ ...libraryDefaults, ...PGP_CONFIG });

/** The RFC 3156 `micalg` value for an OpenPGP hash algorithm id (RFC 3156 §5, RFC 4880 §9.4 names). */
export function micalgFor(hashAlgorithm: number | null): string | null {
  switch (hashAlgorithm) {
    case enums.hash.sha256:
      return 'pgp-sha256';
    case enums.hash.sha384:
      return 'pgp-sha384';
    case enums.hash.sha512:
      return 'pgp-sha512';
    case enums.hash.sha224:
      return 'pgp-sha224';
    case enums.hash.sha3_256:
      return 'pgp-sha3-256';
    case enums.hash.sha3_512:
      return 'pgp-sha3-512';
    default:
      return null;
  }
}

/** A readable name for an OpenPGP hash algorithm id, e.g. `sha256`. */
export function hashName(hashAlgorithm: number | null): string | null {
  if (hashAlgorithm === null) return null;
  for (const [name, id] of Object.entries(enums.hash)) if (id === hashAlgorithm) return name;
  return `hash-${hashAlgorithm}`;
}
