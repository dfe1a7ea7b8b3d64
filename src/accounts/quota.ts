import type { MailboxUsage } from '../store/types.js';

/**
 * The per-mailbox quota (`quota` in the configuration): a limit on the sum of message sizes, in KiB, and on the
 * number of messages, over all the mailbox's folders; 0 is no limit. Checked inside the unit of work that adds
 * messages (IMAP APPEND, COPY, MOVE; delivery), after `StoreTx.mailboxUsage`, so nothing is stored beyond it.
 */
export interface QuotaLimits {
  storageKiB: number;
  messages: number;
}

export function hasQuota(limits: QuotaLimits): boolean {
  return limits.storageKiB > 0 || limits.messages > 0;
}

/** Which limit adding `add` to `usage` would pass, or null when it fits. */
export function overQuota(limits: QuotaLimits, usage: MailboxUsage, add: MailboxUsage): 'storage' | 'messages' | null {
  if (limits.storageKiB > 0 && usage.bytes + add.bytes > limits.storageKiB * 1024) return 'storage';
  if (limits.messages > 0 && usage.messages + add.messages > limits.messages) return 'messages';
  return null;
}

/** Storage in the unit of RFC 9208's STORAGE resource (1024 octets), rounded up. */
export function kibibytes(bytes: number): number {
  return Math.ceil(bytes / 1024);
}
