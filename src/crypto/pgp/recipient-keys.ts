import type { PublicKey } from 'openpgp';
import { normalizeAddress } from './address.js';
import { errorText, fail, ok, type PgpFailure, type PgpResult } from './failures.js';
import { fingerprintOf, verifiedEmails } from './key-info.js';
import { checkEncryptionKey } from './key-usability.js';
import type { PublicKeyResolver } from './resolver.js';

/**
 * The encryption keys for a list of recipients: every usable key the resolver knows for each address (a
 * recipient in a key rollover gets both). A key is usable when it is strong, valid now, has an encryption
 * subkey, and one of its valid user IDs carries the address (a key filed under the wrong address would
 * let someone else read the message). A recipient without any usable key fails the whole operation.
 */
export async function resolveRecipientKeys(
  recipients: readonly string[],
  resolver: PublicKeyResolver,
  date: Date,
): Promise<PgpResult<PublicKey[]>> {
  const out = new Map<string, PublicKey>();
  for (const address of new Set(recipients.map(normalizeAddress))) {
    let keys: PublicKey[];
    try {
      keys = await resolver.keysFor(address);
    } catch (err) {
      return fail('key-lookup-failed', `keys for ${address}: ${errorText(err)}`, address);
    }
    if (keys.length === 0) return fail('no-recipient-key', `no public key known for ${address}`, address);
    let firstProblem: PgpFailure | null = null;
    let usable = 0;
    for (const key of keys) {
      const problem = await checkEncryptionKey(key, date);
      if (problem) {
        firstProblem ??= { ...problem, address };
        continue;
      }
      if (!(await verifiedEmails(key, date)).includes(address)) {
        firstProblem ??= fail('identity-mismatch', `key ${fingerprintOf(key)} has no valid user ID for ${address}`, address);
        continue;
      }
      out.set(fingerprintOf(key), key);
      usable++;
    }
    if (usable === 0) return firstProblem ?? fail('no-recipient-key', `no usable key for ${address}`, address);
  }
  return ok([...out.values()]);
}
