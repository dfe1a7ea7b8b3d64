import type { StoreReads } from '../store/types.js';
import { Refusal } from './refusal.js';
import type { LocalRoute, RecipientRoute } from './types.js';

const ADDRESS = /^[^\s@<>()[\]\\,;:"]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/i;

/** What routing asks of the trust space (`TrustSpace` of src/policy/trust-store.ts): a domain's entries. */
export interface RemoteDomains {
  lookup(domain: string): Promise<readonly unknown[]>;
}

/**
 * Decides where one recipient goes. Local domains deliver to an existing, active mailbox (or a patient's pending
 * one); a domain of the trust space goes to the outbound queue (`remote`); any other domain is refused — and every
 * remote domain when federation is not wired (`remote` absent).
 */
export async function routeRecipient(store: StoreReads, localDomains: readonly string[], input: string): Promise<LocalRoute>;
export async function routeRecipient(store: StoreReads, localDomains: readonly string[], input: string, remote: RemoteDomains | undefined): Promise<RecipientRoute>;
export async function routeRecipient(store: StoreReads, localDomains: readonly string[], input: string, remote?: RemoteDomains): Promise<RecipientRoute> {
  const address = input.trim().toLowerCase();
  if (!ADDRESS.test(address) || address.length > 254) throw new Refusal('bad-address');
  const domain = address.slice(address.lastIndexOf('@') + 1);
  if (!localDomains.includes(domain)) {
    if (!remote) throw new Refusal('remote-domain-not-allowed', domain);
    if ((await remote.lookup(domain)).length === 0) throw new Refusal('domain-not-in-trust-space', domain);
    return { kind: 'remote', address, domain };
  }
  const mailbox = await store.getMailbox(address);
  if (!mailbox) throw new Refusal('unknown-recipient');
  // A patient mailbox pending activation receives (and keeps) its mail; the patient reads it once activated.
  const receives = mailbox.state === 'active' || (mailbox.type === 'PATIENT' && mailbox.state === 'pending');
  if (!receives) throw new Refusal('recipient-disabled');
  return { kind: 'local', address, mailbox };
}
