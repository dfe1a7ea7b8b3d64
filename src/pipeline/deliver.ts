import { createHash } from 'node:crypto';
import type { QuotaLimits } from '../accounts/quota.js';
import { appendAudit, type AuditEvent } from '../audit/journal.js';
import type { SealedMail } from '../store/sealed-mail.js';
import type { MessageMeta } from '../mime/types.js';
import type { MailboxEvent, StoreTx } from '../store/types.js';
import { checkRecipientQuota } from './quota.js';
import type { Accepted, Delivered, LocalRoute, ParsedSubmission } from './types.js';

/** What delivery reads of a message: a parsed submission, or a message another operator relayed (src/pipeline/relay.ts). */
export type DeliveryInput = Pick<ParsedSubmission, 'remoteAddress' | 'receivedAt' | 'meta' | 'stored'> & {
  channel: ParsedSubmission['channel'] | 'relay';
  sender: { address: string };
};

/**
 * Delivers to every local recipient's INBOX and writes the audit trail in ONE unit of work: either every
 * copy and its audit record is durable, or nothing is (the adapter then answers with a temporary failure, or
 * `mailbox-full` when a recipient has no room under `quota`). Returns the events to publish once the commit is
 * done.
 */
export async function deliverLocal(
  mail: SealedMail,
  submission: DeliveryInput,
  routes: LocalRoute[],
  queueId: string,
  /** What each recipient receives when it differs from `submission.stored` (a message opened with its keys). */
  contentFor?: (route: LocalRoute) => { stored: Buffer; meta: MessageMeta },
  quota?: QuotaLimits,
  /** More records for the same unit of work (e.g. sender-check warnings let through in warn mode). */
  extraAudit: readonly AuditEvent[] = [],
  /**
   * Runs first in the unit of work (e.g. the relay records an idempotency key, a submission enqueues its items for
   * other operators); throwing rolls everything back.
   */
  inUnit?: (tx: StoreTx) => Promise<void>,
): Promise<{ accepted: Accepted; events: MailboxEvent[] }> {
  const messageIdHash = submission.meta.thread.messageId
    ? createHash('sha256').update(submission.meta.thread.messageId).digest('hex').slice(0, 32)
    : null;
  return mail.store.transaction(async (tx) => {
    await inUnit?.(tx);
    const delivered: Delivered[] = [];
    const events: MailboxEvent[] = [];
    const trail: AuditEvent[] = [...extraAudit];
    // Before any write, in mailbox order: the quota check locks the mailbox (PostgreSQL) ahead of its folders.
    for (const route of [...routes].sort((a, b) => a.mailbox.id - b.mailbox.id)) {
      await checkRecipientQuota(tx, quota, route, (contentFor?.(route) ?? submission).stored.length);
    }
    for (const route of routes) {
      const content = contentFor?.(route) ?? { stored: submission.stored, meta: submission.meta };
      const appended = await mail.append(tx, route.mailbox, 'INBOX', content.stored, {
        internalDate: submission.receivedAt.getTime(),
        meta: content.meta,
      });
      const { folderId, uid, modseq } = appended;
      delivered.push({ address: route.address, mailboxId: route.mailbox.id, folderId, uid, modseq });
      events.push({ kind: 'exists', mailboxId: route.mailbox.id, folderId, uid, modseq });
      trail.push({
        actor: submission.sender.address,
        action: 'deliver',
        object: route.address,
        outcome: 'ok',
        detail: { queueId, folder: 'INBOX', uid: appended.uid, uidValidity: appended.uidValidity },
      });
    }
    trail.push({
      actor: submission.sender.address,
      action: 'submit',
      object: queueId,
      outcome: 'accepted',
      detail: {
        channel: submission.channel,
        remote: submission.remoteAddress,
        recipients: routes.length,
        size: submission.stored.length,
        messageIdSha256: messageIdHash,
      },
    });
    // Last, in one call: the audit chain lock is held only from here to the commit.
    await appendAudit(tx, trail);
    return { accepted: { queueId, delivered }, events };
  });
}
