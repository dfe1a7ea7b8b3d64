import {
  CORRESPONDENT_SOURCES,
  CREDENTIAL_USAGES,
  KEY_FORMATS,
  type CorrespondentKeyRow,
  type CredentialRow,
} from './keystore-types.js';
import { CorruptRowError, type Raw } from './rows.js';

/** The column readers of one engine (its `rows.ts`), which differ in how integers come back. */
export interface KeystoreColumnReaders {
  readInt(row: Raw, column: string): number;
  readText(row: Raw, column: string): string;
  readTextOrNull(row: Raw, column: string): string | null;
  readBytes(row: Raw, column: string): Buffer;
}

/** Row mappers of the keystore tables: each column checked as it is read, never cast (as `rows.ts`). */
export function keystoreRowReaders({ readInt, readText, readTextOrNull, readBytes }: KeystoreColumnReaders) {
  const intOrNull = (row: Raw, column: string): number | null => (row[column] === null || row[column] === undefined ? null : readInt(row, column));
  function oneOf<T extends string>(row: Raw, column: string, allowed: readonly T[]): T {
    const v = readText(row, column);
    if ((allowed as readonly string[]).includes(v)) return v as T;
    throw new CorruptRowError(`column ${column}: unexpected value ${JSON.stringify(v)}`);
  }

  return {
    toCredential: (row: Raw): CredentialRow => ({
      id: readInt(row, 'id'),
      mailboxId: readInt(row, 'mailbox_id'),
      usage: oneOf(row, 'usage', CREDENTIAL_USAGES),
      format: oneOf(row, 'format', KEY_FORMATS),
      certificate: readText(row, 'certificate'),
      chainPem: readTextOrNull(row, 'chain'),
      sealedKey: readBytes(row, 'sealed_key'),
      fingerprint: readText(row, 'fingerprint'),
      serial: readText(row, 'serial'),
      issuer: readText(row, 'issuer'),
      subject: readText(row, 'subject'),
      notBefore: readInt(row, 'not_before'),
      notAfter: intOrNull(row, 'not_after'),
      createdAt: readInt(row, 'created_at'),
      revokedAt: intOrNull(row, 'revoked_at'),
      revocationReason: readTextOrNull(row, 'revocation_reason'),
    }),

    toCorrespondentKey: (row: Raw): CorrespondentKeyRow => ({
      id: readInt(row, 'id'),
      address: readText(row, 'address'),
      format: oneOf(row, 'format', KEY_FORMATS),
      certificate: readText(row, 'certificate'),
      fingerprint: readText(row, 'fingerprint'),
      source: oneOf(row, 'source', CORRESPONDENT_SOURCES),
      addedAt: readInt(row, 'added_at'),
    }),
  };
}

/** The columns of the keystore tables, in the order `keystoreDumpValues` gives them (for `mss store migrate`). */
export const KEYSTORE_DUMP_COLUMNS = {
  mailbox_credentials: [
    'id',
    'mailbox_id',
    'usage',
    'format',
    'certificate',
    'chain',
    'sealed_key',
    'fingerprint',
    'serial',
    'issuer',
    'subject',
    'not_before',
    'not_after',
    'created_at',
    'revoked_at',
    'revocation_reason',
  ],
  correspondent_keys: ['id', 'address', 'format', 'certificate', 'fingerprint', 'source', 'added_at'],
} as const;

export function credentialDumpValues(c: CredentialRow): (number | string | Buffer | null)[] {
  return [
    c.id,
    c.mailboxId,
    c.usage,
    c.format,
    c.certificate,
    c.chainPem,
    c.sealedKey,
    c.fingerprint,
    c.serial,
    c.issuer,
    c.subject,
    c.notBefore,
    c.notAfter,
    c.createdAt,
    c.revokedAt,
    c.revocationReason,
  ];
}

export function correspondentKeyDumpValues(k: CorrespondentKeyRow): (number | string | Buffer | null)[] {
  return [k.id, k.address, k.format, k.certificate, k.fingerprint, k.source, k.addedAt];
}
