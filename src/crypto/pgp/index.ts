/**
 * The OpenPGP half of the security agent (RFC 3156 PGP/MIME): a library the pipeline calls, importing
 * nothing from the SMTP, IMAP or pipeline code. Every operation returns a `PgpResult`: a value, or a
 * failure with one code from `PgpFailureCode`.
 */
export { fail, ok, type PgpFailure, type PgpFailureCode, type PgpResult } from './failures.js';
export { MIN_RSA_BITS, PGP_CONFIG } from './policy.js';
export {
  generateMailboxKey,
  type GenerateMailboxKeyOptions,
  type MailboxKeyAlgorithm,
  type MailboxKeyPair,
} from './key-generate.js';
export {
  armorPrivateKey,
  armorPublicKey,
  binaryPublicKey,
  readPrivateKey,
  readPublicKey,
  readPublicKeys,
  type KeyInput,
} from './key-io.js';
export { checkKeyStrength, fingerprintOf, keyInfo, userIdsOf, verifiedEmails, type KeyInfo } from './key-info.js';
export { staticResolver, type PublicKeyResolver } from './resolver.js';
export { normalizeAddress } from './address.js';
export {
  encryptMessage,
  signAndEncryptMessage,
  signMessage,
  type EncryptOptions,
  type SignAndEncryptOptions,
  type SignOptions,
} from './outgoing.js';
export {
  processIncoming,
  type IncomingOptions,
  type IncomingResult,
  type PgpVerification,
} from './incoming.js';
export { parsePgpMime, type PgpMime } from './pgp-mime-parse.js';
export type { PrivateKey, PublicKey } from 'openpgp';
