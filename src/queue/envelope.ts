import { z } from 'zod';
import { aad, type Keyring } from '../crypto/seal.js';
import type { NewQueueItem, QueueItem } from '../store/types.js';
import { randomId } from '../random-id.js';

/**
 * What a queued message carries besides its bytes, sealed with the master key like the message itself
 * (docs/decisions/0001-sealed-at-rest-boundary.md): the SMTP envelope, who to send a DSN to, and the delivery
 * state the worker updates (last error, delay notice). Both are bound to the item id by their associated data,
 * so a sealed value moved onto another row does not open. Only the id, the destination domain, attempts and
 * times stay in clear.
 */

export const queueEnvelopeSchema = z
  .object({
    v: z.literal(1),
    /** The submission's transaction id (Received, 250 reply, audit). */
    submissionId: z.string(),
    /** The local mailbox that submitted it: DSNs go to its INBOX. */
    sender: z.string(),
    mailFrom: z.string(),
    recipients: z.array(z.string()).min(1),
    receivedAt: z.number(),
    /** What the outbound stage did: signed, signed and encrypted, or nothing (the client protected it). */
    protection: z.enum(['signed', 'signed+encrypted', 'client']),
    /** The last temporary failure, for `mss queue show` and the DSN. */
    lastError: z.object({ at: z.number(), reason: z.string() }).nullable().default(null),
    /** When the delay DSN was delivered (at most one per item). */
    delayNoticeAt: z.number().nullable().default(null),
  })
  .strict();

export type QueueEnvelope = z.infer<typeof queueEnvelopeSchema>;
export type NewQueueEnvelope = Omit<QueueEnvelope, 'v' | 'lastError' | 'delayNoticeAt'>;

const label = (id: string, part: 'envelope' | 'message') => `${aad.queueItem(id)}|${part}`;

/** A fresh item id: the idempotency key of every attempt (ADR 0008), unguessable, header-safe. */
export function newQueueItemId(): string {
  return randomId(15);
}

export class QueueSealer {
  constructor(private readonly keyring: Keyring) {}

  sealEnvelope(id: string, envelope: QueueEnvelope): Buffer {
    return this.keyring.sealWithMaster(JSON.stringify(envelope), label(id, 'envelope'));
  }

  openEnvelope(item: Pick<QueueItem, 'id' | 'sealedEnvelope'>): QueueEnvelope {
    const json: unknown = JSON.parse(this.keyring.openWithMaster(item.sealedEnvelope, label(item.id, 'envelope')).toString('utf8'));
    return queueEnvelopeSchema.parse(json);
  }

  openMessage(item: Pick<QueueItem, 'id' | 'sealedMessage'>): Buffer {
    return this.keyring.openWithMaster(item.sealedMessage, label(item.id, 'message'));
  }

  /** A new item, due now, for one destination. */
  item(destination: string, envelope: NewQueueEnvelope, message: Buffer, now = Date.now()): NewQueueItem {
    const id = newQueueItemId();
    const full: QueueEnvelope = { v: 1, ...envelope, lastError: null, delayNoticeAt: null };
    return {
      id,
      destination,
      sealedEnvelope: this.sealEnvelope(id, full),
      sealedMessage: this.keyring.sealWithMaster(message, label(id, 'message')),
      nextAttemptAt: now,
    };
  }
}
