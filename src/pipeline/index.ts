import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { QuotaLimits } from '../accounts/quota.js';
import { audit, type AuditEvent } from '../audit/journal.js';
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
import { stripHeaderFields } from './strip-bcc.js';
import { detectProtection, openSecured, VERIFICATION_HEADER } from './open-secured.js';
import { PROTECTION_HEADER, protectMessage, requestedProtection } from './protect-local.js';
import { checkRecipientQuota } from './quota.js';
import type { SecurityContext } from './security-context.js';
import type { MessageMeta } from '../mime/types.js';
import type { Accepted, RecipientRoute, Submission } from './types.js';

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
      const route = await routeRecipient(this.deps.mail.store, this.deps.localDomains, rcptTo);
      await checkRecipientQuota(this.deps.mail.store, this.deps.quota, route, 0);
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
      const stored = Buffer.concat([received, body]);
      const meta = parseMessage(stored);
      checkHeaderSender(submission.sender, meta);
      let warnings: AuditEvent[] = [];
      if (this.deps.directory) {
        const from = (meta.envelope.from ?? []).filter((a) => a.mailbox && a.host).map((a) => `${a.mailbox}@${a.host}`.toLowerCase());
        const verdict = await checkSubmissionSender(this.deps.directory.lookups, { account: submission.sender, from }, this.deps.directory.mode);
        warnings = directoryWarningEvents(verdict, submission.sender.address, queueId);
      }
      const routes: RecipientRoute[] = [];
      for (const rcpt of new Set(submission.envelope.rcptTo.map((r) => r.toLowerCase()))) {
        routes.push(await routeRecipient(this.deps.mail.store, this.deps.localDomains, rcpt));
      }
      const opened = new Map<string, { stored: Buffer; meta: MessageMeta }>();
      const security = this.deps.security;
      if (security) {
        // Protected here on request, or already protected by the client (seen on the parsed MIME root).
        const requested = requestedProtection(submission.raw, security.config.localProtection);
        if (requested) body = await protectMessage(security, requested, body, submission.sender, routes.map((r) => r.mailbox));
        const kind = requested ?? detectProtection(meta.mime);
        if (kind) {
          for (const route of routes) {
            const result = await openSecured(security, body, kind, route.mailbox);
            const content = Buffer.concat([received, Buffer.from(result.header), stripHeaderFields(result.message, [VERIFICATION_HEADER.toLowerCase()])]);
            opened.set(route.address, { stored: content, meta: parseMessage(content) });
          }
        }
      }
      let result;
      try {
        result = await deliverLocal(
          this.deps.mail,
          { ...submission, meta, stored },
          routes,
          queueId,
          (route) => opened.get(route.address) ?? { stored, meta },
          this.deps.quota,
          warnings,
        );
      } catch (err) {
        if (err instanceof Refusal) throw err;
        this.deps.log.error({ err, queueId }, 'delivery failed; nothing was committed');
        throw new Refusal('temporary-failure', 'store error');
      }
      for (const event of result.events) this.deps.notifier.publish(event);
      this.deps.log.info({ queueId, sender: submission.sender.address, recipients: routes.length, size: stored.length }, 'accepted');
      return result.accepted;
    });
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
