import { hasQuota, kibibytes, overQuota } from '../accounts/quota.js';
import type { MailboxUsage, StoreReads, StoreTx } from '../store/types.js';
import { ImapError, type SessionApi } from './command.js';
import { atom, untagged, type Value } from './serializer.js';

/**
 * QUOTA (RFC 9208) over the configured per-mailbox limits: one quota root, named "", governs every folder of the
 * mailbox, with the STORAGE (KiB) and MESSAGE resources that have a limit. Without any limit there is no root.
 */

export const QUOTA_ROOT = '';

/** The roots governing a folder of the session's mailbox. */
export function quotaRoots(session: SessionApi): string[] {
  return hasQuota(session.deps.quota) ? [QUOTA_ROOT] : [];
}

/** `* QUOTA "" (STORAGE used limit MESSAGE used limit)`, resources with a limit only. */
export async function quotaResponse(session: SessionApi, store: StoreReads): Promise<Buffer> {
  const { storageKiB, messages } = session.deps.quota;
  const usage = await store.mailboxUsage(session.user!.id);
  const resources: Value[] = [];
  if (storageKiB > 0) resources.push(atom('STORAGE'), kibibytes(usage.bytes), storageKiB);
  if (messages > 0) resources.push(atom('MESSAGE'), usage.messages, messages);
  return untagged([atom('QUOTA'), QUOTA_ROOT, resources]);
}

/**
 * Refuses, inside the unit of work that is about to add them, messages that would take the mailbox beyond its
 * quota (`NO [OVERQUOTA]`; the unit of work rolls back, so nothing is stored). Call it before the first write.
 */
export async function checkQuota(session: SessionApi, tx: StoreTx, add: MailboxUsage): Promise<void> {
  const limits = session.deps.quota;
  if (!hasQuota(limits) || add.messages === 0) return;
  const over = overQuota(limits, await tx.mailboxUsage(session.user!.id), add);
  if (over === 'storage') throw new ImapError('NO', `Mailbox full: the quota is ${limits.storageKiB} KiB`, 'OVERQUOTA');
  if (over === 'messages') throw new ImapError('NO', `Mailbox full: the quota is ${limits.messages} messages`, 'OVERQUOTA');
}
