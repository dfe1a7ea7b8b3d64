import type { StoreReads } from '../store/types.js';
import { Refusal } from './refusal.js';
import type { RecipientRoute } from './types.js';

const ADDRESS = /^[^\s@<>()[\]\\,;:"]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/i;

/**
 * Decides where one recipient goes. Local domains deliver to an existing, active mailbox; remote domains
 * are refused until federation (the trust space and the outbound queue) is built.
 */
export async function routeRecipient(store: StoreReads, localDomains: readonly string[], input: string): Promise<RecipientRoute> {
  const address = input.trim().toLowerCase();
  if (!ADDRESS.test(address) || address.length > 254) throw new Refusal('bad-address');
  const domain = address.slice(address.lastIndexOf('@') + 1);
  if (!localDomains.includes(domain)) throw new Refusal('remote-domain-not-allowed', domain);
  const mailbox = await store.getMailbox(address);
  if (!mailbox) throw new Refusal('unknown-recipient');
  if (mailbox.state !== 'active') throw new Refusal('recipient-disabled');
  return { kind: 'local', address, mailbox };
}
