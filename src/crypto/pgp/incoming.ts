import type { PrivateKey } from 'openpgp';
import { headerValue } from '../../mime/headers.js';
import { singleFromAddress } from './address.js';
import { decryptOpenpgp } from './decrypt.js';
import { errorText, fail, ok, type PgpResult } from './failures.js';
import { headerFields, recombine, splitMessage } from './mime-entity.js';
import { parsePgpMime, type PgpMime } from './pgp-mime-parse.js';
import type { PublicKeyResolver } from './resolver.js';
import { inlineSignerIds, verifyDetached, verifyInline, type SignerInfo, type VerifyContext } from './verify.js';

/**
 * Inbound PGP/MIME (RFC 3156): decrypt with the mailbox's keys, verify the sender's signature, and give
 * back the message a reader sees — the outer header fields with the decrypted (and unwrapped) entity.
 *
 * Accepted forms: multipart/signed; multipart/encrypted; multipart/encrypted holding a multipart/signed
 * (§6.1); multipart/encrypted whose OpenPGP data is itself signed (§6.2, `gpg --sign --encrypt`). Both
 * signatures are checked when both are present. Encrypt-then-sign and double encryption are `unsupported`;
 * inline PGP (armor in a text/plain body) is not recognised. A message in none of these forms is returned
 * unchanged, marked neither encrypted nor signed: accepting it is the caller's policy (`requireSignature`).
 */

export interface IncomingOptions {
  /** The mailbox's private keys, unlocked (current and previous ones: old mail stays readable). */
  decryptionKeys: readonly PrivateKey[];
  /** Public keys known for the sender. */
  resolver: PublicKeyResolver;
  /** Refuse (`unsigned`) a message that carries no OpenPGP signature. */
  requireSignature?: boolean;
  /** The instant key validity is checked at (default: now). */
  date?: Date;
}

export interface PgpVerification {
  encrypted: boolean;
  signed: boolean;
  /** How the checked signature was carried; null when unsigned. */
  signatureForm: 'multipart-signed' | 'openpgp-inline' | null;
  /** The From address the signature was checked against. */
  signerAddress: string | null;
  /** Primary key fingerprint of the signer. */
  signerFingerprint: string | null;
  /** The (sub)key that made the signature. */
  signingKeyFingerprint: string | null;
  signedAt: Date | null;
  /** Hash of the signature, e.g. `sha256`. */
  hashAlgorithm: string | null;
  /** Primary fingerprint of the mailbox key that decrypted the message. */
  decryptionKeyFingerprint: string | null;
}

export interface IncomingResult {
  /** The readable message: outer header fields, then the decrypted/verified entity. */
  message: Buffer;
  verification: PgpVerification;
}

function unprotected(): PgpVerification {
  return {
    encrypted: false,
    signed: false,
    signatureForm: null,
    signerAddress: null,
    signerFingerprint: null,
    signingKeyFingerprint: null,
    signedAt: null,
    hashAlgorithm: null,
    decryptionKeyFingerprint: null,
  };
}

function recordSigner(v: PgpVerification, signer: SignerInfo, form: 'multipart-signed' | 'openpgp-inline'): void {
  if (v.signed) return; // the first signature checked describes the message; later ones were checked too
  v.signed = true;
  v.signatureForm = form;
  v.signerAddress = signer.address;
  v.signerFingerprint = signer.fingerprint;
  v.signingKeyFingerprint = signer.signingKeyFingerprint;
  v.signedAt = signer.created;
  v.hashAlgorithm = signer.hashAlgorithm;
}

/** RFC 3156 encrypts a MIME entity: header fields, or at least the empty line that ends an empty header. */
function looksLikeEntity(data: Buffer): boolean {
  return headerFields(data).length > 0 || data[0] === 0x0a || (data[0] === 0x0d && data[1] === 0x0a);
}

/** Verifies a multipart/signed and returns the entity it signs. */
async function checkSigned(
  part: Extract<PgpMime, { kind: 'signed' }>,
  ctx: VerifyContext,
  verification: PgpVerification,
): Promise<PgpResult<Buffer>> {
  const signer = await verifyDetached(part.signedData, part.signature, ctx);
  if (!signer.ok) return signer;
  recordSigner(verification, signer.value, 'multipart-signed');
  return ok(part.entity);
}

async function processMessage(raw: Buffer, options: IncomingOptions): Promise<PgpResult<IncomingResult>> {
  const date = options.date ?? new Date();
  const fields = headerFields(raw);
  if (fields.length === 0) return fail('malformed', 'message has no header fields');
  const from = singleFromAddress(headerValue(fields, 'from'));
  const ctx: VerifyContext = { fromAddress: from, resolver: options.resolver, date };
  const verification = unprotected();

  const outer = parsePgpMime(raw);
  if (!outer.ok) return outer;
  if (outer.value.kind === 'none') {
    if (options.requireSignature) return fail('unsigned', 'message is not PGP/MIME signed');
    return ok({ message: raw, verification });
  }

  let content: Buffer;
  if (outer.value.kind === 'signed') {
    const unwrapped = await checkSigned(outer.value, ctx, verification);
    if (!unwrapped.ok) return unwrapped;
    content = unwrapped.value;
    const inner = parsePgpMime(content);
    if (inner.ok && inner.value.kind === 'encrypted') return fail('unsupported', 'encrypted message inside a signed message');
  } else {
    const decrypted = await decryptOpenpgp(outer.value.data, options.decryptionKeys, date);
    if (!decrypted.ok) return decrypted;
    verification.encrypted = true;
    verification.decryptionKeyFingerprint = decrypted.value.decryptionKeyFingerprint;
    if (inlineSignerIds(decrypted.value.message).length > 0) {
      const signer = await verifyInline(decrypted.value.message, ctx);
      if (!signer.ok) return signer;
      recordSigner(verification, signer.value, 'openpgp-inline');
    }
    content = decrypted.value.data;
    if (!looksLikeEntity(content)) return fail('malformed', 'decrypted data is not a MIME entity');
    const inner = parsePgpMime(content);
    if (!inner.ok) return inner;
    if (inner.value.kind === 'encrypted') return fail('unsupported', 'encrypted message nested inside an encrypted message');
    if (inner.value.kind === 'signed') {
      const unwrapped = await checkSigned(inner.value, ctx, verification);
      if (!unwrapped.ok) return unwrapped;
      content = unwrapped.value;
    }
  }

  if (options.requireSignature && !verification.signed) return fail('unsigned', 'encrypted message carries no signature');
  // A From protected inside the entity must be the one the message travels (and was verified) under.
  const innerFrom = headerValue(headerFields(content), 'from');
  if (innerFrom !== null) {
    const protectedFrom = singleFromAddress(innerFrom);
    if (protectedFrom === null || protectedFrom !== from) {
      return fail('identity-mismatch', `protected From ${protectedFrom ?? '(unusable)'} differs from outer From ${from ?? '(none)'}`);
    }
  }
  return ok({ message: recombine(splitMessage(raw).outer, content), verification });
}

/** Decrypts and verifies one incoming message. Never throws: unreadable input is a `malformed` failure. */
export async function processIncoming(raw: Buffer, options: IncomingOptions): Promise<PgpResult<IncomingResult>> {
  try {
    return await processMessage(raw, options);
  } catch (err) {
    return fail('malformed', `unexpected error reading the message: ${errorText(err)}`);
  }
}
