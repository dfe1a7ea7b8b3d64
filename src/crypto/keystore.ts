/**
 * The keystore of the security agent: each mailbox's private keys and certificates (authentication,
 * signature, encryption, OpenPGP) and the certificates and public keys of correspondents, in the database
 * (both engines), so that every gateway process sharing it sees the same keys.
 *
 * Private keys are sealed with the master key before they reach the store (PKCS#8 DER for X.509 keys, the
 * unprotected armored key for OpenPGP), associated data `keystoreAad.privateKey(...)` naming the mailbox, the
 * usage and the fingerprint, so a sealed key copied onto another row fails to open. They are opened in memory
 * only, by `credentialsFor`.
 *
 * Which credential serves which use (`credentialsFor`):
 * - `auth`: the newest valid `auth` credential.
 * - `sign`: the newest valid `sign` credential; a mailbox that never had one signs with its `auth` certificate
 *   when that certificate allows signing (an organisation certificate is used for everything).
 * - `encrypt` (decryption keys): every RSA key whose certificate allows key encipherment, `encrypt` or `auth`,
 *   expired and revoked ones included (mail encrypted to them before still has to open), valid ones first.
 * - `openpgp`: the newest valid OpenPGP key signs; every OpenPGP key decrypts.
 */
import { audit } from '../audit/journal.js';
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import type { PrivateKey, PublicKey } from 'openpgp';
import {
  type CaName,
  devPkiPaths,
  type DevPkiOptions,
  issueOrganisationCertificate,
  issuePractitionerCertificates,
  loadMailboxCredential,
  type MailboxCertKind,
  readCrlEntries,
  revokeCertificate,
} from './devpki.js';
import {
  armorPrivateKey,
  armorPublicKey,
  generateMailboxKey,
  keyInfo,
  type MailboxKeyAlgorithm,
  type PublicKeyResolver,
  readPrivateKey,
  readPublicKey,
} from './pgp/index.js';
import type { Keyring } from './seal.js';
import {
  Certificate,
  certificateMatchesAddress,
  type DecryptionKey,
  DEFAULT_POLICY,
  KEY_USAGE,
  Pkcs12Error,
  readPkcs12,
  type SigningCredential,
  SmimeError,
} from './smime/index.js';
import { x509 } from './x509-util.js';
import { openKeystoreStore } from '../store/keystore.js';
import type {
  CorrespondentSource,
  CredentialRow,
  CredentialUsage,
  KeystoreStore,
  NewCredential,
} from '../store/keystore-types.js';
import type { MailboxRow, MailboxType, Store } from '../store/types.js';

export { CREDENTIAL_USAGES, type CredentialUsage, type CorrespondentSource } from '../store/keystore-types.js';

/** Associated-data labels of what the keystore seals (beside `aad` of seal.ts). */
export const keystoreAad = {
  privateKey: (address: string, usage: CredentialUsage, fingerprint: string) =>
    `keystore-key|${address.toLowerCase()}|${usage}|${fingerprint.toLowerCase()}`,
} as const;

export const KEYSTORE_FAILURE_CODES = [
  'unknown-mailbox', // no such mailbox in the store
  'unsupported-mailbox-type', // e.g. a patient mailbox has no IGC-Santé certificate
  'missing-identity', // the mailbox lacks what the dev PKI needs (owner idNat_PS / idNat_Struct)
  'malformed', // unreadable certificate, key or PKCS#12 content
  'bad-password', // the PKCS#12 password or the OpenPGP passphrase does not open the key
  'key-mismatch', // the private key is not the certificate's
  'weak-key', // RSA below 2048 bits, or a curve not accepted
  'unsupported-algorithm', // a key type the agent cannot use (or EC for S/MIME decryption)
  'ca-certificate', // a CA certificate offered as a mailbox certificate
  'cert-expired',
  'cert-not-yet-valid',
  'key-usage', // the certificate's keyUsage / extKeyUsage does not allow this usage
  'identity-mismatch', // the certificate or key does not name the address
  'no-credential', // nothing valid for this usage
  'not-found', // no credential matches the serial or fingerprint given
  'ambiguous', // several credentials match it
  'no-dev-pki', // the dev PKI is needed and was not configured
] as const;
export type KeystoreFailureCode = (typeof KEYSTORE_FAILURE_CODES)[number];

export class KeystoreError extends Error {
  constructor(
    readonly code: KeystoreFailureCode,
    message: string,
  ) {
    super(message);
    this.name = 'KeystoreError';
  }
}

/** Reasons accepted by `revoke` (RFC 5280 §5.3.1 names, as in the CRL). */
export const REVOCATION_REASONS = [
  'unspecified',
  'keyCompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'privilegeWithdrawn',
] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

export type CredentialStatus = 'valid' | 'revoked' | 'expired' | 'not-yet-valid';

/** A credential as listed: public data only. */
export interface CredentialInfo {
  id: number;
  address: string;
  usage: CredentialUsage;
  format: 'x509' | 'openpgp';
  subject: string;
  issuer: string;
  serial: string;
  fingerprint: string;
  notBefore: Date;
  notAfter: Date | null;
  createdAt: Date;
  revokedAt: Date | null;
  revocationReason: string | null;
  status: CredentialStatus;
  /** Certificate (PEM) or armored OpenPGP public key. */
  certificate: string;
}

export interface ImportOptions {
  /** Accept an expired or not yet valid certificate, or one that does not name the address. */
  force?: boolean;
}

export interface ImportResult {
  credential: CredentialInfo;
  /** false: the same key and certificate were already held for this usage. */
  created: boolean;
}

export interface IssueDevOptions {
  /** Practitioner names (PER, CAB); default from the address's local part (`jean.dupont` → Jean DUPONT). */
  givenName?: string;
  surname?: string;
  /** Practitioner's organisation (OU); default the mail domain. */
  organisation?: string;
  /** OpenPGP key algorithm, or false for no OpenPGP key (default curve25519Legacy). */
  openpgp?: MailboxKeyAlgorithm | false;
}

export interface IssueDevResult {
  address: string;
  /** One entry per credential the mailbox now holds from the dev PKI and OpenPGP generation. */
  credentials: { usage: CredentialUsage; serial: string; fingerprint: string; created: boolean }[];
}

export interface RevokeResult {
  address: string;
  fingerprint: string;
  serial: string;
  usages: CredentialUsage[];
  /** Every matching row was revoked already. */
  alreadyRevoked: boolean;
  /** The dev CRL rewritten, when the certificate came from the dev PKI. */
  crlFile: string | null;
}

export interface OpenPgpCredential {
  /** The newest valid key: signs, and is the key others encrypt to. */
  privateKey: PrivateKey;
  publicKey: PublicKey;
  fingerprint: string;
  /** Every OpenPGP key of the mailbox, newest first (old mail stays readable). */
  decryptionKeys: PrivateKey[];
}

/** What `credentialsFor` returns per usage: the S/MIME agent's shapes, or unlocked OpenPGP keys. */
export interface CredentialsByUsage {
  auth: SigningCredential;
  sign: SigningCredential;
  encrypt: DecryptionKey[];
  openpgp: OpenPgpCredential;
}

export interface KeystoreOptions {
  store: Store;
  keyring: Keyring;
  /** The dev PKI (issueDev, and CRL updates when revoking its certificates). */
  pki?: DevPkiOptions;
  now?: () => number;
}

const EKU = {
  any: '2.5.29.37.0',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  emailProtection: '1.3.6.1.5.5.7.3.4',
} as const;

const PRACTITIONER_TYPES: readonly MailboxType[] = ['PER', 'CAB'];
const ORGANISATION_TYPES: readonly MailboxType[] = ['ORG', 'APP'];

const CRL_REASON: Record<RevocationReason, x509.X509CrlReason> = {
  unspecified: x509.X509CrlReason.unspecified,
  keyCompromise: x509.X509CrlReason.keyCompromise,
  affiliationChanged: x509.X509CrlReason.affiliationChanged,
  superseded: x509.X509CrlReason.superseded,
  cessationOfOperation: x509.X509CrlReason.cessationOfOperation,
  privilegeWithdrawn: x509.X509CrlReason.privilegeWithdrawn,
};

/** Lower-case hex without separators. */
function hexRef(ref: string): string {
  const h = ref.trim().toLowerCase().replace(/[\s:]/g, '');
  if (!/^[0-9a-f]+$/.test(h)) throw new KeystoreError('malformed', `not a serial number or fingerprint: ${JSON.stringify(ref)}`);
  return h;
}

function serialKey(hex: string): string {
  return hex.replace(/^0+(?=[0-9a-f])/, '');
}

function usageAllowed(cert: Certificate, usage: Exclude<CredentialUsage, 'openpgp'>): boolean {
  const ku = cert.keyUsage;
  const has = (bits: number) => ku === null || (ku & bits) !== 0;
  const eku = (oid: string) => cert.extKeyUsage === null || cert.extKeyUsage.includes(oid) || cert.extKeyUsage.includes(EKU.any);
  switch (usage) {
    case 'auth':
      return has(KEY_USAGE.digitalSignature) && eku(EKU.clientAuth);
    case 'sign':
      return has(KEY_USAGE.digitalSignature | KEY_USAGE.nonRepudiation) && eku(EKU.emailProtection);
    case 'encrypt':
      return cert.publicKey.asymmetricKeyType === 'rsa' && has(KEY_USAGE.keyEncipherment) && eku(EKU.emailProtection);
  }
}

/** The usage a certificate was made for, when the caller does not say: signature certificates have nonRepudiation only. */
function inferUsage(cert: Certificate): Exclude<CredentialUsage, 'openpgp'> {
  const ku = cert.keyUsage ?? 0;
  if (ku & KEY_USAGE.nonRepudiation && !(ku & (KEY_USAGE.keyEncipherment | KEY_USAGE.keyAgreement))) return 'sign';
  for (const usage of ['auth', 'sign', 'encrypt'] as const) if (usageAllowed(cert, usage)) return usage;
  return 'auth';
}

function checkKeyStrength(key: KeyObject): void {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'rsa' || type === 'rsa-pss') {
    const bits = details.modulusLength ?? 0;
    if (bits < DEFAULT_POLICY.minRsaBits) throw new KeystoreError('weak-key', `RSA key of ${bits} bits refused (minimum ${DEFAULT_POLICY.minRsaBits})`);
    return;
  }
  if (type === 'ec') {
    const curve = details.namedCurve ?? '?';
    if (!DEFAULT_POLICY.curves.includes(curve)) throw new KeystoreError('weak-key', `EC curve ${curve} refused (accepted: ${DEFAULT_POLICY.curves.join(', ')})`);
    return;
  }
  throw new KeystoreError('unsupported-algorithm', `${type ?? 'unknown'} keys are not supported`);
}

function parseCertificates(input: string | Buffer, what: string): Certificate[] {
  // PEM may follow other text (openssl's "Bag Attributes"): look for armour anywhere, not only at the start.
  const text = Buffer.isBuffer(input) && input.includes('-----BEGIN') ? input.toString('latin1') : input;
  try {
    const all = Certificate.parseAll(text);
    if (all.length === 0) throw new KeystoreError('malformed', `no certificate in ${what}`);
    return all;
  } catch (err) {
    if (err instanceof SmimeError) throw new KeystoreError('malformed', `${what}: ${err.message}`);
    throw err;
  }
}

function parsePrivateKey(input: string | Buffer): KeyObject {
  const text = typeof input === 'string' ? input : input.toString('latin1');
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text)) {
    throw new KeystoreError('malformed', 'the private key is encrypted: decrypt it first (openssl pkey) or import a PKCS#12 file with its password');
  }
  try {
    if (text.includes('-----BEGIN')) return createPrivateKey({ key: text, format: 'pem' });
    return createPrivateKey({ key: Buffer.isBuffer(input) ? input : Buffer.from(input, 'latin1'), format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw new KeystoreError('malformed', `unreadable private key: ${(err as Error).message}`);
  }
}

function chainText(certs: readonly Certificate[]): string | null {
  return certs.length ? certs.map((c) => c.pem).join('') : null;
}

function statusOf(row: CredentialRow, now: number): CredentialStatus {
  if (row.revokedAt !== null) return 'revoked';
  if (now < row.notBefore) return 'not-yet-valid';
  if (row.notAfter !== null && now > row.notAfter) return 'expired';
  return 'valid';
}

/** Newest first. */
function newest(a: CredentialRow, b: CredentialRow): number {
  return b.id - a.id;
}

function localPartNames(address: string): { givenName: string; surname: string } {
  const local = address.split('@')[0] ?? address;
  const parts = local.split(/[._-]+/).filter(Boolean);
  const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1).toLowerCase();
  if (parts.length >= 2) return { givenName: parts.slice(0, -1).map(cap).join('-'), surname: parts[parts.length - 1]!.toUpperCase() };
  return { givenName: '-', surname: (parts[0] ?? local).toUpperCase() };
}

type OpenedX509 = { key: KeyObject; certificate: Certificate; chain: Certificate[] };

const OPENED_TTL_MS = 5 * 60_000;
const OPENED_MAX = 256;
const PARSED_MAX = 4096;

/** Drops the entries inserted first until the map holds at most `max`. */
function evictOldest(map: Map<string, unknown>, max: number): void {
  for (const key of map.keys()) {
    if (map.size <= max) break;
    map.delete(key);
  }
}

export class Keystore {
  readonly #store: Store;
  readonly #keys: KeystoreStore;
  readonly #keyring: Keyring;
  readonly #pki: DevPkiOptions | undefined;
  readonly #now: () => number;
  /**
   * Opened X.509 credentials by row (id and fingerprint), for a few minutes: each message signed or decrypted
   * would otherwise unseal and parse the same key again. Which row is used is still decided from the rows read
   * at each call, so a revocation or a new credential takes effect at once.
   */
  readonly #opened = new Map<string, { value: OpenedX509; until: number }>();
  /** Parsed certificates of credential rows, by fingerprint (public data). */
  readonly #parsed = new Map<string, Certificate>();

  constructor(options: KeystoreOptions) {
    this.#store = options.store;
    this.#keys = openKeystoreStore(options.store);
    this.#keyring = options.keyring;
    this.#pki = options.pki;
    this.#now = options.now ?? Date.now;
  }

  async #mailbox(address: string): Promise<MailboxRow> {
    const mailbox = await this.#store.getMailbox(address.trim());
    if (!mailbox) throw new KeystoreError('unknown-mailbox', `no mailbox ${address.trim().toLowerCase()}`);
    return mailbox;
  }

  // -------------------------------------------------------------------------------------------------------
  // Import

  /** Imports a certificate (PEM or DER; more certificates after it are taken as its chain) and its private key. */
  async importPem(
    address: string,
    usage: Exclude<CredentialUsage, 'openpgp'>,
    certPem: string | Buffer,
    keyPem: string | Buffer,
    chainPem?: string | Buffer,
    options: ImportOptions = {},
  ): Promise<ImportResult> {
    const [certificate, ...rest] = parseCertificates(certPem, 'the certificate file');
    const chain = [...rest, ...(chainPem ? parseCertificates(chainPem, 'the chain file') : [])];
    return this.#importX509(address, usage, certificate!, parsePrivateKey(keyPem), chain, options);
  }

  /** Imports the key, certificate and chain of a PKCS#12 file; the usage defaults to what the certificate is for. */
  async importPkcs12(
    address: string,
    p12: Buffer,
    password: string,
    usage?: Exclude<CredentialUsage, 'openpgp'>,
    options: ImportOptions = {},
  ): Promise<ImportResult> {
    let contents;
    try {
      contents = readPkcs12(p12, password);
    } catch (err) {
      if (err instanceof Pkcs12Error) throw new KeystoreError(/wrong password/.test(err.message) ? 'bad-password' : 'malformed', err.message);
      if (err instanceof SmimeError) throw new KeystoreError('malformed', `PKCS#12 certificate: ${err.message}`);
      throw err;
    }
    // The trust anchor itself is not part of the chain a signer sends.
    const chain = contents.chain.filter((c) => !c.isSelfIssued);
    return this.#importX509(address, usage ?? inferUsage(contents.certificate), contents.certificate, contents.privateKey, chain, options);
  }

  /** Imports an OpenPGP private key (armored or binary); a protected key needs its passphrase. */
  async importOpenPgp(address: string, privateKey: string | Uint8Array, passphrase?: string, options: ImportOptions = {}): Promise<ImportResult> {
    const mailbox = await this.#mailbox(address);
    const read = await readPrivateKey(privateKey, passphrase);
    if (!read.ok) {
      const code: KeystoreFailureCode =
        read.code === 'weak-key' ? 'weak-key' : read.code === 'bad-passphrase' || read.code === 'key-locked' ? 'bad-password' : 'malformed';
      throw new KeystoreError(code, read.detail);
    }
    const key = read.value;
    const info = keyInfo(key);
    if (!options.force && !info.emails.includes(mailbox.address)) {
      throw new KeystoreError('identity-mismatch', `no user ID of key ${info.fingerprint} carries ${mailbox.address} (--force to import anyway)`);
    }
    const expires = await key.getExpirationTime();
    const notAfter = expires instanceof Date ? expires.getTime() : null;
    if (!options.force && notAfter !== null && notAfter < this.#now()) {
      throw new KeystoreError('cert-expired', `OpenPGP key ${info.fingerprint} expired on ${new Date(notAfter).toISOString()} (--force to import anyway)`);
    }
    return this.#insert(mailbox, {
      mailboxId: mailbox.id,
      usage: 'openpgp',
      format: 'openpgp',
      certificate: armorPublicKey(key),
      chainPem: null,
      sealedKey: this.#keyring.sealWithMaster(await armorPrivateKey(key), keystoreAad.privateKey(mailbox.address, 'openpgp', info.fingerprint)),
      fingerprint: info.fingerprint,
      serial: info.keyId,
      // An OpenPGP key certifies itself.
      issuer: info.userIds.join(', '),
      subject: info.userIds.join(', '),
      notBefore: info.created.getTime(),
      notAfter,
    });
  }

  /** Every check an X.509 credential passes before it is sealed and stored. */
  #checkX509(mailbox: MailboxRow, usage: Exclude<CredentialUsage, 'openpgp'>, cert: Certificate, key: KeyObject, options: ImportOptions): void {
    if (cert.basicConstraints?.ca) throw new KeystoreError('ca-certificate', `${cert.subject} is a CA certificate, not a mailbox certificate`);
    const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
    if (!spki.equals(cert.spki)) {
      throw new KeystoreError('key-mismatch', `the private key does not match the certificate ${cert.subject} (serial ${cert.serialNumber})`);
    }
    checkKeyStrength(key);
    if (usage === 'encrypt' && key.asymmetricKeyType !== 'rsa') {
      throw new KeystoreError('unsupported-algorithm', `S/MIME decryption needs an RSA key (this one is ${key.asymmetricKeyType ?? 'unknown'})`);
    }
    if (!usageAllowed(cert, usage)) {
      throw new KeystoreError('key-usage', `the certificate ${cert.subject} does not allow ${usage} (keyUsage / extKeyUsage)`);
    }
    if (options.force) return;
    const now = this.#now();
    if (now > cert.notAfter.getTime()) {
      throw new KeystoreError('cert-expired', `the certificate ${cert.subject} expired on ${cert.notAfter.toISOString()} (--force to import anyway)`);
    }
    if (now < cert.notBefore.getTime()) {
      throw new KeystoreError('cert-not-yet-valid', `the certificate ${cert.subject} is valid from ${cert.notBefore.toISOString()} (--force to import anyway)`);
    }
    if (!certificateMatchesAddress(cert, mailbox.address).match) {
      throw new KeystoreError('identity-mismatch', `the certificate ${cert.subject} does not name ${mailbox.address} (--force to import anyway)`);
    }
  }

  async #importX509(
    address: string,
    usage: Exclude<CredentialUsage, 'openpgp'>,
    cert: Certificate,
    key: KeyObject,
    chain: Certificate[],
    options: ImportOptions,
  ): Promise<ImportResult> {
    const mailbox = await this.#mailbox(address);
    this.#checkX509(mailbox, usage, cert, key, options);
    const der = key.export({ type: 'pkcs8', format: 'der' });
    let sealedKey: Buffer;
    try {
      sealedKey = this.#keyring.sealWithMaster(der, keystoreAad.privateKey(mailbox.address, usage, cert.fingerprint256));
    } finally {
      der.fill(0);
    }
    return this.#insert(mailbox, {
      mailboxId: mailbox.id,
      usage,
      format: 'x509',
      certificate: cert.pem,
      chainPem: chainText(chain),
      sealedKey,
      fingerprint: cert.fingerprint256,
      serial: cert.serialNumber,
      issuer: cert.issuer,
      subject: cert.subject,
      notBefore: cert.notBefore.getTime(),
      notAfter: cert.notAfter.getTime(),
    });
  }

  async #insert(mailbox: MailboxRow, c: NewCredential): Promise<ImportResult> {
    const { row, created } = await this.#keys.transaction((tx) => tx.insertCredential(c));
    if (created) await this.#audit('key-add', mailbox.address, { usage: row.usage, format: row.format, serial: row.serial, fingerprint: row.fingerprint });
    return { credential: this.#info(row, mailbox.address), created };
  }

  /** Keystore changes are audited after they commit (the keystore's units of work are its own). */
  async #audit(action: 'key-add' | 'key-revoke', address: string, detail: Record<string, string>): Promise<void> {
    await audit(this.#store, { actor: 'pki', action, object: address, outcome: 'ok', detail });
  }

  #info(row: CredentialRow, address: string): CredentialInfo {
    return {
      id: row.id,
      address,
      usage: row.usage,
      format: row.format,
      subject: row.subject,
      issuer: row.issuer,
      serial: row.serial,
      fingerprint: row.fingerprint,
      notBefore: new Date(row.notBefore),
      notAfter: row.notAfter === null ? null : new Date(row.notAfter),
      createdAt: new Date(row.createdAt),
      revokedAt: row.revokedAt === null ? null : new Date(row.revokedAt),
      revocationReason: row.revocationReason,
      status: statusOf(row, this.#now()),
      certificate: row.certificate,
    };
  }

  // -------------------------------------------------------------------------------------------------------
  // Dev PKI

  #requirePki(): DevPkiOptions {
    if (!this.#pki) throw new KeystoreError('no-dev-pki', 'the dev PKI is not configured for this keystore');
    return this.#pki;
  }

  /**
   * Gives a mailbox what it lacks from the dev PKI: practitioner authentication and signature certificates
   * (PER, CAB; owner `8`+RPPS), or the organisation certificate (ORG, APP; owner idNat_Struct), plus an OpenPGP
   * key pair. Idempotent: a usage that already has a valid credential is left alone.
   */
  async issueDev(address: string, options: IssueDevOptions = {}): Promise<IssueDevResult> {
    const pki = this.#requirePki();
    const mailbox = await this.#mailbox(address);
    const practitioner = PRACTITIONER_TYPES.includes(mailbox.type);
    if (!practitioner && !ORGANISATION_TYPES.includes(mailbox.type)) {
      throw new KeystoreError('unsupported-mailbox-type', `${mailbox.address} is a ${mailbox.type} mailbox: the dev PKI issues certificates to PER, CAB, ORG and APP mailboxes only`);
    }
    const plan: { usage: 'auth' | 'sign'; kind: MailboxCertKind }[] = practitioner
      ? [
          { usage: 'auth', kind: 'auth' },
          { usage: 'sign', kind: 'sign' },
        ]
      : [{ usage: 'auth', kind: 'org' }];
    const now = this.#now();
    const rows = await this.#keys.listCredentials(mailbox.id);
    const current = (usage: CredentialUsage) => rows.filter((r) => r.usage === usage && statusOf(r, now) === 'valid').sort(newest)[0];
    const result: IssueDevResult = { address: mailbox.address, credentials: [] };

    const missing = plan.filter((p) => !current(p.usage));
    for (const p of plan) {
      const have = current(p.usage);
      if (have) result.credentials.push({ usage: p.usage, serial: have.serial, fingerprint: have.fingerprint, created: false });
    }
    if (missing.length > 0) {
      for (const p of missing) this.#dropStaleDevFiles(pki, mailbox.address, p.kind, rows);
      if (practitioner) {
        const rpps = /^8(\d{11})$/.exec(mailbox.ownerId ?? '')?.[1];
        if (!rpps) throw new KeystoreError('missing-identity', `${mailbox.address} needs an owner idNat_PS (8 + 11-digit RPPS) for a practitioner certificate`);
        const derived = localPartNames(mailbox.address);
        await issuePractitionerCertificates(pki, {
          address: mailbox.address,
          rpps,
          givenName: options.givenName ?? derived.givenName,
          surname: options.surname ?? derived.surname,
          organisation: options.organisation ?? mailbox.address.split('@')[1]!,
        });
      } else {
        if (!mailbox.ownerId || !/^[0-9][0-9A-Za-z]{1,29}$/.test(mailbox.ownerId)) {
          throw new KeystoreError('missing-identity', `${mailbox.address} needs an owner idNat_Struct (e.g. 1 + FINESS) for an organisation certificate`);
        }
        await issueOrganisationCertificate(pki, { address: mailbox.address, idNatStruct: mailbox.ownerId, name: mailbox.displayName ?? mailbox.address });
      }
      for (const p of missing) {
        const loaded = loadMailboxCredential(pki.certsDir, this.#keyring, mailbox.address, p.usage);
        if (loaded.kind !== p.kind) throw new KeystoreError('malformed', `the dev PKI holds a ${loaded.kind} certificate for ${mailbox.address}, not ${p.kind}`);
        const imported = await this.importPem(mailbox.address, p.usage, loaded.cert, loaded.key, loaded.chain);
        const c = imported.credential;
        result.credentials.push({ usage: p.usage, serial: c.serial, fingerprint: c.fingerprint, created: imported.created });
      }
    }

    if (options.openpgp !== false) result.credentials.push(await this.#ensureOpenPgp(mailbox, options.openpgp ?? 'curve25519Legacy', pki));
    return result;
  }

  async #ensureOpenPgp(
    mailbox: MailboxRow,
    algorithm: MailboxKeyAlgorithm,
    pki: DevPkiOptions,
  ): Promise<IssueDevResult['credentials'][number]> {
    const valid = async () =>
      (await this.#keys.listCredentials(mailbox.id)).filter((r) => r.usage === 'openpgp' && statusOf(r, this.#now()) === 'valid').sort(newest)[0];
    const have = await valid();
    if (have) return { usage: 'openpgp', serial: have.serial, fingerprint: have.fingerprint, created: false };
    const pair = await generateMailboxKey({
      address: mailbox.address,
      ...(mailbox.displayName ? { name: mailbox.displayName } : {}),
      algorithm,
      expiresInSeconds: pki.leafValidityDays * 86_400,
    });
    const info = keyInfo(pair.privateKey);
    const credential: NewCredential = {
      mailboxId: mailbox.id,
      usage: 'openpgp',
      format: 'openpgp',
      certificate: armorPublicKey(pair.publicKey),
      chainPem: null,
      sealedKey: this.#keyring.sealWithMaster(await armorPrivateKey(pair.privateKey), keystoreAad.privateKey(mailbox.address, 'openpgp', info.fingerprint)),
      fingerprint: info.fingerprint,
      serial: info.keyId,
      issuer: info.userIds.join(', '),
      subject: info.userIds.join(', '),
      notBefore: info.created.getTime(),
      notAfter: info.created.getTime() + pki.leafValidityDays * 86_400_000,
    };
    // Another process may have generated one meanwhile: keep the first, under the mailbox lock.
    return this.#keys.transaction(async (tx) => {
      await tx.lockMailbox(mailbox.id);
      const now = this.#now();
      const other = (await tx.listCredentials(mailbox.id)).filter((r) => r.usage === 'openpgp' && statusOf(r, now) === 'valid').sort(newest)[0];
      if (other) return { usage: 'openpgp' as const, serial: other.serial, fingerprint: other.fingerprint, created: false };
      const { row, created } = await tx.insertCredential(credential);
      return { usage: 'openpgp' as const, serial: row.serial, fingerprint: row.fingerprint, created };
    }).then(async (r) => {
      if (r.created) await this.#audit('key-add', mailbox.address, { usage: 'openpgp', format: 'openpgp', serial: r.serial, fingerprint: r.fingerprint });
      return r;
    });
  }

  /**
   * The dev PKI issues a mailbox certificate only when its files are absent. Files holding a certificate this
   * keystore has revoked, that the CRL lists, or that has expired are removed so a new one is issued.
   */
  #dropStaleDevFiles(pki: DevPkiOptions, address: string, kind: MailboxCertKind, rows: readonly CredentialRow[]): void {
    const paths = devPkiPaths(pki.certsDir);
    const certFile = paths.mailboxCert(address, kind);
    if (!existsSync(certFile)) return;
    let cert: Certificate;
    try {
      cert = Certificate.from(readFileSync(certFile, 'utf8'));
    } catch {
      return; // let the dev PKI report it
    }
    const ca: CaName = kind === 'org' ? 'organisations' : 'persons';
    const stale =
      rows.some((r) => r.fingerprint === cert.fingerprint256 && r.revokedAt !== null) ||
      this.#now() > cert.notAfter.getTime() ||
      readCrlEntries(pki.certsDir, ca).some((e) => serialKey(e.serialNumber.toLowerCase()) === serialKey(cert.serialNumber));
    if (stale) removeDevFiles(pki, address, kind);
  }

  #isDevPkiCertificate(cert: Certificate): boolean {
    if (!this.#pki) return false;
    const paths = devPkiPaths(this.#pki.certsDir);
    return (['persons', 'organisations', 'root'] as const).some((ca) => {
      const file = paths.caCert(ca);
      if (!existsSync(file)) return false;
      const caCert = Certificate.from(readFileSync(file, 'utf8'));
      return cert.issuerDer.equals(caCert.subjectDer) && (!cert.authorityKeyId || (caCert.subjectKeyId?.equals(cert.authorityKeyId) ?? false));
    });
  }

  // -------------------------------------------------------------------------------------------------------
  // Listing, revocation

  /** The credentials of one mailbox, or of every mailbox (by address, then oldest first). */
  async list(address?: string): Promise<CredentialInfo[]> {
    if (address !== undefined) {
      const mailbox = await this.#mailbox(address);
      return (await this.#keys.listCredentials(mailbox.id)).map((r) => this.#info(r, mailbox.address));
    }
    const addresses = new Map((await this.#store.listMailboxes()).map((m) => [m.id, m.address]));
    return (await this.#keys.listCredentials())
      .map((r) => this.#info(r, addresses.get(r.mailboxId) ?? `#${r.mailboxId}`))
      .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.id - b.id));
  }

  /**
   * Revokes one certificate or key of a mailbox, named by serial, fingerprint or a fingerprint prefix (8 hex
   * digits or more): every usage holding it is marked revoked. A certificate of the dev PKI also goes on its
   * CA's CRL (rewritten), and its files leave the dev PKI so `issueDev` can issue a new one.
   */
  async revoke(address: string, ref: string, reason: RevocationReason = 'unspecified'): Promise<RevokeResult> {
    if (!REVOCATION_REASONS.includes(reason)) {
      throw new KeystoreError('malformed', `unknown revocation reason ${JSON.stringify(reason)} (one of ${REVOCATION_REASONS.join(', ')})`);
    }
    const mailbox = await this.#mailbox(address);
    const wanted = hexRef(ref);
    const rows = await this.#keys.listCredentials(mailbox.id);
    const matches = rows.filter(
      (r) => r.fingerprint === wanted || (wanted.length >= 8 && r.fingerprint.startsWith(wanted)) || serialKey(r.serial) === serialKey(wanted),
    );
    const fingerprints = [...new Set(matches.map((r) => r.fingerprint))];
    if (fingerprints.length === 0) throw new KeystoreError('not-found', `${mailbox.address} has no certificate or key with serial or fingerprint ${wanted}`);
    if (fingerprints.length > 1) {
      throw new KeystoreError('ambiguous', `${wanted} matches several credentials of ${mailbox.address} (${fingerprints.join(', ')}): give the full fingerprint`);
    }
    const fingerprint = fingerprints[0]!;
    const target = rows.filter((r) => r.fingerprint === fingerprint);
    const first = target[0]!;

    let crlFile: string | null = null;
    if (first.format === 'x509') {
      const cert = Certificate.from(first.certificate);
      if (this.#isDevPkiCertificate(cert)) {
        const pki = this.#requirePki();
        // The CRL first: if the database update then fails, running revoke again completes it.
        crlFile = (await revokeCertificate(pki, cert.pem, CRL_REASON[reason])).crlFile;
        for (const kind of ['auth', 'sign', 'org'] as const) {
          const file = devPkiPaths(pki.certsDir).mailboxCert(mailbox.address, kind);
          if (!existsSync(file)) continue;
          try {
            if (Certificate.from(readFileSync(file, 'utf8')).equals(cert)) removeDevFiles(pki, mailbox.address, kind);
          } catch {
            /* unreadable: leave it to the dev PKI */
          }
        }
      }
    }
    const now = this.#now();
    const revoked = await this.#keys.transaction(async (tx) => {
      let n = 0;
      for (const r of target) if (await tx.revokeCredential(r.id, now, reason)) n++;
      return n;
    });
    if (revoked > 0) await this.#audit('key-revoke', mailbox.address, { serial: first.serial, fingerprint, reason });
    return {
      address: mailbox.address,
      fingerprint,
      serial: first.serial,
      usages: [...new Set(target.map((r) => r.usage))],
      alreadyRevoked: revoked === 0,
      crlFile,
    };
  }

  // -------------------------------------------------------------------------------------------------------
  // Use

  #openX509(address: string, row: CredentialRow): OpenedX509 {
    const cacheKey = `${row.id}:${row.usage}:${row.fingerprint}`;
    const now = this.#now();
    const cached = this.#opened.get(cacheKey);
    if (cached && cached.until > now) return { ...cached.value, chain: [...cached.value.chain] };
    const der = this.#keyring.openWithMaster(row.sealedKey, keystoreAad.privateKey(address, row.usage, row.fingerprint));
    let value: OpenedX509;
    try {
      value = {
        key: createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }),
        certificate: this.#certificate(row),
        chain: row.chainPem ? Certificate.parseAll(row.chainPem) : [],
      };
    } finally {
      der.fill(0);
    }
    this.#opened.delete(cacheKey);
    this.#opened.set(cacheKey, { value, until: now + OPENED_TTL_MS });
    evictOldest(this.#opened, OPENED_MAX);
    return { ...value, chain: [...value.chain] };
  }

  #certificate(row: CredentialRow): Certificate {
    let cert = this.#parsed.get(row.fingerprint);
    if (!cert) {
      cert = Certificate.from(row.certificate);
      this.#parsed.set(row.fingerprint, cert);
      evictOldest(this.#parsed, PARSED_MAX);
    }
    return cert;
  }

  async #openPgp(address: string, row: CredentialRow): Promise<PrivateKey> {
    const armored = this.#keyring.openWithMaster(row.sealedKey, keystoreAad.privateKey(address, 'openpgp', row.fingerprint));
    try {
      const read = await readPrivateKey(armored.toString('utf8'));
      if (!read.ok) throw new KeystoreError('malformed', `stored OpenPGP key ${row.fingerprint}: ${read.detail}`);
      return read.value;
    } finally {
      armored.fill(0);
    }
  }

  /** Opens, in memory, what the agent needs for one usage (see the rules at the top of this file). */
  async credentialsFor<U extends CredentialUsage>(address: string, usage: U): Promise<CredentialsByUsage[U]> {
    const mailbox = await this.#mailbox(address);
    const rows = await this.#keys.listCredentials(mailbox.id);
    const now = this.#now();
    const valid = (r: CredentialRow) => statusOf(r, now) === 'valid';
    const none = (what: string): never => {
      const held = rows.filter((r) => r.usage === usage);
      const why = held.length ? ` (${held.map((r) => `${r.serial}: ${statusOf(r, now)}`).join(', ')})` : '';
      throw new KeystoreError('no-credential', `${mailbox.address} has no valid ${what}${why}`);
    };
    const result = await (async (): Promise<CredentialsByUsage[CredentialUsage]> => {
      switch (usage) {
        case 'auth':
        case 'sign': {
          let candidates = rows.filter((r) => r.usage === usage && valid(r));
          if (usage === 'sign' && !rows.some((r) => r.usage === 'sign')) {
            candidates = rows.filter((r) => r.usage === 'auth' && valid(r) && usageAllowed(this.#certificate(r), 'sign'));
          }
          const row = candidates.sort(newest)[0] ?? none(`${usage} certificate`);
          return this.#openX509(mailbox.address, row) satisfies SigningCredential;
        }
        case 'encrypt': {
          const candidates = rows
            .filter((r) => (r.usage === 'encrypt' || r.usage === 'auth') && usageAllowed(this.#certificate(r), 'encrypt'))
            .sort((a, b) => Number(valid(b)) - Number(valid(a)) || newest(a, b));
          if (candidates.length === 0) none('encryption certificate');
          const seen = new Set<string>();
          const keys: DecryptionKey[] = [];
          for (const row of candidates) {
            if (seen.has(row.fingerprint)) continue;
            seen.add(row.fingerprint);
            const { key, certificate } = this.#openX509(mailbox.address, row);
            keys.push({ key, certificate });
          }
          return keys;
        }
        case 'openpgp': {
          const all = rows.filter((r) => r.usage === 'openpgp').sort(newest);
          const current = all.find(valid) ?? none('OpenPGP key');
          const decryptionKeys: PrivateKey[] = [];
          let privateKey: PrivateKey | undefined;
          for (const row of all) {
            const key = await this.#openPgp(mailbox.address, row);
            decryptionKeys.push(key);
            if (row === current) privateKey = key;
          }
          return { privateKey: privateKey!, publicKey: privateKey!.toPublic(), fingerprint: current.fingerprint, decryptionKeys };
        }
      }
      throw new KeystoreError('malformed', `unknown usage ${String(usage)}`);
    })();
    return result as CredentialsByUsage[U];
  }

  /** The certificate others encrypt to for this mailbox (public data), or null. */
  async encryptionCertificate(address: string): Promise<Certificate | null> {
    const mailbox = await this.#mailbox(address);
    const now = this.#now();
    const rows = (await this.#keys.listCredentials(mailbox.id)).sort(newest);
    const usable = (usage: CredentialUsage) =>
      rows.find((r) => r.usage === usage && statusOf(r, now) === 'valid' && usageAllowed(this.#certificate(r), 'encrypt'));
    const row = usable('encrypt') ?? (rows.some((r) => r.usage === 'encrypt') ? undefined : usable('auth'));
    return row ? this.#certificate(row) : null;
  }

  // -------------------------------------------------------------------------------------------------------
  // Correspondents

  /**
   * Keeps the certificate (PEM or DER) or OpenPGP public key (armored) of a correspondent, to encrypt to them.
   * Refused: weak keys, CA certificates, certificates that cannot encrypt; unless `force`, also expired ones and
   * ones that do not name the address.
   */
  async addCorrespondent(
    address: string,
    input: string | Buffer,
    options: { source?: CorrespondentSource; force?: boolean } = {},
  ): Promise<{ created: boolean; format: 'x509' | 'openpgp'; fingerprint: string }> {
    const who = address.trim().toLowerCase();
    if (!/^[^\s@<>]+@[^\s@<>]+$/.test(who)) throw new KeystoreError('malformed', `not a mail address: ${JSON.stringify(address)}`);
    const source = options.source ?? 'import';
    const text = typeof input === 'string' ? input : input.includes('-----BEGIN') ? input.toString('utf8') : null;
    if (text?.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----')) {
      const read = await readPublicKey(text);
      if (!read.ok) throw new KeystoreError(read.code === 'weak-key' ? 'weak-key' : 'malformed', read.detail);
      const info = keyInfo(read.value);
      if (!options.force && !info.emails.includes(who)) {
        throw new KeystoreError('identity-mismatch', `no user ID of key ${info.fingerprint} carries ${who}`);
      }
      const { created } = await this.#keys.transaction((tx) =>
        tx.insertCorrespondentKey({ address: who, format: 'openpgp', certificate: armorPublicKey(read.value), fingerprint: info.fingerprint, source }),
      );
      return { created, format: 'openpgp', fingerprint: info.fingerprint };
    }
    const [cert] = parseCertificates(text ?? input, 'the correspondent certificate');
    if (cert!.basicConstraints?.ca) throw new KeystoreError('ca-certificate', `${cert!.subject} is a CA certificate`);
    checkKeyStrength(cert!.publicKey);
    if (!usageAllowed(cert!, 'encrypt')) throw new KeystoreError('key-usage', `the certificate ${cert!.subject} cannot be used to encrypt to ${who}`);
    if (!options.force) {
      if (this.#now() > cert!.notAfter.getTime()) throw new KeystoreError('cert-expired', `the certificate ${cert!.subject} expired on ${cert!.notAfter.toISOString()}`);
      if (!certificateMatchesAddress(cert!, who).match) throw new KeystoreError('identity-mismatch', `the certificate ${cert!.subject} does not name ${who}`);
    }
    const { created } = await this.#keys.transaction((tx) =>
      tx.insertCorrespondentKey({ address: who, format: 'x509', certificate: cert!.pem, fingerprint: cert!.fingerprint256, source }),
    );
    return { created, format: 'x509', fingerprint: cert!.fingerprint256 };
  }

  async removeCorrespondent(address: string, fingerprint: string): Promise<boolean> {
    const wanted = hexRef(fingerprint);
    const row = (await this.#keys.listCorrespondentKeys(address)).find((r) => r.fingerprint === wanted);
    return row ? this.#keys.transaction((tx) => tx.deleteCorrespondentKey(row.id)) : false;
  }

  /** The correspondent's certificates usable to encrypt to them at `at` (default now), newest first. */
  async correspondentCertificates(address: string, at: Date = new Date(this.#now())): Promise<Certificate[]> {
    const t = at.getTime();
    return (await this.#keys.listCorrespondentKeys(address))
      .filter((r) => r.format === 'x509')
      .reverse()
      .map((r) => Certificate.from(r.certificate))
      .filter((c) => c.notBefore.getTime() <= t && t <= c.notAfter.getTime() && usageAllowed(c, 'encrypt'));
  }

  /** The correspondent's OpenPGP public keys, newest first (the OpenPGP agent decides which one is usable). */
  async correspondentOpenPgpKeys(address: string): Promise<PublicKey[]> {
    const keys: PublicKey[] = [];
    for (const r of (await this.#keys.listCorrespondentKeys(address)).filter((k) => k.format === 'openpgp').reverse()) {
      const read = await readPublicKey(r.certificate);
      if (read.ok) keys.push(read.value);
    }
    return keys;
  }

  /** A resolver for the OpenPGP agent: correspondents' keys, and our own mailboxes' public keys. */
  pgpResolver(): PublicKeyResolver {
    return {
      keysFor: async (address) => {
        const keys = await this.correspondentOpenPgpKeys(address);
        const mailbox = await this.#store.getMailbox(address);
        if (mailbox) {
          for (const r of (await this.#keys.listCredentials(mailbox.id)).filter((c) => c.usage === 'openpgp' && c.revokedAt === null).sort(newest)) {
            const read = await readPublicKey(r.certificate);
            if (read.ok) keys.push(read.value);
          }
        }
        return keys;
      },
    };
  }
}

function removeDevFiles(pki: DevPkiOptions, address: string, kind: MailboxCertKind): void {
  const paths = devPkiPaths(pki.certsDir);
  // The key before the certificate: the dev PKI never sees a certificate without its key as complete.
  for (const file of [paths.mailboxKey(address, kind), paths.mailboxCert(address, kind)]) {
    try {
      unlinkSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/**
 * Gives mailboxes their dev-PKI credentials (`Keystore.issueDev`), for `mss init`'s demo operator: the listed
 * addresses, or every PER/CAB/ORG/APP mailbox whose owner identifier the dev PKI can use. Idempotent: a
 * second call creates nothing. Returns how many credentials were created and one line per mailbox that got some.
 */
export async function issueDemoCredentials(
  store: Store,
  keyring: Keyring,
  pki: DevPkiOptions,
  addresses?: readonly string[],
): Promise<{ created: number; lines: string[] }> {
  const keystore = new Keystore({ store, keyring, pki });
  const targets =
    addresses ??
    (await store.listMailboxes())
      .filter(
        (m) =>
          (PRACTITIONER_TYPES.includes(m.type) && /^8\d{11}$/.test(m.ownerId ?? '')) ||
          (ORGANISATION_TYPES.includes(m.type) && /^[0-9][0-9A-Za-z]{1,29}$/.test(m.ownerId ?? '')),
      )
      .map((m) => m.address);
  const lines: string[] = [];
  let created = 0;
  for (const address of targets) {
    const result = await keystore.issueDev(address);
    const made = result.credentials.filter((c) => c.created);
    created += made.length;
    if (made.length) lines.push(`issued keystore credentials for ${result.address}: ${made.map((c) => c.usage).join(', ')}`);
  }
  return { created, lines };
}
