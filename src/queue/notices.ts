import type { Logger } from 'pino';
import { appendAudit } from '../audit/journal.js';
import { buildDsn, type DsnRecipient } from '../mime/dsn.js';
import type { SealedMail } from '../store/sealed-mail.js';
import type { Notifier, QueueItem, StoreTx } from '../store/types.js';
import type { QueueEnvelope, QueueSealer } from './envelope.js';
import type { AfterCommit, DeliveryReport, QueueWorkerOptions } from './worker.js';

/**
 * What the queue tells senders, and the journal, about their mail to other operators — each in the unit of
 * work that settles the item, so a notice exists if and only if the queue changed:
 * - delivered: a `relay` audit record; recipients the peer refused for good get a failure DSN, those it
 *   deferred go back to the queue as a new item (its age starts again);
 * - temporary failure: the reason is kept in the sealed envelope (`mss queue show`), and once the item is older
 *   than `delayNoticeAfterMs`, one delay DSN;
 * - permanent failure or too old: a failure DSN (RFC 3464).
 * DSNs go straight into the sender's INBOX (never through SMTP), from MAILER-DAEMON of the sender's domain.
 */

export interface NoticeOptions {
  mail: SealedMail;
  sealer: QueueSealer;
  notifier: Notifier;
  /** Our host name (`Reporting-MTA`). */
  hostname: string;
  delayNoticeAfterMs: number;
  maxAgeMs: number;
  log?: Logger;
  now?: () => number;
}

const TEXT = {
  expired: {
    fr: "Le serveur de l'opérateur destinataire n'a pas pu être joint, ou a différé le message, pendant toute la durée de conservation : nous avons cessé d'essayer.",
    en: "The recipient operator's server could not be reached, or kept deferring the message, for the whole retention period: we stopped trying.",
  },
  refused: {
    fr: "Le serveur de l'opérateur destinataire a refusé le message définitivement.",
    en: "The recipient operator's server refused the message permanently.",
  },
  delayed: {
    fr: "Le message n'a pas encore pu être remis à l'opérateur destinataire. Vous n'avez rien à faire : nous réessayons.",
    en: 'The message could not be handed to the recipient operator yet. There is nothing to do: we keep trying.',
  },
} as const;

/** The enhanced status code in a reply (`550 5.1.1 …`), if it has one of the wanted class. */
function enhancedCode(reason: string, klass: '4' | '5'): string | null {
  const m = new RegExp(`\\b(${klass}\\.\\d{1,3}\\.\\d{1,3})\\b`).exec(reason);
  return m ? m[1]! : null;
}

export function queueNotices(o: NoticeOptions): Required<Pick<QueueWorkerOptions, 'onFailed' | 'onRetry' | 'onDelivered'>> {
  const now = o.now ?? Date.now;

  /** Builds a DSN and appends it to the sender's INBOX; returns what to publish after the commit. */
  async function deliverDsn(
    tx: StoreTx,
    item: QueueItem,
    envelope: QueueEnvelope,
    recipients: DsnRecipient[],
    explanation: { fr: string; en: string },
  ): Promise<AfterCommit | undefined> {
    const outcome = recipients[0]!.action;
    const detail = { queueId: envelope.submissionId, destination: item.destination, recipients: recipients.length, status: recipients[0]!.status };
    if (envelope.mailFrom === '') {
      // A null-sender message (an MDN or DSN we sent) is never bounced (RFC 5321 §4.5.5): audited only.
      await appendAudit(tx, { actor: 'queue', action: 'bounce', object: item.id, outcome: `${outcome}-null-sender`, detail });
      return undefined;
    }
    const mailbox = await tx.getMailbox(envelope.sender);
    if (!mailbox || mailbox.state !== 'active') {
      o.log?.warn({ item: item.id }, 'no mailbox to deliver a DSN to');
      await appendAudit(tx, { actor: 'queue', action: 'bounce', object: item.id, outcome: `${outcome}-undeliverable`, detail });
      return undefined;
    }
    const dsn = buildDsn({
      reportingMta: o.hostname,
      domain: envelope.sender.slice(envelope.sender.lastIndexOf('@') + 1),
      to: envelope.mailFrom || envelope.sender,
      original: o.sealer.openMessage(item),
      recipients,
      arrivalDate: new Date(envelope.receivedAt),
      originalEnvelopeId: envelope.submissionId,
      explanation,
    });
    const appended = await o.mail.append(tx, mailbox, 'INBOX', dsn.raw, { internalDate: now() });
    await appendAudit(tx, { actor: 'queue', action: 'bounce', object: item.id, outcome, detail: { ...detail, uid: appended.uid } });
    const event = { kind: 'exists' as const, mailboxId: mailbox.id, folderId: appended.folderId, uid: appended.uid, modseq: appended.modseq };
    return () => o.notifier.publish(event);
  }

  const failed = (recipient: string, status: string, diagnostic: string, remoteMta?: string): DsnRecipient => ({
    finalRecipient: recipient,
    action: 'failed',
    status,
    diagnostic,
    remoteMta: remoteMta ?? null,
    lastAttemptDate: new Date(now()),
  });

  return {
    async onFailed(tx, item, reason) {
      const envelope = o.sealer.openEnvelope(item);
      const expired = now() - item.createdAt >= o.maxAgeMs;
      const status = expired ? '4.4.7' : (enhancedCode(reason, '5') ?? '5.0.0');
      return deliverDsn(
        tx,
        item,
        envelope,
        envelope.recipients.map((r) => failed(r, status, reason)),
        expired ? TEXT.expired : TEXT.refused,
      );
    },

    async onRetry(tx, item, reason) {
      const envelope = o.sealer.openEnvelope(item);
      const at = now();
      envelope.lastError = { at, reason };
      let after: AfterCommit | undefined;
      if (envelope.delayNoticeAt === null && at - item.createdAt >= o.delayNoticeAfterMs) {
        const status = enhancedCode(reason, '4') ?? '4.4.1';
        after = await deliverDsn(
          tx,
          item,
          envelope,
          envelope.recipients.map((r) => ({
            finalRecipient: r,
            action: 'delayed' as const,
            status,
            diagnostic: reason,
            lastAttemptDate: new Date(at),
            willRetryUntil: new Date(item.createdAt + o.maxAgeMs),
          })),
          TEXT.delayed,
        );
        envelope.delayNoticeAt = at;
      }
      await tx.updateQueueEnvelope(item.id, o.sealer.sealEnvelope(item.id, envelope));
      return after;
    },

    async onDelivered(tx, item, report: DeliveryReport) {
      const envelope = o.sealer.openEnvelope(item);
      const rejected = report.rejected ?? [];
      const refused = rejected.filter((r) => r.permanent);
      const deferred = rejected.filter((r) => !r.permanent && envelope.recipients.includes(r.recipient));
      await appendAudit(tx, {
        actor: 'queue',
        action: 'relay',
        object: item.id,
        outcome: rejected.length ? 'partial' : 'delivered',
        detail: {
          queueId: envelope.submissionId,
          destination: item.destination,
          remoteMta: report.remoteMta ?? null,
          recipients: envelope.recipients.length - rejected.length,
          refused: refused.length,
          deferred: deferred.length,
          attempts: item.attempts,
        },
      });
      if (deferred.length > 0) {
        const again = o.sealer.item(
          item.destination,
          { ...envelope, recipients: deferred.map((r) => r.recipient) },
          o.sealer.openMessage(item),
          now(),
        );
        await tx.enqueue(again);
        await appendAudit(tx, {
          actor: 'queue',
          action: 'enqueue',
          object: again.id,
          outcome: 'deferred',
          detail: { queueId: envelope.submissionId, destination: item.destination, recipients: deferred.length, from: item.id },
        });
      }
      if (refused.length === 0) return undefined;
      return deliverDsn(
        tx,
        item,
        envelope,
        refused.map((r) => failed(r.recipient, enhancedCode(r.response, '5') ?? '5.0.0', r.response, report.remoteMta)),
        TEXT.refused,
      );
    },
  };
}
