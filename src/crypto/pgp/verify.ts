import {
  createMessage,
  readSignature,
  verify,
  type KeyID,
  type Message,
  type PublicKey,
  type Signature,
} from 'openpgp';
import { isArmored } from './decrypt.js';
import { errorText, fail, ok, type PgpFailure, type PgpResult } from './failures.js';
import { fingerprintOf, verifiedEmails } from './key-info.js';
import { checkPrimaryKey, checkSigningSubkey, keyErrorCode } from './key-usability.js';
import { hashName, PGP_CONFIG } from './policy.js';
import type { PublicKeyResolver } from './resolver.js';

/**
 * Signature checks against the sender's known keys. In order: the issuer must be one of the keys the
 * resolver knows for the From address (`unknown-signer`), that key must be strong and valid now
 * (`weak-key`, `key-expired`, `key-revoked`), the signature must match (`bad-signature`, `weak-algorithm`),
 * and one of the key's valid user IDs must carry the From address (`identity-mismatch`).
 */

export interface SignerInfo {
  /** The From address the signature was checked against (normalised). */
  address: string;
  /** Primary key fingerprint of the signer. */
  fingerprint: string;
  /** Fingerprint of the (sub)key that made the signature. */
  signingKeyFingerprint: string;
  created: Date | null;
  /** e.g. `sha256`. */
  hashAlgorithm: string | null;
}

export interface VerifyContext {
  /** The single From address, normalised; null when the message has none or several. */
  fromAddress: string | null;
  resolver: PublicKeyResolver;
  date: Date;
}

/** Maps an openpgp signature-verification error text to a failure (key validity texts: keyErrorCode). */
function verificationFailure(err: unknown, address: string): PgpFailure {
  const text = errorText(err);
  if (/insecure .*hash|hash algorithm/i.test(text)) return fail('weak-algorithm', text, address);
  if (/could not find signing key/i.test(text)) return fail('unknown-signer', text, address);
  return fail(keyErrorCode(err, 'bad-signature'), text, address);
}

function idHex(id: KeyID): string {
  return id.toHex().toLowerCase();
}

/** The keys known for the sender that issued one of `issuers`, after checking they may be used now. */
async function signerKeys(issuers: KeyID[], ctx: VerifyContext): Promise<PgpResult<{ address: string; keys: PublicKey[] }>> {
  const address = ctx.fromAddress;
  if (address === null) return fail('malformed', 'signed message without a single From address');
  if (issuers.length === 0) return fail('malformed', 'signature names no issuer key', address);
  let known: PublicKey[];
  try {
    known = await ctx.resolver.keysFor(address);
  } catch (err) {
    return fail('key-lookup-failed', `keys for ${address}: ${errorText(err)}`, address);
  }
  const matching = known.filter((key) => issuers.some((id) => key.getKeys(id).length > 0));
  if (matching.length === 0) {
    return fail('unknown-signer', `signed by ${issuers.map(idHex).join(', ')}, not a known key of ${address}`, address);
  }
  for (const key of matching) {
    const problem = await checkPrimaryKey(key, ctx.date);
    if (problem) return { ...problem, address };
    for (const id of issuers) {
      if (key.getKeys(id).length === 0) continue;
      const subkey = await checkSigningSubkey(key, id, ctx.date);
      if (subkey) return { ...subkey, address };
    }
  }
  return ok({ address, keys: matching });
}

async function finish(
  results: { keyID: KeyID; verified: Promise<true>; signature: Promise<Signature> }[],
  keys: PublicKey[],
  address: string,
  date: Date,
): Promise<PgpResult<SignerInfo>> {
  // Every result carries promises that may reject; observe them all so none is left unhandled.
  for (const r of results) {
    r.verified.catch(() => undefined);
    r.signature.catch(() => undefined);
  }
  const relevant = results.filter((r) => keys.some((k) => k.getKeys(r.keyID).length > 0));
  if (relevant.length === 0) return fail('unknown-signer', 'no signature by a known key', address);
  let signer: SignerInfo | null = null;
  for (const result of relevant) {
    try {
      await result.verified;
    } catch (err) {
      return verificationFailure(err, address);
    }
    if (signer) continue;
    const key = keys.find((k) => k.getKeys(result.keyID).length > 0)!;
    const packet = (await result.signature).packets[0];
    const emails = await verifiedEmails(key, date);
    if (!emails.includes(address)) {
      return fail(
        'identity-mismatch',
        `key ${fingerprintOf(key)} is for ${emails.join(', ') || 'no valid address'}, message is from ${address}`,
        address,
      );
    }
    signer = {
      address,
      fingerprint: fingerprintOf(key),
      signingKeyFingerprint: key.getKeys(result.keyID)[0]!.getFingerprint().toLowerCase(),
      created: packet?.created ?? null,
      hashAlgorithm: hashName(packet?.hashAlgorithm ?? null),
    };
  }
  return ok(signer!);
}

/** A detached signature (multipart/signed) over `signedData` (already CRLF-canonical). */
export async function verifyDetached(signedData: Buffer, signatureBytes: Buffer, ctx: VerifyContext): Promise<PgpResult<SignerInfo>> {
  let signature: Signature;
  try {
    signature = isArmored(signatureBytes, 'SIGNATURE')
      ? await readSignature({ armoredSignature: signatureBytes.toString('latin1'), config: PGP_CONFIG })
      : await readSignature({ binarySignature: new Uint8Array(signatureBytes), config: PGP_CONFIG });
  } catch (err) {
    return fail('malformed', `unreadable signature: ${errorText(err)}`);
  }
  const found = await signerKeys(signature.getSigningKeyIDs(), ctx);
  if (!found.ok) return found;
  let results;
  try {
    const message = await createMessage({ binary: new Uint8Array(signedData) });
    ({ signatures: results } = await verify({
      message,
      signature,
      verificationKeys: found.value.keys,
      format: 'binary',
      date: ctx.date,
      config: PGP_CONFIG,
    }));
  } catch (err) {
    return verificationFailure(err, found.value.address);
  }
  return finish(results, found.value.keys, found.value.address, ctx.date);
}

/** The key IDs of the signatures carried inside a decrypted OpenPGP message (none: not signed inside). */
export function inlineSignerIds(message: Message<Uint8Array>): KeyID[] {
  return [...message.getSigningKeyIDs()];
}

/** Signatures carried inside the decrypted OpenPGP message (RFC 3156 §6.2, what `gpg -se` makes). */
export async function verifyInline(message: Message<Uint8Array>, ctx: VerifyContext): Promise<PgpResult<SignerInfo>> {
  const found = await signerKeys(inlineSignerIds(message), ctx);
  if (!found.ok) return found;
  let results;
  try {
    ({ signatures: results } = await verify({
      message,
      verificationKeys: found.value.keys,
      format: 'binary',
      date: ctx.date,
      config: PGP_CONFIG,
    }));
  } catch (err) {
    return verificationFailure(err, found.value.address);
  }
  return finish(results, found.value.keys, found.value.address, ctx.date);
}
