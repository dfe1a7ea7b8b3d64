import {
  decryptKey,
  encryptKey,
  readKeys,
  readPrivateKey as readOpenpgpPrivateKey,
  type Key,
  type PrivateKey,
  type PublicKey,
} from 'openpgp';
import { errorText, fail, ok, type PgpResult } from './failures.js';
import { checkKeyStrength } from './key-info.js';
import { PGP_CONFIG, PGP_FULL_CONFIG } from './policy.js';

/**
 * Import and export of keys, armored (ASCII) or binary. Every import validates: structure (openpgp parses
 * and checks packets), kind (public where public is expected), strength (`weak-key`). Validity in time
 * (expiry, revocation) is checked where a key is used, not here: an expired key still verifies old mail.
 */

export type KeyInput = string | Uint8Array;

/** Upper bound on an imported key block: real keys with many signatures stay well below 1 MiB. */
export const MAX_KEY_BYTES = 1 << 20;

function isArmored(input: KeyInput): boolean {
  const head = typeof input === 'string' ? input.slice(0, 256) : Buffer.from(input.subarray(0, 256)).toString('latin1');
  return /^\s*-----BEGIN PGP /.test(head);
}

function tooLarge(input: KeyInput): boolean {
  return input.length > MAX_KEY_BYTES;
}

const ARMOR_BLOCK = /-----BEGIN PGP [A-Z ]+-----[\s\S]*?-----END PGP [A-Z ]+-----/g;

async function parseKeys(input: KeyInput): Promise<Key[]> {
  if (isArmored(input)) {
    // Several armored blocks one after the other (keys pasted together) are read block by block.
    const text = typeof input === 'string' ? input : Buffer.from(input).toString('utf8');
    const blocks = text.match(ARMOR_BLOCK) ?? [text];
    const keys: Key[] = [];
    for (const armoredKeys of blocks) keys.push(...(await readKeys({ armoredKeys, config: PGP_CONFIG })));
    return keys;
  }
  const binaryKeys = typeof input === 'string' ? new Uint8Array(Buffer.from(input, 'latin1')) : input;
  return readKeys({ binaryKeys, config: PGP_CONFIG });
}

/** Reads one or more public keys (a keyring export). Private key blocks are refused: use readPrivateKey. */
export async function readPublicKeys(input: KeyInput): Promise<PgpResult<PublicKey[]>> {
  if (tooLarge(input)) return fail('malformed', `key block larger than ${MAX_KEY_BYTES} bytes`);
  let keys: Key[];
  try {
    keys = await parseKeys(input);
  } catch (err) {
    return fail('malformed', `unreadable public key: ${errorText(err)}`);
  }
  if (keys.length === 0) return fail('malformed', 'no key in the block');
  for (const key of keys) {
    if (key.isPrivate()) return fail('malformed', 'expected a public key, got a private key');
    const weak = checkKeyStrength(key);
    if (weak) return weak;
  }
  return ok(keys as PublicKey[]);
}

/** Reads exactly one public key. */
export async function readPublicKey(input: KeyInput): Promise<PgpResult<PublicKey>> {
  const keys = await readPublicKeys(input);
  if (!keys.ok) return keys;
  if (keys.value.length !== 1) return fail('malformed', `expected one public key, got ${keys.value.length}`);
  return ok(keys.value[0]!);
}

/**
 * Reads one private key and returns it ready to use (decrypted). A passphrase-protected key needs
 * `passphrase` (`key-locked` without it, `bad-passphrase` when it does not open the key).
 */
export async function readPrivateKey(input: KeyInput, passphrase?: string): Promise<PgpResult<PrivateKey>> {
  if (tooLarge(input)) return fail('malformed', `key block larger than ${MAX_KEY_BYTES} bytes`);
  let key: PrivateKey;
  try {
    key = isArmored(input)
      ? await readOpenpgpPrivateKey({
          armoredKey: typeof input === 'string' ? input : Buffer.from(input).toString('utf8'),
          config: PGP_CONFIG,
        })
      : await readOpenpgpPrivateKey({
          binaryKey: typeof input === 'string' ? new Uint8Array(Buffer.from(input, 'latin1')) : input,
          config: PGP_CONFIG,
        });
  } catch (err) {
    return fail('malformed', `unreadable private key: ${errorText(err)}`);
  }
  const weak = checkKeyStrength(key);
  if (weak) return weak;
  if (key.isDecrypted()) return ok(key);
  if (passphrase === undefined) return fail('key-locked', `private key ${key.getKeyID().toHex()} is passphrase-protected`);
  try {
    return ok(await decryptKey({ privateKey: key, passphrase, config: PGP_CONFIG }));
  } catch (err) {
    return fail('bad-passphrase', `cannot unlock private key ${key.getKeyID().toHex()}: ${errorText(err)}`);
  }
}

/** ASCII-armored public key (a private key is exported as its public part). */
export function armorPublicKey(key: Key): string {
  return key.toPublic().armor(PGP_FULL_CONFIG);
}

/** Binary (transferable public key) form, e.g. for a directory or an Autocrypt header. */
export function binaryPublicKey(key: Key): Uint8Array {
  return key.toPublic().write();
}

/**
 * ASCII-armored private key. With `passphrase` the secret material is encrypted (iterated S2K, readable
 * by gpg 2.2); without it the key is exported in clear, for a keystore that seals the armor itself.
 */
export async function armorPrivateKey(key: PrivateKey, passphrase?: string): Promise<string> {
  if (passphrase === undefined) return key.armor(PGP_FULL_CONFIG);
  const locked = await encryptKey({ privateKey: key, passphrase, config: PGP_CONFIG });
  return locked.armor(PGP_FULL_CONFIG);
}
