import type { PublicKey } from 'openpgp';
import { normalizeAddress } from './address.js';
import { keyInfo } from './key-info.js';

/**
 * Where the agent finds public keys for an address (the directory, a keyring, WKD...). Implementations
 * return every key they hold for the address, usable or not; the agent decides which one applies and why
 * the others do not. A thrown error means the lookup itself failed (`key-lookup-failed`).
 */
export interface PublicKeyResolver {
  keysFor(address: string): Promise<PublicKey[]>;
}

/** A resolver over a fixed set of keys, indexed by the emails of their user IDs. */
export function staticResolver(keys: readonly PublicKey[]): PublicKeyResolver {
  const index = new Map<string, PublicKey[]>();
  for (const key of keys) {
    for (const email of keyInfo(key).emails) {
      const list = index.get(email) ?? [];
      list.push(key);
      index.set(email, list);
    }
  }
  return {
    keysFor: (address) => Promise.resolve([...(index.get(normalizeAddress(address)) ?? [])]),
  };
}
