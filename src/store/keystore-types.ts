/**
 * The keystore's storage port, beside `Store` (same database, same engines): the certificates and private keys
 * of our own mailboxes, and the public certificates and keys of correspondents we encrypt to.
 *
 * Private keys reach the store already sealed with the master key (`src/crypto/keystore.ts`); no engine ever
 * sees one in clear. Certificates and public keys are public data and stay in clear, with the fields a listing
 * or a lookup needs copied into columns (fingerprint, serial, names, validity).
 */

export const CREDENTIAL_USAGES = ['auth', 'sign', 'encrypt', 'openpgp'] as const;
export type CredentialUsage = (typeof CREDENTIAL_USAGES)[number];

export const KEY_FORMATS = ['x509', 'openpgp'] as const;
export type KeyFormat = (typeof KEY_FORMATS)[number];

export const CORRESPONDENT_SOURCES = ['directory', 'import', 'message'] as const;
export type CorrespondentSource = (typeof CORRESPONDENT_SOURCES)[number];

/** One private key of a mailbox with its certificate (x509) or its public key (openpgp). */
export interface CredentialRow {
  id: number;
  mailboxId: number;
  usage: CredentialUsage;
  format: KeyFormat; // 'openpgp' exactly when usage is 'openpgp'
  /** PEM certificate, or the armored OpenPGP public key. */
  certificate: string;
  /** PEM of the intermediates (not the trust anchor), or null. */
  chainPem: string | null;
  /** PKCS#8 DER (x509) or the armored private key (openpgp), sealed with the master key. */
  sealedKey: Buffer;
  /** SHA-256 of the certificate DER, or the OpenPGP primary key fingerprint; lower-case hex. */
  fingerprint: string;
  /** Certificate serial (lower-case hex, no leading zero bytes), or the OpenPGP key ID. */
  serial: string;
  issuer: string;
  subject: string;
  notBefore: number; // ms since epoch
  notAfter: number | null; // null: an OpenPGP key without expiry
  createdAt: number;
  revokedAt: number | null;
  revocationReason: string | null;
}

export type NewCredential = Omit<CredentialRow, 'id' | 'createdAt' | 'revokedAt' | 'revocationReason'>;

/** A public certificate or key of someone else, used to encrypt to them. */
export interface CorrespondentKeyRow {
  id: number;
  address: string; // lower-case
  format: KeyFormat;
  /** PEM certificate, or the armored OpenPGP public key. */
  certificate: string;
  fingerprint: string;
  source: CorrespondentSource;
  addedAt: number;
}

export type NewCorrespondentKey = Omit<CorrespondentKeyRow, 'id' | 'addedAt'>;

export interface KeystoreReads {
  /** Credentials of one mailbox, or of every mailbox; oldest first (by id). */
  listCredentials(mailboxId?: number): Promise<CredentialRow[]>;
  getCredential(id: number): Promise<CredentialRow | null>;
  /** The keys held for one correspondent address (lower-cased here), oldest first. */
  listCorrespondentKeys(address: string): Promise<CorrespondentKeyRow[]>;
}

export interface KeystoreTx extends KeystoreReads {
  /**
   * Serialises writers of one mailbox's credentials until the end of the unit of work (PostgreSQL: the mailbox
   * row's lock; SQLite units of work are serialised already), so "check, then insert" cannot race.
   */
  lockMailbox(mailboxId: number): Promise<void>;
  /** Inserts, or returns the row already there for the same mailbox, usage and fingerprint (`created` false). */
  insertCredential(c: NewCredential): Promise<{ row: CredentialRow; created: boolean }>;
  /** Marks a credential revoked; false when it does not exist or was revoked already. */
  revokeCredential(id: number, revokedAt: number, reason: string): Promise<boolean>;
  /** Inserts, or returns the row already there for the same address and fingerprint (`created` false). */
  insertCorrespondentKey(k: NewCorrespondentKey): Promise<{ row: CorrespondentKeyRow; created: boolean }>;
  deleteCorrespondentKey(id: number): Promise<boolean>;
}

export interface KeystoreStore extends KeystoreReads {
  readonly engine: 'sqlite' | 'postgres';
  /** A unit of work: committed when `work` resolves, rolled back when it throws. */
  transaction<T>(work: (tx: KeystoreTx) => Promise<T>): Promise<T>;
}
