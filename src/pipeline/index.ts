import type { Logger } from 'pino';
import type { QuotaLimits } from '../accounts/quota.js';
import { appendAudit, audit, type AuditEvent } from '../audit/journal.js';
import { checkSubmissionSender, directoryWarningEvents, type DirectoryCheckMode, type DirectoryLookups } from './check-directory.js';
import type { SealedMail } from '../store/sealed-mail.js';
import type { MailboxEvent, MailboxRow, Notifier, StoreTx } from '../store/types.js';
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
import type { XdmCdaSummary } from '../mime/xdm/headers.js';
import { closesThread } from '../policy/patient-threads.js';
import { PROFESSIONAL_TYPES, type Patients } from '../policy/patients.js';
import type { Accepted, LocalRoute, RecipientRoute, RemoteRoute, Submission } from './types.js';
import { randomId } from '../random-id.js';

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
  /**
   * Patient mailboxes and their rules (src/policy/patients.ts): routing to the patient domain, professionals write
   * first, patients only reply, documents for the right patient, opposition notices. Without it, a patient cannot send.
   */
  patients?: Patients;
}

/** A short, unique, non-guessable transaction id, shown in Received and in the 250 reply. */
export function newQueueId(): string {
  return randomId(9);
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
      const route = await this.route(sender, rcptTo);
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
      checkEnvelopeSender(submission.sender, submission.envelope.mailFrom, submission.channel);
      const received = Buffer.from(receivedHeader(submission, this.deps.hostname, queueId));
      // Nobody but this server writes a verification result; the protection request is for this server only.
      let body = stripHeaderFields(submission.raw, ['bcc', VERIFICATION_HEADER.toLowerCase(), PROTECTION_HEADER.toLowerCase()]);
      // A document an application mailbox sends that cannot be integrated is answered by an error MDN when its
      // sender asked for one: the sender checks below still come first.
      let integration: Refusal | null = null;
      const documents: XdmCdaSummary[] = [];
      try {
        body = this.xdmDocuments(body, documents);
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
        routes.push(submission.routes?.get(rcpt) ?? (await this.route(submission.sender, rcpt)));
      }
      const patientRules = await this.patientRules(submission, meta, routes, warnings.length);
      const local = routes.filter((r): r is LocalRoute => r.kind === 'local' && !patientRules.opposed.includes(r));
      const remote = routes.filter((r): r is RemoteRoute => r.kind === 'remote');
      try {
        this.deps.patients?.checkDocuments(patientRules.patients.map((r) => r.mailbox), documents);
      } catch (err) {
        if (!this.reportsByMdn(err, submission)) throw err;
        return this.integrationError(err, submission, queueId, stored, warnings);
      }
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
              const openedDocuments: XdmCdaSummary[] = [];
              inner = this.xdmDocuments(message, openedDocuments);
              if (route.mailbox.type === 'PATIENT') this.deps.patients?.checkDocuments([route.mailbox], openedDocuments);
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
      const notice = this.oppositionNotice(submission, queueId, stored, patientRules.opposed);
      const recordThreads = this.threadRecorder(submission, meta, patientRules, contentOf);
      let result;
      try {
        result = await deliverLocal(
          this.deps.mail,
          { ...submission, meta, stored },
          local,
          queueId,
          contentOf,
          this.deps.quota,
          [...warnings, ...(outbound?.audit ?? []), ...(notice?.audit ?? [])],
          outbound || receipts || notice || recordThreads
            ? async (tx) => {
                for (const item of outbound?.items ?? []) await tx.enqueue(item);
                await receipts?.inUnit(tx);
                await notice?.inUnit(tx);
                await recordThreads?.(tx);
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
      notice?.afterCommit();
      if (outbound) this.deps.outbound?.queued();
      this.deps.log.info({ queueId, sender: submission.sender.address, recipients: routes.length, queued: outbound?.items.length ?? 0, size: stored.length }, 'accepted');
      return { ...result.accepted, queued: outbound?.items.map((i) => ({ id: i.id, destination: i.destination })) ?? [] };
    });
  }

  /**
   * Where one recipient goes: a patient address through the patient rules (its mailbox, created pending by a
   * professional's first message; an opposed one is routed too, for the notice), any other through `routeRecipient`.
   */
  private async route(sender: MailboxRow, rcpt: string): Promise<RecipientRoute> {
    const writer = PROFESSIONAL_TYPES.includes(sender.type) ? sender.address : null;
    const patient = await this.deps.patients?.recipient(rcpt, writer);
    if (patient) return { kind: 'local', address: patient.address, mailbox: patient };
    return routeRecipient(this.deps.mail.store, this.deps.localDomains, rcpt, this.deps.outbound);
  }

  /**
   * The patient rules, whatever the channel: a patient only replies (webmail), to the professional of an open
   * conversation; only professionals whose directory check passed write to patients; recipients who opposed are
   * set aside for the opposition notice.
   */
  private async patientRules(submission: Submission, meta: MessageMeta, routes: readonly RecipientRoute[], directoryWarnings: number) {
    const patients = this.deps.patients;
    const local = routes.filter((r): r is LocalRoute => r.kind === 'local' && r.mailbox.type === 'PATIENT');
    const opposed: LocalRoute[] = [];
    for (const route of local) if (patients && (await patients.isOpposed(route.mailbox))) opposed.push(route);
    let reply: { threadKey: string; allowed: string[] } | null = null;
    if (submission.sender.type === 'PATIENT') {
      if (!patients) throw new Refusal('patient-not-a-reply', 'patient rules not configured');
      reply = await patients.checkPatientMessage(submission.sender, meta, routes.map((r) => r.address));
    } else if (local.length > 0) {
      patients?.checkWriter(submission.sender.type, directoryWarnings);
    }
    return { patients: local.filter((r) => !opposed.includes(r)), opposed, reply };
  }

  /** The failure DSN for recipients who opposed, appended to the sender's INBOX in the delivery's unit of work. */
  private oppositionNotice(submission: Submission, queueId: string, original: Buffer, opposed: readonly LocalRoute[]) {
    const patients = this.deps.patients;
    if (!patients || opposed.length === 0) return null;
    const dsn = patients.oppositionNotice({
      hostname: this.deps.hostname,
      mailFrom: submission.envelope.mailFrom,
      original,
      recipients: opposed.map((r) => r.address),
      arrivalDate: submission.receivedAt,
      queueId,
    });
    const audit: AuditEvent[] = opposed.map((r) => ({
      actor: submission.sender.address,
      action: 'refuse',
      object: queueId,
      outcome: 'patient-opposed',
      detail: { remote: submission.remoteAddress, recipient: r.address, answer: 'failure-dsn' },
    }));
    let event: MailboxEvent | null = null;
    const mail = this.deps.mail;
    return {
      audit,
      async inUnit(tx: StoreTx) {
        const appended = await mail.append(tx, submission.sender, 'INBOX', dsn.raw, { internalDate: Date.now() });
        event = { kind: 'exists', mailboxId: submission.sender.id, folderId: appended.folderId, uid: appended.uid, modseq: appended.modseq };
      },
      afterCommit: () => {
        if (event) this.deps.notifier.publish(event);
      },
    };
  }

  /** Records, in the delivery's unit of work, the conversations this message opens or continues with patients. */
  private threadRecorder(
    submission: Submission,
    meta: MessageMeta,
    rules: { patients: LocalRoute[]; reply: { threadKey: string; allowed: string[] } | null },
    contentOf: (route: LocalRoute) => { stored: Buffer; meta: MessageMeta },
  ): ((tx: StoreTx) => Promise<void>) | null {
    const patients = this.deps.patients;
    if (!patients) return null;
    const at = submission.receivedAt.getTime();
    const { reply } = rules;
    if (reply) return (tx) => patients.threads.recordPatientReply(tx, submission.sender, meta, reply.threadKey, reply.allowed, at);
    if (rules.patients.length === 0) return null;
    return async (tx) => {
      for (const route of rules.patients) {
        const content = contentOf(route);
        await patients.threads.recordProfessionalMessage(tx, route.mailbox, content.meta, closesThread(content.stored), at);
      }
    };
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
  private xdmDocuments(message: Buffer, documents?: XdmCdaSummary[]): Buffer {
    if (!mayCarryXdm(message)) return message;
    const result = applyXdmDocuments(message, this.deps.xdm ?? {});
    if (result.decision.action === 'set') documents?.push(...result.decision.documents);
    return result.message;
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
