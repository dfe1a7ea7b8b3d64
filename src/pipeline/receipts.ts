import type { Logger } from 'pino';
import { appendAudit, type AuditEvent } from '../audit/journal.js';
import { buildMdn, mdnPolicy, type BuiltMdn, type DispositionType, type MdnAttachment, type MdnError } from '../mime/mdn.js';
import { paramValue } from '../mime/params.js';
import { parseMime } from '../mime/structure.js';
import { decodeTransfer } from '../mime/transfer.js';
import type { MimeNode } from '../mime/types.js';
import { mayBeMdn, type MdnTracker, type OutboundMessage } from '../queue/mdn-tracker.js';
import type { SealedMail } from '../store/sealed-mail.js';
import type { MailboxEvent, MailboxRow, NewMdnTracking, NewQueueItem, Notifier, StoreTx } from '../store/types.js';
import { VERIFICATION_HEADER } from './open-secured.js';
import type { OutboundStage } from './outbound.js';
import { rfc5322Date } from './received.js';
import { INTEGRATION_ERRORS, Refusal } from './refusal.js';
import { routeRecipient } from './route.js';
import { stripHeaderFields } from './strip-bcc.js';
import type { LocalRoute, RecipientRoute, RemoteRoute } from './types.js';

/**
 * The receipts stage (RFC 8098 MDNs as MSSanté and Direct use them), run by the submission and relay pipelines
 * around the delivery of a message:
 * - a message accepted for a local recipient whose sender asked for an MDN that may be sent automatically
 *   (`mdnPolicy`: Disposition-Notification-To equal to the Return-Path, the message not itself a report) gets a
 *   `processed` MDN from that recipient, and a `dispatched` one carrying X-DIRECT-FINAL-DESTINATION-DELIVERY when
 *   the sender asked for Direct final-delivery confirmation — both at once, delivery into the mailbox being the
 *   final delivery here;
 * - a document the structured-documents stage refuses becomes an error MDN (`processed/Error: <code>^<label>`,
 *   subject `[KO Intégration système !][<code>] …`, the original and its attachments returned) when the sender asked
 *   for one, instead of an SMTP refusal (`integrationError`);
 * - an MDN delivered here settles the sending side's tracker, and an outbound message asking for MDNs is tracked
 *   (src/queue/mdn-tracker.ts).
 * An MDN goes to a local mailbox's INBOX, or — signed and encrypted with the issuing mailbox's credentials by the
 * outbound stage — into the queue for another operator, always from the null sender `<>` and without a
 * Disposition-Notification-To of its own. It is written in the unit of work of the delivery it is about
 * (`PreparedReceipts.inUnit`, deliverLocal's hook), so both are durable together, or neither. An MDN that cannot be
 * built or routed is audited as not sent; it never refuses the message.
 */

export interface ReceiptsDeps {
  mail: SealedMail;
  hostname: string;
  localDomains: readonly string[];
  log: Logger;
  /** MDNs for other operators (routing, protection, queue); without it, an MDN to another domain is not sent. */
  outbound?: Pick<OutboundStage, 'lookup' | 'prepare' | 'queued'>;
  /** The sending side's tracker; without it, nothing is tracked and arriving MDNs settle nothing. */
  tracker?: MdnTracker;
}

/** A local recipient of a delivered message and what it received. */
export interface ReceiptRecipient {
  route: LocalRoute;
  content: Buffer;
}

export interface DeliveryReceipts {
  /** The envelope sender ('' for the null path): an MDN is automatic only when Disposition-Notification-To equals it. */
  returnPath: string;
  recipients: readonly ReceiptRecipient[];
  /** The delivery's transaction id (the audit object of the MDNs). */
  queueId: string;
  /** The part of the same message going to other operators, tracked when it asks for MDNs. */
  outbound?: OutboundMessage | null;
}

export interface IntegrationErrorReceipts {
  returnPath: string;
  /** The message as it reached the stage that refused it (opened, when it was protected). */
  original: Buffer;
  refusal: Refusal;
  /** Who the MDN is issued for: a local mailbox signs it; without one, the operator's MAILER-DAEMON issues it. */
  recipients: readonly { address: string; mailbox: MailboxRow | null }[];
  queueId: string;
}

/** MDNs ready to be written with the delivery they are about. */
export interface PreparedReceipts {
  /** How many MDNs will be sent. */
  readonly count: number;
  /** In the delivery's unit of work: arriving MDNs settled, local MDNs appended, remote ones queued, tracking written, audit. */
  inUnit(tx: StoreTx): Promise<void>;
  /** After the commit: publishes the new messages and wakes the queue. */
  afterCommit(notifier: Notifier): void;
}

/** One MDN, built and routed. */
interface Outgoing {
  mdn: BuiltMdn;
  route: LocalRoute | RemoteRoute;
  /** For a remote route: the queue items the outbound stage sealed (signed and encrypted). */
  items: NewQueueItem[];
  audit: AuditEvent[];
}

/** The original is returned whole up to this size, its header alone beyond (a report must stay deliverable). */
export const RETURN_FULL_MAX_BYTES = 5 * 1024 * 1024;
const REPORTING_PRODUCT = 'mss';

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

/** The message as returned in a report: without our own verification header, which means nothing elsewhere. */
function returnable(content: Buffer): Buffer {
  return stripHeaderFields(content, [VERIFICATION_HEADER.toLowerCase()]);
}

/** Attachments of the original (leaf parts with a file name, encapsulated messages not looked into), decoded. */
export function originalAttachments(raw: Buffer, root: MimeNode = parseMime(raw)): MdnAttachment[] {
  const found: MdnAttachment[] = [];
  const walk = (node: MimeNode) => {
    if (node.type === 'multipart') return node.children.forEach(walk);
    if (node.type === 'message') return;
    const filename = (node.disposition ? paramValue(node.disposition.params, 'filename') : null) ?? paramValue(node.params, 'name');
    if (!filename || !/^[\w.+-]+$/.test(node.type) || !/^[\w.+-]+$/.test(node.subtype)) return;
    found.push({ filename, contentType: `${node.type}/${node.subtype}`, content: decodeTransfer(raw.subarray(node.bodyStart, node.bodyEnd), node.encoding) });
  };
  walk(root);
  return found;
}

/** The MSSanté error an MDN reports for a refusal, when the refusal is one an application reports that way. */
export function integrationErrorFor(refusal: Refusal): MdnError | null {
  return INTEGRATION_ERRORS[refusal.code] ?? null;
}

const NOTHING: PreparedReceipts = { count: 0, inUnit: async () => undefined, afterCommit: () => undefined };

export class Receipts {
  constructor(private readonly deps: ReceiptsDeps) {}

  /**
   * For a message about to be delivered to local recipients: the MDNs its sender asked for, arriving MDNs to settle,
   * and the tracking of its part for other operators. Never throws for an MDN: one that cannot be built or routed is
   * audited as not sent.
   */
  async forDelivery(d: DeliveryReceipts): Promise<PreparedReceipts> {
    const tracking = d.outbound && this.deps.tracker ? this.deps.tracker.entries(d.outbound) : [];
    const arriving = this.deps.tracker ? d.recipients.filter((r) => mayBeMdn(r.content)) : [];
    const outgoing: Outgoing[] = [];
    const failures: AuditEvent[] = [];
    for (const { route, content } of d.recipients) {
      const policy = mdnPolicy(content, { returnPath: d.returnPath });
      if (!policy.automatic) {
        if (policy.requested) this.deps.log.debug({ queueId: d.queueId, reason: policy.reason }, 'MDN asked for, not sent automatically');
        continue;
      }
      const dispositions: DispositionType[] = policy.finalDestinationDelivery ? ['processed', 'dispatched'] : ['processed'];
      for (const disposition of dispositions) {
        const built = await this.#outgoing(d.queueId, { issuer: route.mailbox, from: route.address, to: policy.notifyTo!, disposition, error: null }, failures, (from, to) =>
          buildMdn({
            original: returnable(content),
            returnContent: content.length <= RETURN_FULL_MAX_BYTES ? 'full' : 'headers',
            from,
            to,
            finalRecipient: route.address,
            originalRecipient: policy.originalRecipient,
            reportingUa: { name: this.deps.hostname, product: REPORTING_PRODUCT },
            disposition,
            finalDestinationDelivery: disposition === 'dispatched',
          }),
        );
        if (built) outgoing.push(built);
      }
    }
    if (outgoing.length === 0 && failures.length === 0 && arriving.length === 0 && tracking.length === 0) return NOTHING;
    return this.#prepared(outgoing, failures, arriving, tracking, d.recipients.map((r) => r.route.mailbox.id));
  }

  /**
   * For a message the structured-documents stage refused: the error MDNs to send instead of refusing it over SMTP,
   * or null — the refusal is not one an application reports by MDN, the sender did not ask for an MDN that may be
   * sent automatically, or none could be routed — and the SMTP refusal stands.
   */
  async forIntegrationError(e: IntegrationErrorReceipts): Promise<PreparedReceipts | null> {
    const error = integrationErrorFor(e.refusal);
    if (!error) return null;
    const policy = mdnPolicy(e.original, { returnPath: e.returnPath });
    if (!policy.automatic) return null;
    const notifyTo = policy.notifyTo!;
    const full = e.original.length <= RETURN_FULL_MAX_BYTES;
    const original = returnable(e.original);
    let attachments: MdnAttachment[] = [];
    try {
      attachments = full ? originalAttachments(original) : [];
    } catch (err) {
      this.deps.log.warn({ err, queueId: e.queueId }, 'attachments of a refused document could not be read; the error MDN returns the message alone');
    }
    const outgoing: Outgoing[] = [];
    const failures: AuditEvent[] = [];
    for (const r of e.recipients) {
      const from = r.mailbox?.address ?? `MAILER-DAEMON@${domainOf(notifyTo)}`;
      const built = await this.#outgoing(e.queueId, { issuer: r.mailbox, from, to: notifyTo, disposition: 'processed', error }, failures, (f, to) =>
        buildMdn({
          original,
          returnContent: full ? 'full' : 'headers',
          attachments,
          from: f,
          to,
          finalRecipient: r.address,
          originalRecipient: policy.originalRecipient,
          reportingUa: { name: this.deps.hostname, product: REPORTING_PRODUCT },
          disposition: 'processed',
          error,
        }),
      );
      if (built) outgoing.push(built);
    }
    if (outgoing.length === 0) {
      this.deps.log.warn({ queueId: e.queueId, refusal: e.refusal.code }, 'no error MDN could be sent; the message is refused over SMTP');
      return null;
    }
    return this.#prepared(outgoing, failures, [], [], []);
  }

  /**
   * Builds one MDN and routes it to `to`: a local mailbox, or another operator (signed and encrypted for it by the
   * outbound stage with the issuer's credentials). Null, with a `not-sent` audit record in `failures`, when it cannot go.
   */
  async #outgoing(
    queueId: string,
    who: { issuer: MailboxRow | null; from: string; to: string; disposition: DispositionType; error: MdnError | null },
    failures: AuditEvent[],
    build: (from: string, to: string) => BuiltMdn,
  ): Promise<Outgoing | null> {
    const notSent = (reason: string) => {
      failures.push({ actor: who.from, action: 'mdn', object: queueId, outcome: 'not-sent', detail: { to: who.to, reason } });
      return null;
    };
    const failed = (err: unknown) => {
      if (err instanceof Refusal) return notSent(err.code);
      this.deps.log.warn({ err, queueId }, 'MDN could not be sent');
      return notSent('error');
    };
    let route: RecipientRoute;
    try {
      route = await routeRecipient(this.deps.mail.store, this.deps.localDomains, who.to, this.deps.outbound);
    } catch (err) {
      return failed(err);
    }
    let mdn: BuiltMdn;
    try {
      mdn = build(who.from, route.address);
    } catch (err) {
      this.deps.log.warn({ err, queueId }, 'MDN could not be built');
      return notSent('unbuildable');
    }
    const record = (item: string | null): AuditEvent => ({
      actor: who.from,
      action: 'mdn',
      object: queueId,
      outcome: 'sent',
      detail: { to: route.address, route: route.kind, disposition: who.disposition, error: who.error?.code ?? null, item },
    });
    if (route.kind === 'local') return { mdn, route, items: [], audit: [record(null)] };
    if (!who.issuer || !this.deps.outbound) return notSent('no-signer');
    try {
      const prepared = await this.deps.outbound.prepare({
        sender: who.issuer,
        mailFrom: '',
        queueId,
        receivedAt: new Date(),
        received: Buffer.from(`Received: by ${this.deps.hostname} (mss) id ${queueId};\r\n\t${rfc5322Date(new Date())}\r\n`),
        body: mdn.raw,
        protectedByClient: false,
        routes: [route],
      });
      return { mdn, route, items: prepared.items, audit: [record(prepared.items[0]?.id ?? null), ...prepared.audit] };
    } catch (err) {
      return failed(err);
    }
  }

  #prepared(
    outgoing: Outgoing[],
    failures: AuditEvent[],
    arriving: readonly ReceiptRecipient[],
    tracking: readonly NewMdnTracking[],
    /** The mailboxes the delivery itself writes to. */
    delivered: readonly number[],
  ): PreparedReceipts {
    const { mail, tracker } = this.deps;
    let events: MailboxEvent[] = [];
    const local = outgoing.filter((o): o is Outgoing & { route: LocalRoute } => o.route.kind === 'local');
    const queued = outgoing.some((o) => o.items.length > 0);
    return {
      count: outgoing.length,
      async inUnit(tx) {
        // A unit of work may run again (a PostgreSQL deadlock victim): only this run's events count.
        events = [];
        for (const r of arriving) await tracker?.received(tx, r.route.mailbox, r.content);
        if (local.length > 0 && mail.store.engine === 'postgres') {
          // Mailbox rows locked in id order before any folder (`mailboxUsage` locks on PostgreSQL, as deliverLocal's
          // quota check does): two deliveries answering each other would otherwise wait on each other's INBOX until
          // the deadlock detector rolls one back. SQLite serialises units of work anyway.
          const ids = new Set([...local.map((o) => o.route.mailbox.id), ...delivered]);
          for (const id of [...ids].sort((a, b) => a - b)) await tx.mailboxUsage(id);
        }
        for (const o of local) {
          const appended = await mail.append(tx, o.route.mailbox, 'INBOX', o.mdn.raw, { internalDate: Date.now() });
          events.push({ kind: 'exists', mailboxId: o.route.mailbox.id, folderId: appended.folderId, uid: appended.uid, modseq: appended.modseq });
        }
        for (const o of outgoing) for (const item of o.items) await tx.enqueue(item);
        if (tracker) await tracker.track(tx, tracking);
        await appendAudit(tx, [...outgoing.flatMap((o) => o.audit), ...failures]);
      },
      afterCommit: (notifier) => {
        for (const event of events) notifier.publish(event);
        if (queued) this.deps.outbound?.queued();
      },
    };
  }
}
