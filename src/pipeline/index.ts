import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { QuotaLimits } from '../accounts/quota.js';
import { appendAudit, audit, type AuditEvent } from '../audit/journal.js';
import { checkSubmissionSender, directoryWarningEvents, type DirectoryCheckMode, type DirectoryLookups } from './check-directory.js';
import type { SealedMail } from '../store/sealed-mail.js';
import type { MailboxRow, Notifier } from '../store/types.js';
import { deliverLocal } from './deliver.js';
import { checkEnvelopeSender, checkHeaderSender } from './identify-sender.js';
import { parseMessage } from './parse.js';
import { checkLimits, type SubmissionLimits } from './policy.js';
import { receivedHeader } from './received.js';
import { Refusal } from './refusal.js';
import { routeRecipient } from './route.js';
import type { OutboundStage } from './outbound.js';
import { stripHeaderFields } from './strip-bcc.js';
import { detectProtection, openSecured, VERIFICATION_HEADER } from './open-secured.js';
import { PROTECTION_HEADER, protectMessage, requestedProtection } from './protect-local.js';
import { checkRecipientQuota } from './quota.js';
import { integrationErrorFor, type Receipts } from './receipts.js';
import { applyXdmDocuments, mayCarryXdm, type XdmStageOptions } from './xdm-documents.js';
import type { SecurityContext } from './security-context.js';
import type { MessageMeta } from '../mime/types.js';
import type { Accepted, LocalRoute, RecipientRoute, RemoteRoute, Submission } from './types.js';

export interface PipelineDeps {
  mail: SealedMail;
  notifier: Notifier;
  hostname: string;
  localDomains: readonly string[];
  limits: SubmissionLimits;
  log: Logger;
  /** The security agent's keys, trust and policy; without it, protected messages are stored as they come. */
  security?: SecurityContext;
  /** Per-mailbox limits; a local recipient without room is refused (`mailbox-full`). */
  quota?: QuotaLimits;
  /** The practitioner directory and how strictly senders are checked against it; without it, no directory check. */
  directory?: { lookups: DirectoryLookups; mode: DirectoryCheckMode };
  /** Limits for reading IHE XDM archives (the X-MSS-CODECDA / X-MSS-INS headers are always recomputed). */
  xdm?: XdmStageOptions;
  /** Mail to other operators of the trust space (routing, protection, queue); without it, remote domains are refused. */
  outbound?: OutboundStage;
  /** MDNs (src/pipeline/receipts.ts); without it, none is sent and a refused document is refused over SMTP. */
  receipts?: Receipts;
}

/** A short, unique, non-guessable transaction id, shown in Received and in the 250 reply. */
export function newQueueId(): string {
  return randomBytes(9).toString('base64url');
}

/**
 * The path of a message: policy (limits) → trace header and Bcc removal → parse → identify sender → route
 * recipients → deliver → audit.
 * Ingress adapters call the early checks at the protocol step where they belong (MAIL FROM, RCPT TO) so a
 * refusal comes as early as possible, then `submit` with the whole message; `submit` re-checks everything.
 */
export class Pipeline {
  constructor(private readonly deps: PipelineDeps) {}

  async checkSender(sender: MailboxRow, mailFrom: string, context: { remote: string }): Promise<void> {
    await this.refusing(sender.address, mailFrom, context.remote, async () => checkEnvelopeSender(sender, mailFrom));
  }

  async checkRecipient(sender: MailboxRow, rcptTo: string, context: { remote: string }): Promise<RecipientRoute> {
    return this.refusing(sender.address, rcptTo, context.remote, async () => {
      const route = await routeRecipient(this.deps.mail.store, this.deps.localDomains, rcptTo, this.deps.outbound);
      if (route.kind === 'remote') await this.deps.outbound?.checkRecipient(route);
      else await checkRecipientQuota(this.deps.mail.store, this.deps.quota, route, 0);
      return route;
    });
  }

  /** Resolves once the message is durable; throws a `Refusal` otherwise (already audited). */
  async submit(submission: Submission): Promise<Accepted> {
    const queueId = newQueueId();
    return this.refusing(submission.sender.address, queueId, submission.remoteAddress, async () => {
      checkLimits(this.deps.limits, submission.raw.length, submission.envelope.rcptTo.length);
      checkEnvelopeSender(submission.sender, submission.envelope.mailFrom);
      const received = Buffer.from(receivedHeader(submission, this.deps.hostname, queueId));
      // Nobody but this server writes a verification result; the protection request is for this server only.
      let body = stripHeaderFields(submission.raw, ['bcc', VERIFICATION_HEADER.toLowerCase(), PROTECTION_HEADER.toLowerCase()]);
      // A document an application mailbox sends that cannot be integrated is answered by an error MDN when its
      // sender asked for one: the sender checks below still come first.
      let integration: Refusal | null = null;
      try {
        body = this.xdmDocuments(body);
      } catch (err) {
        if (!this.reportsByMdn(err, submission)) throw err;
        integration = err;
      }
      const stored = Buffer.concat([received, body]);
      const meta = parseMessage(stored);
      checkHeaderSender(submission.sender, meta);
      let warnings: AuditEvent[] = [];
      if (this.deps.directory) {
        const from = (meta.envelope.from ?? []).filter((a) => a.mailbox && a.host).map((a) => `${a.mailbox}@${a.host}`.toLowerCase());
        const verdict = await checkSubmissionSender(this.deps.directory.lookups, { account: submission.sender, from }, this.deps.directory.mode);
        warnings = directoryWarningEvents(verdict, submission.sender.address, queueId);
      }
      if (integration) return this.integrationError(integration, submission, queueId, stored, warnings);
      const routes: RecipientRoute[] = [];
      for (const rcpt of new Set(submission.envelope.rcptTo.map((r) => r.toLowerCase()))) {
        routes.push(submission.routes?.get(rcpt) ?? (await routeRecipient(this.deps.mail.store, this.deps.localDomains, rcpt, this.deps.outbound)));
      }
      const local = routes.filter((r): r is LocalRoute => r.kind === 'local');
      const remote = routes.filter((r): r is RemoteRoute => r.kind === 'remote');
      const outbound = remote.length > 0 ? await this.outbound(submission, queueId, received, body, detectProtection(meta.mime) !== null, remote) : null;
      const opened = new Map<string, { stored: Buffer; meta: MessageMeta }>();
      const security = this.deps.security;
      if (security && local.length > 0) {
        // Protected here on request, or already protected by the client (seen on the parsed MIME root).
        const requested = requestedProtection(submission.raw, security.config.localProtection);
        if (requested) body = await protectMessage(security, requested, body, submission.sender, local.map((r) => r.mailbox));
        const kind = requested ?? detectProtection(meta.mime);
        if (kind) {
          for (const route of local) {
            const result = await openSecured(security, body, kind, route.mailbox);
            const message = stripHeaderFields(result.message, [VERIFICATION_HEADER.toLowerCase()]);
            let inner: Buffer;
            try {
              inner = this.xdmDocuments(message);
            } catch (err) {
              if (!this.reportsByMdn(err, submission)) throw err;
              return this.integrationError(err, submission, queueId, Buffer.concat([received, message]), warnings);
            }
            const content = Buffer.concat([received, Buffer.from(result.header), inner]);
            opened.set(route.address, { stored: content, meta: parseMessage(content) });
          }
        }
      }
      const contentOf = (route: LocalRoute) => opened.get(route.address) ?? { stored, meta };
      const receipts = await this.deps.receipts?.forDelivery({
        returnPath: submission.envelope.mailFrom,
        recipients: local.map((route) => ({ route, content: contentOf(route).stored })),
        queueId,
        outbound: outbound ? { sender: submission.sender, mailFrom: submission.envelope.mailFrom, message: stored, recipients: remote.map((r) => r.address), submissionId: queueId } : null,
      });
      let result;
      try {
        result = await deliverLocal(
          this.deps.mail,
          { ...submission, meta, stored },
          local,
          queueId,
          contentOf,
          this.deps.quota,
          [...warnings, ...(outbound?.audit ?? [])],
          outbound || receipts
            ? async (tx) => {
                for (const item of outbound?.items ?? []) await tx.enqueue(item);
                await receipts?.inUnit(tx);
              }
            : undefined,
        );
      } catch (err) {
        if (err instanceof Refusal) throw err;
        this.deps.log.error({ err, queueId }, 'delivery failed; nothing was committed');
        throw new Refusal('temporary-failure', 'store error');
      }
      for (const event of result.events) this.deps.notifier.publish(event);
      receipts?.afterCommit(this.deps.notifier);
      if (outbound) this.deps.outbound?.queued();
      this.deps.log.info({ queueId, sender: submission.sender.address, recipients: routes.length, queued: outbound?.items.length ?? 0, size: stored.length }, 'accepted');
      return { ...result.accepted, queued: outbound?.items.map((i) => ({ id: i.id, destination: i.destination })) ?? [] };
    });
  }

  /** The outbound stage for the recipients at other operators: the items to enqueue with the local copies. */
  private async outbound(submission: Submission, queueId: string, received: Buffer, body: Buffer, protectedByClient: boolean, routes: RemoteRoute[]) {
    if (!this.deps.outbound) throw new Refusal('remote-domain-not-allowed', routes[0]!.domain);
    return this.deps.outbound.prepare({
      sender: submission.sender,
      mailFrom: submission.envelope.mailFrom,
      queueId,
      receivedAt: submission.receivedAt,
      received,
      body,
      protectedByClient,
      routes,
    });
  }

  /**
   * The structured-documents stage: X-MSS-CODECDA and X-MSS-INS computed from the IHE XDM archives a message
   * carries (removed otherwise); a document that fails its metadata checks refuses the message.
   */
  private xdmDocuments(message: Buffer): Buffer {
    return mayCarryXdm(message) ? applyXdmDocuments(message, this.deps.xdm ?? {}).message : message;
  }

  /** Whether a refusal of the structured-documents stage may be answered by an error MDN: an application's submission. */
  private reportsByMdn(err: unknown, submission: Submission): err is Refusal {
    return err instanceof Refusal && submission.sender.type === 'APP' && this.deps.receipts !== undefined && integrationErrorFor(err) !== null;
  }

  /**
   * A document the application's message carries cannot be integrated: the error MDN goes to the sender (with the
   * refusal's audit record, in one unit of work) and the submission is accepted, nothing being delivered; without an
   * MDN that may be sent automatically, the refusal stands.
   */
  private async integrationError(refusal: Refusal, submission: Submission, queueId: string, original: Buffer, warnings: AuditEvent[]): Promise<Accepted> {
    const recipients = [...new Set(submission.envelope.rcptTo.map((r) => r.trim().toLowerCase()))].map((address) => ({ address, mailbox: null }));
    const receipts = await this.deps.receipts!.forIntegrationError({ returnPath: submission.envelope.mailFrom, original, refusal, recipients, queueId });
    if (!receipts) throw refusal;
    try {
      await this.deps.mail.store.transaction(async (tx) => {
        await receipts.inUnit(tx);
        await appendAudit(tx, [
          ...warnings,
          {
            actor: submission.sender.address,
            action: 'refuse',
            object: queueId,
            outcome: refusal.code,
            detail: { remote: submission.remoteAddress, reason: refusal.detail ?? null, answer: 'error-mdn' },
          },
        ]);
      });
    } catch (err) {
      this.deps.log.error({ err, queueId }, 'error MDN could not be stored; nothing was committed');
      throw new Refusal('temporary-failure', 'store error');
    }
    receipts.afterCommit(this.deps.notifier);
    this.deps.log.info({ queueId, sender: submission.sender.address, refusal: refusal.code }, 'document not integrated: error MDN sent');
    return { queueId, delivered: [], queued: [] };
  }

  /** Logs and audits a refusal (also one the adapter decided itself, e.g. the size limit found in DATA). */
  async report(refusal: Refusal, actor: string, object: string, remote: string): Promise<void> {
    this.deps.log.info({ actor, refusal: refusal.code, remote }, 'refused');
    try {
      await audit(this.deps.mail.store, {
        actor,
        action: 'refuse',
        object,
        outcome: refusal.code,
        detail: { remote, reason: refusal.detail ?? null },
      });
    } catch (auditErr) {
      this.deps.log.error({ err: auditErr }, 'could not audit a refusal');
    }
  }

  /** Runs a step; a `Refusal` it throws is reported, then rethrown for the adapter to answer. */
  private async refusing<T>(actor: string, object: string, remote: string, step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (err) {
      if (err instanceof Refusal) await this.report(err, actor, object, remote);
      throw err;
    }
  }
}
