import type { DecryptionKey } from '../crypto/cms/enveloped-data.js';
import { KeystoreError } from '../crypto/keystore.js';
import { processIncoming, type PgpFailureCode } from '../crypto/pgp/index.js';
import { processInbound } from '../crypto/smime/agent.js';
import type { SmimeFailureCode } from '../crypto/cms/failure.js';
import { paramValue } from '../mime/params.js';
import type { MimeNode } from '../mime/types.js';
import type { MailboxRow } from '../store/types.js';
import { Refusal, type RefusalCode } from './refusal.js';
import type { SecurityContext } from './security-context.js';

/**
 * Inbound security stage: an S/MIME or PGP/MIME message for a local mailbox is decrypted with that mailbox's
 * keys and its signature verified (trust path, validity, revocation, identity, outer-header tamper check);
 * the reader gets the opened message with an `X-MSS-Verification` header saying what was checked. A message
 * that cannot be opened or verified is refused with a precise code. Other messages pass unchanged.
 */

export type Protection = 'smime' | 'pgp';

export const VERIFICATION_HEADER = 'X-MSS-Verification';

/** Which security envelope, if any, a message's top-level Content-Type (its parsed MIME root) declares. */
export function detectProtection(root: Pick<MimeNode, 'type' | 'subtype' | 'params'>): Protection | null {
  const type = `${root.type}/${root.subtype}`;
  const protocol = (paramValue(root.params, 'protocol') ?? '').toLowerCase();
  if (type === 'application/pkcs7-mime' || type === 'application/x-pkcs7-mime') return 'smime';
  if (type === 'multipart/signed' && /^application\/(x-)?pkcs7-signature$/.test(protocol)) return 'smime';
  if (type === 'multipart/encrypted' && protocol === 'application/pgp-encrypted') return 'pgp';
  if (type === 'multipart/signed' && protocol === 'application/pgp-signature') return 'pgp';
  return null;
}

const SMIME_REFUSALS: Record<SmimeFailureCode, RefusalCode> = {
  malformed: 'security-malformed',
  'unsupported-algorithm': 'security-weak-algorithm',
  'weak-digest': 'security-weak-algorithm',
  'weak-cipher': 'security-weak-algorithm',
  'weak-key': 'security-weak-key',
  'bad-signature': 'security-bad-signature',
  'no-signer-certificate': 'security-untrusted',
  'chain-untrusted': 'security-untrusted',
  'cert-expired': 'security-cert-expired',
  'cert-not-yet-valid': 'security-cert-not-yet-valid',
  'cert-revoked': 'security-cert-revoked',
  'revocation-unknown': 'security-revocation-unknown',
  'key-usage': 'security-untrusted',
  'identity-mismatch': 'security-identity-mismatch',
  'header-mismatch': 'security-tampered',
  'cannot-decrypt': 'security-cannot-decrypt',
  'no-recipient-certificate': 'security-no-recipient-certificate',
  'not-signed': 'security-not-signed',
  'not-encrypted': 'security-not-encrypted',
};

const PGP_REFUSALS: Record<PgpFailureCode, RefusalCode> = {
  malformed: 'security-malformed',
  unsupported: 'security-weak-algorithm',
  'cannot-decrypt': 'security-cannot-decrypt',
  'integrity-failure': 'security-tampered',
  'bad-signature': 'security-bad-signature',
  'unknown-signer': 'security-untrusted',
  'identity-mismatch': 'security-identity-mismatch',
  unsigned: 'security-not-signed',
  'weak-key': 'security-weak-key',
  'weak-algorithm': 'security-weak-algorithm',
  'key-expired': 'security-cert-expired',
  'key-revoked': 'security-cert-revoked',
  'no-recipient-key': 'security-no-recipient-certificate',
  'no-signing-key': 'security-no-signing-credential',
  'key-locked': 'security-no-signing-credential',
  'bad-passphrase': 'security-no-signing-credential',
  'key-lookup-failed': 'security-revocation-unknown',
};

export function refusalForSmime(code: SmimeFailureCode): RefusalCode {
  return SMIME_REFUSALS[code];
}

export function refusalForPgp(code: PgpFailureCode): RefusalCode {
  return PGP_REFUSALS[code];
}

/** A header value from verification facts: `key=value` pairs, values without `;` or line breaks. */
function describe(facts: Record<string, string | null>): string {
  return Object.entries(facts)
    .filter((e): e is [string, string] => e[1] !== null && e[1] !== '')
    .map(([k, v]) => `${k}=${v.replace(/[;\r\n]/g, ' ')}`)
    .join('; ');
}

async function keysOr<T>(work: () => Promise<T>, fallback: T): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof KeystoreError) return fallback;
    throw err;
  }
}

export interface Opened {
  message: Buffer;
  /** The `X-MSS-Verification` header line, CRLF-terminated. */
  header: string;
  /** What was verified, for later stages (the relay's sender check reads the signer's practitioner identifier). */
  verification: { signed: boolean; encrypted: boolean; practitionerId: string | null };
}

/** Opens a message protected with `kind` (see `detectProtection`) for `recipient`. */
export async function openSecured(ctx: SecurityContext, raw: Buffer, kind: Protection, recipient: MailboxRow): Promise<Opened> {
  if (kind === 'smime') {
    const decryptionKeys = await keysOr<DecryptionKey[]>(() => ctx.keystore.credentialsFor(recipient.address, 'encrypt'), []);
    const result = await processInbound({
      message: raw,
      decryptionKeys,
      trust: ctx.trust,
      options: { requireSignature: ctx.config.requireSignature, requireEncryption: false },
    });
    if (!result.ok) throw new Refusal(refusalForSmime(result.code), `${result.party}: ${result.detail}`);
    const v = result.verification;
    const facts = describe({
      method: 'smime',
      signature: v.signed ? 'valid' : 'none',
      signer: v.signerAddress,
      practitioner: v.practitionerId,
      issuer: v.certificate?.issuer ?? null,
      encryption: v.encrypted ? (v.contentEncryption ?? 'yes') : 'none',
      headers: v.wrapped ? 'protected' : null,
    });
    return {
      message: result.message,
      header: `${VERIFICATION_HEADER}: ${facts}\r\n`,
      verification: { signed: v.signed, encrypted: v.encrypted, practitionerId: v.practitionerId },
    };
  }
  const pgp = await keysOr(() => ctx.keystore.credentialsFor(recipient.address, 'openpgp'), null);
  const result = await processIncoming(raw, {
    decryptionKeys: pgp?.decryptionKeys ?? [],
    resolver: ctx.keystore.pgpResolver(),
    requireSignature: ctx.config.requireSignature,
  });
  if (!result.ok) throw new Refusal(refusalForPgp(result.code), result.detail);
  const v = result.value.verification;
  const facts = describe({
    method: 'pgp',
    signature: v.signed ? 'valid' : 'none',
    signer: v.signerAddress,
    fingerprint: v.signerFingerprint,
    encryption: v.encrypted ? 'yes' : 'none',
  });
  return {
    message: result.value.message,
    header: `${VERIFICATION_HEADER}: ${facts}\r\n`,
    verification: { signed: v.signed, encrypted: v.encrypted, practitionerId: null },
  };
}
