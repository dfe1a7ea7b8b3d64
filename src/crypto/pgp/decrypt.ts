import { readMessage, type Message, type PrivateKey } from 'openpgp';
import { errorText, fail, ok, type PgpResult } from './failures.js';
import { fingerprintOf } from './key-info.js';
import { PGP_CONFIG, PGP_FULL_CONFIG } from './policy.js';

/** Reading and decrypting the OpenPGP message of a multipart/encrypted part with a mailbox's keys. */

export interface Decrypted {
  /** The literal data: for PGP/MIME, the inner MIME entity. */
  data: Buffer;
  /** The decrypted OpenPGP message, to check a signature carried inside it (RFC 3156 §6.2). */
  message: Message<Uint8Array>;
  /** Primary fingerprint of the mailbox key that opened the message. */
  decryptionKeyFingerprint: string;
}

type AnyMessage = Message<Uint8Array> | Message<string>;

export function isArmored(data: Buffer, label: 'MESSAGE' | 'SIGNATURE'): boolean {
  return new RegExp(`^\\s*-----BEGIN PGP ${label}-----`).test(data.subarray(0, 512).toString('latin1'));
}

async function readAny(data: Buffer): Promise<AnyMessage> {
  return isArmored(data, 'MESSAGE')
    ? readMessage({ armoredMessage: data.toString('latin1'), config: PGP_CONFIG })
    : readMessage({ binaryMessage: new Uint8Array(data), config: PGP_CONFIG });
}

const WILDCARD = '0000000000000000';

export async function decryptOpenpgp(data: Buffer, keys: readonly PrivateKey[], date: Date): Promise<PgpResult<Decrypted>> {
  let message: AnyMessage;
  try {
    message = await readAny(data);
  } catch (err) {
    return fail('malformed', `unreadable OpenPGP message: ${errorText(err)}`);
  }
  const ids = message.getEncryptionKeyIDs();
  if (ids.length === 0) return fail('malformed', 'OpenPGP message is not encrypted to any public key');
  const hexIds = ids.map((id) => id.toHex().toLowerCase());
  const candidates = hexIds.includes(WILDCARD)
    ? [...keys]
    : keys.filter((key) => ids.some((id) => key.getKeys(id).length > 0));
  if (candidates.length === 0) {
    return fail('cannot-decrypt', `encrypted to ${hexIds.join(', ')}; none is a key of this mailbox`);
  }
  let last = 'no key tried';
  for (const key of candidates) {
    let decrypted: AnyMessage;
    try {
      decrypted = (await message.decrypt([key], undefined, undefined, date, PGP_FULL_CONFIG)) as AnyMessage;
    } catch (err) {
      const text = errorText(err);
      if (/modification detected|integrity|authenticat|mdc|tag/i.test(text)) return fail('integrity-failure', text);
      if (/session key|decryption key/i.test(text)) {
        last = text; // this key does not open it: try the next one
        continue;
      }
      return fail('malformed', `decryption failed: ${text}`);
    }
    let literal: unknown;
    try {
      literal = decrypted.getLiteralData();
    } catch (err) {
      return fail('malformed', `decrypted data unreadable: ${errorText(err)}`);
    }
    if (!(literal instanceof Uint8Array)) return fail('malformed', 'decrypted OpenPGP message holds no literal data');
    return ok({
      data: Buffer.from(literal.buffer, literal.byteOffset, literal.byteLength),
      message: decrypted as Message<Uint8Array>,
      decryptionKeyFingerprint: fingerprintOf(key),
    });
  }
  return fail('cannot-decrypt', `no mailbox key opens the message: ${last}`);
}
