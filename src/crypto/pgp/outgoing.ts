import { createMessage, encrypt, sign, type PrivateKey, type PublicKey, type Signature } from 'openpgp';
import { singleFromAddress } from './address.js';
import { errorText, fail, ok, type PgpResult } from './failures.js';
import { fingerprintOf, verifiedEmails } from './key-info.js';
import { checkEncryptionKey, checkSigningKey, keyErrorCode } from './key-usability.js';
import { assembleMessage, headerFields, splitMessage, type SplitMessage } from './mime-entity.js';
import { buildEncrypted, buildSigned, containerEntity, type Container } from './pgp-mime-build.js';
import { micalgFor, PGP_CONFIG, PGP_FULL_CONFIG } from './policy.js';
import { resolveRecipientKeys } from './recipient-keys.js';
import type { PublicKeyResolver } from './resolver.js';
import { canonicalEntity } from './seven-bit.js';

/**
 * Outbound PGP/MIME (RFC 3156): sign, encrypt, or sign then encrypt (§6.1, a multipart/signed inside the
 * multipart/encrypted) a whole RFC 5322 message. The outer message keeps every header field except the
 * Content-* ones, which move inside with the body.
 */

export interface SignOptions {
  /** The sender's private key, unlocked. One of its valid user IDs must carry the From address. */
  signingKey: PrivateKey;
  /** Signing time and the instant key validity is checked at (default: now). */
  date?: Date;
}

export interface EncryptOptions {
  /** Envelope recipients (To, Cc and Bcc alike): each needs at least one usable key. */
  recipients: readonly string[];
  resolver: PublicKeyResolver;
  /** Also encrypt to this key (the sender's own), so the sent copy stays readable. */
  encryptToSelf?: PublicKey;
  date?: Date;
}

export interface SignAndEncryptOptions {
  /** The sender's private key, unlocked; the message is also encrypted to its public part. */
  signingKey: PrivateKey;
  recipients: readonly string[];
  resolver: PublicKeyResolver;
  date?: Date;
}

function split(raw: Buffer): PgpResult<SplitMessage> {
  if (headerFields(raw).length === 0) return fail('malformed', 'message has no header fields');
  return ok(splitMessage(raw));
}

/** The multipart/signed container over `entity`, checking the key may sign for the From address. */
async function signedContainer(entity: Buffer, from: string | null, key: PrivateKey, date: Date): Promise<PgpResult<Container>> {
  const unusable = await checkSigningKey(key, date);
  if (unusable) return unusable;
  if (from === null) return fail('malformed', 'message to sign has no single From address');
  if (!(await verifiedEmails(key, date)).includes(from)) {
    return fail('identity-mismatch', `signing key ${fingerprintOf(key)} has no valid user ID for ${from}`, from);
  }
  const prepared = canonicalEntity(entity);
  if (!prepared.ok) return prepared;
  try {
    // With `detached`, openpgp returns a Signature (its typings say Message).
    const signature = (await sign({
      message: await createMessage({ binary: new Uint8Array(prepared.value) }),
      signingKeys: key,
      detached: true,
      format: 'object',
      date,
      config: PGP_CONFIG,
    })) as unknown as Signature;
    const micalg = micalgFor(signature.packets[0]?.hashAlgorithm ?? null);
    if (micalg === null) return fail('weak-algorithm', 'signature made with a hash that has no RFC 3156 micalg');
    return ok(buildSigned(prepared.value, signature.armor(PGP_FULL_CONFIG), micalg));
  } catch (err) {
    return fail(keyErrorCode(err, 'no-signing-key'), `signing failed: ${errorText(err)}`);
  }
}

async function encryptedContainer(entity: Buffer, keys: PublicKey[], date: Date): Promise<PgpResult<Container>> {
  try {
    const armored = await encrypt({
      message: await createMessage({ binary: new Uint8Array(entity) }),
      encryptionKeys: keys,
      format: 'armored',
      date,
      config: PGP_CONFIG,
    });
    return ok(buildEncrypted(armored));
  } catch (err) {
    return fail(keyErrorCode(err, 'no-recipient-key'), `encryption failed: ${errorText(err)}`);
  }
}

function fromOf(message: SplitMessage): string | null {
  return singleFromAddress(message.outer.find((f) => f.name === 'from')?.value ?? null);
}

async function signMessageUnguarded(raw: Buffer, options: SignOptions): Promise<PgpResult<Buffer>> {
  const date = options.date ?? new Date();
  const message = split(raw);
  if (!message.ok) return message;
  const signed = await signedContainer(message.value.entity, fromOf(message.value), options.signingKey, date);
  if (!signed.ok) return signed;
  return ok(assembleMessage(message.value.outer, signed.value.contentType, signed.value.body));
}

async function encryptMessageUnguarded(raw: Buffer, options: EncryptOptions): Promise<PgpResult<Buffer>> {
  const date = options.date ?? new Date();
  const message = split(raw);
  if (!message.ok) return message;
  if (options.recipients.length === 0) return fail('no-recipient-key', 'no recipients to encrypt to');
  const keys = await resolveRecipientKeys(options.recipients, options.resolver, date);
  if (!keys.ok) return keys;
  if (options.encryptToSelf) {
    const unusable = await checkEncryptionKey(options.encryptToSelf, date);
    if (unusable) return unusable;
    const self = fingerprintOf(options.encryptToSelf);
    if (!keys.value.some((k) => fingerprintOf(k) === self)) keys.value.push(options.encryptToSelf);
  }
  const entity = canonicalEntity(message.value.entity);
  if (!entity.ok) return entity;
  const encrypted = await encryptedContainer(entity.value, keys.value, date);
  if (!encrypted.ok) return encrypted;
  return ok(assembleMessage(message.value.outer, encrypted.value.contentType, encrypted.value.body));
}

async function signAndEncryptMessageUnguarded(raw: Buffer, options: SignAndEncryptOptions): Promise<PgpResult<Buffer>> {
  const date = options.date ?? new Date();
  const message = split(raw);
  if (!message.ok) return message;
  if (options.recipients.length === 0) return fail('no-recipient-key', 'no recipients to encrypt to');
  const keys = await resolveRecipientKeys(options.recipients, options.resolver, date);
  if (!keys.ok) return keys;
  const self = options.signingKey.toPublic();
  const selfUnusable = await checkEncryptionKey(self, date);
  if (selfUnusable) return selfUnusable;
  const signed = await signedContainer(message.value.entity, fromOf(message.value), options.signingKey, date);
  if (!signed.ok) return signed;
  const all = [...keys.value.filter((k) => fingerprintOf(k) !== fingerprintOf(self)), self];
  const encrypted = await encryptedContainer(containerEntity(signed.value), all, date);
  if (!encrypted.ok) return encrypted;
  return ok(assembleMessage(message.value.outer, encrypted.value.contentType, encrypted.value.body));
}

/** Unreadable input ends as a `malformed` failure, never as an exception. */
function guarded<O>(run: (raw: Buffer, options: O) => Promise<PgpResult<Buffer>>) {
  return async (raw: Buffer, options: O): Promise<PgpResult<Buffer>> => {
    try {
      return await run(raw, options);
    } catch (err) {
      return fail('malformed', `unexpected error preparing the message: ${errorText(err)}`);
    }
  };
}

/** multipart/signed: the message readable by everyone, its content signed. */
export const signMessage: (raw: Buffer, options: SignOptions) => Promise<PgpResult<Buffer>> = guarded(signMessageUnguarded);

/** multipart/encrypted: the content readable by the recipients (and the sender with `encryptToSelf`). */
export const encryptMessage: (raw: Buffer, options: EncryptOptions) => Promise<PgpResult<Buffer>> =
  guarded(encryptMessageUnguarded);

/** multipart/encrypted around a multipart/signed (RFC 3156 §6.1), to every recipient and the sender. */
export const signAndEncryptMessage: (raw: Buffer, options: SignAndEncryptOptions) => Promise<PgpResult<Buffer>> =
  guarded(signAndEncryptMessageUnguarded);
