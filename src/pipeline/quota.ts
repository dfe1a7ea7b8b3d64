import { hasQuota, overQuota, type QuotaLimits } from '../accounts/quota.js';
import type { StoreReads } from '../store/types.js';
import { Refusal } from './refusal.js';
import type { LocalRoute } from './types.js';

/**
 * The per-mailbox quota at delivery (`quota` in the configuration, shared with IMAP). A local recipient whose
 * mailbox has no room is refused with `mailbox-full` (552 5.2.2): at RCPT TO with `size` 0 (room for one more
 * message), and again inside the unit of work that delivers, with the message's size, where
 * `StoreTx.mailboxUsage` serialises deliveries to one mailbox. After DATA, SMTP has one answer for all
 * recipients: one of them full then refuses the message for all.
 */
export async function checkRecipientQuota(store: StoreReads, limits: QuotaLimits | undefined, route: LocalRoute, size: number): Promise<void> {
  if (!limits || !hasQuota(limits)) return;
  const over = overQuota(limits, await store.mailboxUsage(route.mailbox.id), { messages: 1, bytes: size });
  if (over) throw new Refusal('mailbox-full', `${route.address}: ${over} quota`);
}
