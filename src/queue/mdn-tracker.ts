import { createHash, createHmac, hkdfSync } from 'node:crypto';
import type { Logger } from 'pino';
import { appendAudit } from '../audit/journal.js';
import { openJson, sealJson } from '../crypto/seal.js';
import { buildDsn } from '../mime/dsn.js';
import { decodeWords } from '../mime/encoded-words.js';
import { headerValue, readHeader } from '../mime/headers.js';
import { mdnPolicy, parseMdn, type ParsedMdn } from '../mime/mdn.js';
import { headerEnd } from '../mime/report.js';
import type { SealedMail } from '../store/sealed-mail.js';
import type { MailboxEvent, MailboxRow, MdnArrival, MdnTrackingRow, NewMdnTracking, Notifier, StoreTx } from '../store/types.js';

/**
 * The sending side of confirmed delivery (Direct "timely and reliable" delivery, Implementation Guide for
 * Delivery Notification, 2012): an outbound message whose sender asked for MDNs — Disposition-Notification-To
 * their own address, so that the receiving operator may answer automatically — is tracked per remote recipient
 * from the unit of work that queues it. The MDN coming back (over the relay, or delivered locally) settles its
 * entry; when the processed MDN — or the dispatched one, when the sender asked for final-delivery confirmation —
 * has not come within `federation.mdnDeadlineMinutes`, the sender gets one failure notice (a DSN, French and
 * English) in their INBOX, audited, and the entry goes.
 *
 * Nothing readable is kept in clear: the Message-ID, the recipient and the original's header are sealed with the
 * sender mailbox's data key, and the lookup key is an HMAC of (Message-ID, recipient) under a key derived from it.
 */

export interface MdnTrackerOptions {
  mail: SealedMail;
  notifier: Notifier;
  /** Our host name (`Reporting-MTA` of the notice). */
  hostname: string;
  /** How long a sender waits for the MDNs it asked for. */
  deadlineMs: number;
  log?: Logger;
  now?: () => number;
  /** Overdue entries handled per unit of work of a sweep. */
  batch?: number;
}

/** What a tracked entry keeps sealed. */
interface Details {
  v: 1;
  messageId: string;
  recipient: string;
  /** The submission's transaction id (Received, 250 reply, audit). */
  submissionId: string;
  sentAt: number;
  /** The original's header block, base64: returned in the failure notice as text/rfc822-headers. */
  header: string;
}

/** What an outbound message tells the tracker. */
export interface OutboundMessage {
  sender: MailboxRow;
  mailFrom: string;
  /** The message as submitted (its header is read; the body is not kept). */
  message: Buffer;
  /** Its recipients at other operators. */
  recipients: readonly string[];
  submissionId: string;
}

export type MdnReceipt = { settled: 'settled' | 'waiting' | null; mdn: ParsedMdn };

const KEY_INFO = 'mss mdn-tracking|v1';
/** The HMAC key of each mailbox, derived (HKDF-SHA-256) from its data key, once. */
const trackingKeys = new WeakMap<Buffer, Buffer>();
const DEFAULT_BATCH = 50;
/** How often `start` sweeps; a notice comes at most this late after its deadline. */
export const MDN_SWEEP_MS = 60_000;
/** How far into a delivered message the report Content-Type is looked for before parsing it as an MDN. */
const SNIFF_BYTES = 64 * 1024;

const NOTICE = {
  processed: {
    subject: { fr: 'Accusé de traitement non reçu', en: 'No processed notification received' },
    fr: (minutes: number) =>
      `Aucun accusé de traitement (MDN « processed ») n'est revenu de ce destinataire dans les ${minutes} minutes suivant l'envoi : le message a pu ne pas être remis ni traité. Vérifiez auprès du destinataire et renvoyez-le si nécessaire.`,
    en: (minutes: number) =>
      `No processed notification (MDN) came back from this recipient within ${minutes} minutes of sending: the message may not have been delivered or processed. Check with the recipient and send it again if needed.`,
  },
  dispatched: {
    subject: { fr: 'Remise finale non confirmée', en: 'Final delivery not confirmed' },
    fr: (minutes: number) =>
      `Le message a été reçu et traité par l'opérateur du destinataire, mais la confirmation de remise finale demandée (MDN « dispatched ») n'est pas revenue dans les ${minutes} minutes suivant l'envoi. Vérifiez auprès du destinataire et renvoyez-le si nécessaire.`,
    en: (minutes: number) =>
      `The message was received and processed by the recipient's operator, but the final delivery confirmation you asked for (dispatched MDN) did not come back within ${minutes} minutes of sending. Check with the recipient and send it again if needed.`,
  },
} as const;

/** A Message-ID as compared: the `<…>` part, white space removed. */
function normaliseMessageId(value: string): string {
  const bracketed = /<[^<>]*>/.exec(value);
  return (bracketed ? bracketed[0] : value).replace(/\s+/g, '');
}

/** A short, unlinkable-to-content reference for the journal (the same form as deliver's `messageIdSha256`). */
export function messageIdDigest(messageId: string): string {
  return createHash('sha256').update(messageId).digest('hex').slice(0, 32);
}

/** Whether a delivered message may be an MDN (a report of that type near its start), before parsing it. */
export function mayBeMdn(raw: Buffer): boolean {
  return /report-type\s*=\s*"?disposition-notification/i.test(raw.subarray(0, SNIFF_BYTES).toString('latin1'));
}

/** `processed` unless the MDN ends the wait: a dispatched one, an error, or an obsolete failure type. */
function arrivalOf(mdn: ParsedMdn): MdnArrival {
  const { type, modifiers } = mdn.disposition;
  if (type === 'dispatched' || type === 'failed' || type === 'denied' || mdn.error || modifiers.includes('error')) return 'final';
  return 'processed';
}

export class MdnTracker {
  readonly #o: Required<Omit<MdnTrackerOptions, 'log'>> & Pick<MdnTrackerOptions, 'log'>;
  #timer: NodeJS.Timeout | null = null;
  #sweeping: Promise<unknown> | null = null;

  constructor(options: MdnTrackerOptions) {
    this.#o = { ...options, now: options.now ?? Date.now, batch: options.batch ?? DEFAULT_BATCH };
  }

  /**
   * The entries for an outbound message, to write in the unit of work that queues it (`track`): one per remote
   * recipient, none when no MDN can be expected automatically (no Disposition-Notification-To, or not the sender's
   * own Return-Path) or the message has no Message-ID to match the MDN by.
   */
  entries(m: OutboundMessage): NewMdnTracking[] {
    const policy = mdnPolicy(m.message, { returnPath: m.mailFrom });
    if (!policy.automatic || policy.notifyTo?.toLowerCase() !== m.sender.address) return [];
    const messageIdField = headerValue(readHeader(m.message, 0, m.message.length).fields, 'message-id');
    if (!messageIdField) {
      this.#o.log?.info({ submission: m.submissionId }, 'MDN asked for a message without Message-ID: not tracked');
      return [];
    }
    const messageId = normaliseMessageId(messageIdField);
    const now = this.#o.now();
    const header = m.message.subarray(0, headerEnd(m.message)).toString('base64');
    return [...new Set(m.recipients.map((r) => r.toLowerCase()))].map((recipient) => {
      const trackKey = this.#key(m.sender, messageId, recipient);
      const details: Details = { v: 1, messageId, recipient, submissionId: m.submissionId, sentAt: now, header };
      return {
        mailboxId: m.sender.id,
        trackKey,
        deadline: now + this.#o.deadlineMs,
        wantDispatched: policy.finalDestinationDelivery,
        createdAt: now,
        sealedDetails: sealJson(this.#o.mail.key(m.sender), details, this.#label(m.sender.id, trackKey)),
      };
    });
  }

  /** Writes the entries in the caller's unit of work (with the queue items of the message). */
  async track(tx: StoreTx, entries: readonly NewMdnTracking[]): Promise<void> {
    for (const e of entries) await tx.trackMdn(e);
  }

  /**
   * In the unit of work that delivers `content` into `mailbox`: when it is an MDN about a message tracked for that
   * mailbox (Original-Message-ID, and Final-Recipient or Original-Recipient), settles or notes its entry and audits
   * the arrival. Null when it is not an MDN at all.
   */
  async received(tx: StoreTx, mailbox: MailboxRow, content: Buffer): Promise<MdnReceipt | null> {
    if (!mayBeMdn(content)) return null;
    let mdn: ParsedMdn;
    try {
      mdn = parseMdn(content);
    } catch {
      return null;
    }
    if (!mdn.originalMessageId) return { settled: null, mdn };
    const messageId = normaliseMessageId(mdn.originalMessageId);
    const arrival = arrivalOf(mdn);
    let settled: MdnReceipt['settled'] = null;
    for (const recipient of new Set([mdn.finalRecipient, mdn.originalRecipient].filter((r): r is string => !!r).map((r) => r.toLowerCase()))) {
      settled = await tx.recordMdn(mailbox.id, this.#key(mailbox, messageId, recipient), arrival, this.#o.now());
      if (settled) break;
    }
    await appendAudit(tx, {
      actor: mailbox.address,
      action: 'mdn',
      object: messageIdDigest(messageId),
      outcome: 'received',
      detail: { disposition: mdn.disposition.type, error: mdn.error?.code ?? null, tracked: settled ?? 'no' },
    });
    return { settled, mdn };
  }

  /** Delivers the failure notices of every overdue entry, in batches; returns how many entries were handled. */
  async sweep(): Promise<number> {
    let total = 0;
    for (;;) {
      const { handled, events } = await this.#o.mail.store.transaction(async (tx) => {
        const rows = await tx.claimOverdueMdn(this.#o.now(), this.#o.batch);
        const events: MailboxEvent[] = [];
        for (const row of rows) {
          const event = await this.#notice(tx, row);
          if (event) events.push(event);
          await tx.deleteMdnTracking(row.id);
        }
        return { handled: rows.length, events };
      });
      for (const event of events) this.#o.notifier.publish(event);
      total += handled;
      if (handled < this.#o.batch) return total;
    }
  }

  /** Sweeps every `intervalMs` until `stop`. */
  start(intervalMs = MDN_SWEEP_MS): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      this.#sweeping ??= this.sweep()
        .then(
          (n) => {
            if (n > 0) this.#o.log?.info({ notices: n }, 'missing MDNs reported to their senders');
          },
          (err: unknown) => this.#o.log?.warn({ err }, 'MDN deadline sweep failed; the next one tries again'),
        )
        .finally(() => (this.#sweeping = null));
    }, intervalMs).unref();
  }

  /** Stops sweeping and waits for a sweep in progress. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#sweeping;
  }

  #key(mailbox: MailboxRow, messageId: string, recipient: string): string {
    const dataKey = this.#o.mail.key(mailbox);
    let key = trackingKeys.get(dataKey);
    if (!key) {
      key = Buffer.from(hkdfSync('sha256', dataKey, Buffer.alloc(0), KEY_INFO, 32));
      trackingKeys.set(dataKey, key);
    }
    return createHmac('sha256', key).update(`${messageId}\n${recipient}`).digest('base64url');
  }

  #label(mailboxId: number, trackKey: string): string {
    return `mdn-tracking|${mailboxId}|${trackKey}`;
  }

  /** One failure notice into the sender's INBOX, audited; the event to publish after the commit. */
  async #notice(tx: StoreTx, row: MdnTrackingRow): Promise<MailboxEvent | null> {
    const mailbox = await tx.getMailboxById(row.mailboxId);
    const missing = row.wantDispatched && row.processedAt !== null ? 'dispatched' : 'processed';
    const record = { actor: mailbox?.address ?? `mailbox:${row.mailboxId}`, action: 'mdn-missing' as const, object: `tracking:${row.id}` };
    if (!mailbox || mailbox.state !== 'active') {
      await appendAudit(tx, { ...record, outcome: 'undeliverable', detail: { missing } });
      return null;
    }
    let details: Details;
    try {
      details = openJson<Details>(this.#o.mail.key(mailbox), row.sealedDetails, this.#label(row.mailboxId, row.trackKey));
    } catch (err) {
      this.#o.log?.warn({ err, entry: row.id }, 'MDN tracking entry cannot be opened: no notice');
      await appendAudit(tx, { ...record, outcome: 'unreadable', detail: { missing } });
      return null;
    }
    const minutes = Math.round(this.#o.deadlineMs / 60_000);
    const text = NOTICE[missing];
    const original = Buffer.from(details.header, 'base64');
    const rawSubject = headerValue(readHeader(original, 0, original.length).fields, 'subject');
    const dsn = buildDsn({
      reportingMta: this.#o.hostname,
      domain: mailbox.address.slice(mailbox.address.lastIndexOf('@') + 1),
      to: mailbox.address,
      original,
      recipients: [{ finalRecipient: details.recipient, action: 'failed', status: '4.4.7' }],
      arrivalDate: new Date(details.sentAt),
      originalEnvelopeId: details.submissionId,
      returnContent: 'headers',
      explanation: { fr: text.fr(minutes), en: text.en(minutes) },
      subject: `${text.subject.fr} / ${text.subject.en}${rawSubject ? ` : ${decodeWords(rawSubject)}` : ''}`,
    });
    const appended = await this.#o.mail.append(tx, mailbox, 'INBOX', dsn.raw, { internalDate: this.#o.now() });
    await appendAudit(tx, {
      actor: mailbox.address,
      action: 'mdn-missing',
      object: details.submissionId,
      outcome: 'notified',
      detail: { missing, recipient: details.recipient, messageIdSha256: messageIdDigest(details.messageId), uid: appended.uid },
    });
    return { kind: 'exists', mailboxId: mailbox.id, folderId: appended.folderId, uid: appended.uid, modseq: appended.modseq };
  }
}
