import type { Logger } from 'pino';
import { appendAudit, audit, type AuditEvent } from '../audit/journal.js';
import type { QuotaLimits } from '../accounts/quota.js';
import type { MessageMeta } from '../mime/types.js';
import type { SealedMail } from '../store/sealed-mail.js';
import type { Notifier, StoreTx } from '../store/types.js';
import { checkRelaySender, directoryWarningEvents, type DirectoryCheckMode, type DirectoryLookups } from './check-directory.js';
import { deliverLocal } from './deliver.js';
import { newQueueId, type Pipeline } from './index.js';
import { detectProtection, openSecured, VERIFICATION_HEADER, type Opened } from './open-secured.js';
import { parseMessage } from './parse.js';
import { checkLimits, type SubmissionLimits } from './policy.js';
import { PROTECTION_HEADER } from './protect-local.js';
import { checkRecipientQuota } from './quota.js';
import { integrationErrorFor, type PreparedReceipts, type Receipts } from './receipts.js';
import { rfc5322Date } from './received.js';
import { Refusal } from './refusal.js';
import { routeRecipient } from './route.js';
import type { SecurityContext } from './security-context.js';
import type { XdmCdaSummary } from '../mime/xdm/headers.js';
import { closesThread } from '../policy/patient-threads.js';
import type { Patients } from '../policy/patients.js';
import { stripHeaderFields } from './strip-bcc.js';
import type { Accepted, LocalRoute } from './types.js';
import { applyXdmDocuments, mayCarryXdm, type XdmStageOptions } from './xdm-documents.js';

/**
 * The path of a message another operator relayed to us (the inbound relay, src/smtp/relay.ts, has already
 * checked the peer's TLS client certificate against the trust space and the MAIL FROM domain):
 * limits → idempotency key → trace headers → parse → the From domains must be the peer's → open secured per
 * recipient (decrypt + verify) → sender check against the directory (with the signer's practitioner
 * identifier) → IHE XDM headers → deliver, recording the idempotency key and the MDNs the sender asked for in the
 * same unit of work → audit. A document that cannot be integrated is answered by an error MDN instead of a
 * refusal when the sender asked for MDNs (src/pipeline/receipts.ts).
 */

/**
 * The header in which a sending operator puts the queue item id (docs/decisions/0008-queue-delivery.md): every
 * attempt of one item carries the same key, and the receiving relay delivers a key once.
 */
export const IDEMPOTENCY_KEY_HEADER = 'X-MSS-Idempotency-Key';

const KEY_SYNTAX = /^[A-Za-z0-9._:-]{1,128}$/;
/** How far into the message the header is looked for: the header block of a relayed message is much smaller. */
const HEADER_SCAN_BYTES = 1024 * 1024;

/** Whether a value may be sent as an idempotency key. */
export function isIdempotencyKey(value: string): boolean {
  return KEY_SYNTAX.test(value);
}

/**
 * The idempotency key of a message (top-level header), or null when it has none; `relay-bad-idempotency-key`
 * when the header is repeated or its value is not a key.
 */
export function readIdempotencyKey(raw: Buffer): string | null {
  const text = raw.subarray(0, HEADER_SCAN_BYTES).toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const header = (end < 0 ? text : text.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ');
  const name = IDEMPOTENCY_KEY_HEADER.toLowerCase();
  const values = header
    .split(/\r?\n/)
    .filter((line) => line.slice(0, line.indexOf(':')).trim().toLowerCase() === name)
    .map((line) => line.slice(line.indexOf(':') + 1).trim());
  if (values.length === 0) return null;
  if (values.length > 1) throw new Refusal('relay-bad-idempotency-key', `${values.length} ${IDEMPOTENCY_KEY_HEADER} fields`);
  if (!isIdempotencyKey(values[0]!)) throw new Refusal('relay-bad-idempotency-key', `value of ${values[0]!.length} characters`);
  return values[0]!;
}

export interface RelayPipelineDeps {
  mail: SealedMail;
  notifier: Notifier;
  hostname: string;
  localDomains: readonly string[];
  limits: SubmissionLimits;
  log: Logger;
  security?: SecurityContext;
  quota?: QuotaLimits;
  directory?: { lookups: DirectoryLookups; mode: DirectoryCheckMode };
  xdm?: XdmStageOptions;
  /** Refuse a message that is not encrypted and signed (S/MIME or PGP/MIME). */
  requireProtection: boolean;
  /** Where refusals are logged and audited (`Pipeline.report`). */
  reporter: Pick<Pipeline, 'report'>;
  /** MDNs (src/pipeline/receipts.ts); without it, none is sent and a refused document is refused over SMTP. */
  receipts?: Receipts;
  /** Patient mailboxes and their rules (src/policy/patients.ts), as for submissions. */
  patients?: Patients;
}

/** A message as the relay listener received it from an authenticated peer operator. */
export interface RelayedMessage {
  sessionId: string;
  remoteAddress: string;
  /** The EHLO name the peer gave. */
  clientName: string;
  tls: { protocol: string; cipher: string };
  /** The subject DN of the peer's verified client certificate (RFC 4514). */
  peerDn: string;
  /** MAIL FROM: an address whose domain the peer was checked for, or '' (a notification's null sender). */
  envelope: { mailFrom: string; rcptTo: string[] };
  raw: Buffer;
  receivedAt: Date;
  /** Routes resolved at RCPT TO, by lower-case address. */
  routes?: ReadonlyMap<string, LocalRoute>;
  /**
   * Checks that the peer operator serves `domain` (its trust entry names the peer's certificate); throws the
   * `Refusal` otherwise. Every author domain (From, Sender) of the message must pass.
   */
  authorizeDomain(domain: string): Promise<void>;
}

export type RelayOutcome =
  | { kind: 'delivered'; accepted: Accepted }
  | { kind: 'duplicate'; queueId: string }
  /** Accepted, not delivered: a document could not be integrated and an error MDN went back to the sender. */
  | { kind: 'not-integrated'; queueId: string; refusal: Refusal };

/** Thrown inside the delivery's unit of work when the key was recorded meanwhile: rolls the delivery back. */
class AlreadyAccepted extends Error {}

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

/** Comment text for a trace header: printable ASCII, no comment delimiters. */
function commentText(value: string): string {
  return value.replace(/[^\x20-\x7e]/g, '?').replace(/[()\\]/g, '?').slice(0, 512);
}

/**
 * `Return-Path` (final delivery, RFC 5321 §4.4) and our `Received` trace field, naming the peer's verified
 * certificate; RFC 3848 `ESMTPS` (TLS, no SMTP AUTH: the peer authenticated with its certificate).
 */
export function relayTraceHeaders(m: RelayedMessage, hostname: string, queueId: string): string {
  const client = `${commentText(m.clientName || 'unknown').replace(/\s/g, '?')} ([${m.remoteAddress}])`;
  const forClause = m.envelope.rcptTo.length === 1 ? `\r\n\tfor <${m.envelope.rcptTo[0]}>` : '';
  return (
    `Return-Path: <${m.envelope.mailFrom}>\r\n` +
    `Received: from ${client}\r\n\t(peer certificate "${commentText(m.peerDn)}" verified)\r\n` +
    `\tby ${hostname} (mss) (using ${commentText(m.tls.protocol)} with cipher ${commentText(m.tls.cipher)})\r\n` +
    `\twith ESMTPS id ${queueId}${forClause};\r\n\t${rfc5322Date(m.receivedAt)}\r\n`
  );
}

/** The addresses of an address list header, lower-case. */
function addresses(list: MessageMeta['envelope']['from']): string[] {
  return (list ?? []).filter((a) => a.mailbox && a.host).map((a) => `${a.mailbox}@${a.host}`.toLowerCase());
}

export class RelayPipeline {
  constructor(private readonly deps: RelayPipelineDeps) {}

  /**
   * RCPT TO: only active mailboxes of this operator with room for a message (`relay-recipient-not-local` for
   * another domain). The `Refusal` is the caller's to report.
   */
  routeRecipient(rcptTo: string): Promise<LocalRoute> {
    return this.route(rcptTo, 0);
  }

  /** Resolves once the message is durable (or known to be delivered already); throws a `Refusal` otherwise (audited). */
  async accept(m: RelayedMessage): Promise<RelayOutcome> {
    const queueId = newQueueId();
    const actor = m.envelope.mailFrom || '<>';
    return this.refusing(actor, queueId, m.remoteAddress, async () => {
      const { mail, security, directory } = this.deps;
      checkLimits(this.deps.limits, m.raw.length, m.envelope.rcptTo.length);
      const key = readIdempotencyKey(m.raw);
      // Nobody but this server writes a verification result; the trace, the key and protection requests are ours too.
      const body = stripHeaderFields(m.raw, [
        'return-path',
        VERIFICATION_HEADER.toLowerCase(),
        PROTECTION_HEADER.toLowerCase(),
        IDEMPOTENCY_KEY_HEADER.toLowerCase(),
      ]);
      const trace = Buffer.from(relayTraceHeaders(m, this.deps.hostname, queueId));
      const meta = parseMessage(Buffer.concat([trace, body]));
      const from = addresses(meta.envelope.from);
      for (const domain of new Set([...from, ...addresses(meta.envelope.sender)].map(domainOf))) await m.authorizeDomain(domain);
      const peerDomain = m.envelope.mailFrom ? domainOf(m.envelope.mailFrom) : domainOf(from[0] ?? '');
      if (key !== null && (await mail.store.relayKeyAccepted(peerDomain, key))) return this.duplicate(m, queueId, peerDomain, key);

      const routes: LocalRoute[] = [];
      for (const rcpt of new Set(m.envelope.rcptTo.map((r) => r.toLowerCase()))) routes.push(m.routes?.get(rcpt) ?? (await this.route(rcpt, 0)));

      const kind = detectProtection(meta.mime);
      if (!kind && this.deps.requireProtection) throw new Refusal('security-not-encrypted', 'relayed mail must be signed and encrypted');
      const opened = new Map<string, { stored: Buffer; meta: MessageMeta }>();
      let verification: Opened['verification'] | null = null;
      // A refusal of the structured-documents stage the sender may get as an error MDN, with the message it refused.
      let integration: { refusal: Refusal; original: Buffer } | null = null;
      const documents: XdmCdaSummary[] = [];
      const xdm = (message: Buffer, original: () => Buffer): Buffer | null => {
        try {
          return this.xdm(message, documents);
        } catch (err) {
          if (!(err instanceof Refusal) || !this.deps.receipts || !integrationErrorFor(err)) throw err;
          integration = { refusal: err, original: original() };
          return null;
        }
      };
      if (kind && security) {
        for (const route of routes) {
          const result = await openSecured(security, body, kind, route.mailbox);
          if (this.deps.requireProtection && !result.verification.encrypted) throw new Refusal('security-not-encrypted', 'relayed mail must be encrypted');
          if (this.deps.requireProtection && !result.verification.signed) throw new Refusal('security-not-signed', 'relayed mail must be signed');
          verification ??= result.verification;
          const message = stripHeaderFields(result.message, [VERIFICATION_HEADER.toLowerCase(), 'return-path']);
          const inner = xdm(message, () => Buffer.concat([trace, message]));
          if (!inner) break;
          const content = Buffer.concat([trace, Buffer.from(result.header), inner]);
          opened.set(route.address, { stored: content, meta: parseMessage(content) });
        }
      }
      let stored = Buffer.concat([trace, body]);
      let storedMeta = meta;
      if (opened.size === 0 && !integration && mayCarryXdm(body)) {
        const checked = xdm(body, () => stored);
        if (checked) {
          stored = Buffer.concat([trace, checked]);
          storedMeta = parseMessage(stored);
        }
      }

      let warnings: AuditEvent[] = [];
      if (directory) {
        const signer = verification?.signed ? { signerPractitionerId: verification.practitionerId } : {};
        const verdict = await checkRelaySender(directory.lookups, { from, ...signer }, directory.mode);
        warnings = directoryWarningEvents(verdict, actor, queueId);
      }
      // Mail for patients: from professionals the directory knows, with documents of that patient only.
      const patients = this.deps.patients;
      const patientRoutes = routes.filter((r) => r.mailbox.type === 'PATIENT');
      if (patients && patientRoutes.length > 0) {
        // Opposed since RCPT TO: refused as it would have been then.
        for (const route of patientRoutes) if (await patients.isOpposed(route.mailbox)) throw new Refusal('patient-opposed', 'the patient opposed to the mailbox');
        patients.checkWriter(null, warnings.length);
        try {
          patients.checkDocuments(patientRoutes.map((r) => r.mailbox), documents);
        } catch (err) {
          if (!(err instanceof Refusal) || !this.deps.receipts || !integrationErrorFor(err) || integration) throw err;
          integration = { refusal: err, original: stored };
        }
      }

      const record: AuditEvent = {
        actor,
        action: 'relay-accept',
        object: queueId,
        outcome: 'accepted',
        detail: { peerDomain, peerDn: m.peerDn, idempotencyKey: key, remote: m.remoteAddress },
      };
      const now = m.receivedAt.getTime();
      const recordKey = async (tx: StoreTx) => {
        if (key !== null && !(await tx.recordRelayKey(peerDomain, key, now))) throw new AlreadyAccepted();
      };
      // (Assigned in the `xdm` closure, which the compiler's narrowing does not follow.)
      const failed = integration as { refusal: Refusal; original: Buffer } | null;
      if (failed) {
        const receipts = await this.deps.receipts!.forIntegrationError({
          returnPath: m.envelope.mailFrom,
          original: failed.original,
          refusal: failed.refusal,
          recipients: routes.map((r) => ({ address: r.address, mailbox: r.mailbox })),
          queueId,
        });
        if (!receipts) throw failed.refusal;
        return this.notIntegrated(m, queueId, peerDomain, key, failed.refusal, receipts, [...warnings, { ...record, outcome: 'not-integrated' }], recordKey);
      }
      const contentOf = (route: LocalRoute) => opened.get(route.address) ?? { stored, meta: storedMeta };
      const receipts = await this.deps.receipts?.forDelivery({
        returnPath: m.envelope.mailFrom,
        recipients: routes.map((route) => ({ route, content: contentOf(route).stored })),
        queueId,
      });
      let result;
      try {
        result = await deliverLocal(
          mail,
          { channel: 'relay', sender: { address: actor }, remoteAddress: m.remoteAddress, receivedAt: m.receivedAt, stored, meta: storedMeta },
          routes,
          queueId,
          contentOf,
          this.deps.quota,
          [...warnings, record],
          key === null && !receipts && !(patients && patientRoutes.length > 0)
            ? undefined
            : async (tx) => {
                await recordKey(tx);
                await receipts?.inUnit(tx);
                for (const route of patients ? patientRoutes : []) {
                  const content = contentOf(route);
                  await patients!.threads.recordProfessionalMessage(tx, route.mailbox, content.meta, closesThread(content.stored), now);
                }
              },
        );
      } catch (err) {
        if (err instanceof AlreadyAccepted) return this.duplicate(m, queueId, peerDomain, key!);
        if (err instanceof Refusal) throw err;
        this.deps.log.error({ err, queueId }, 'relayed delivery failed; nothing was committed');
        throw new Refusal('temporary-failure', 'store error');
      }
      for (const event of result.events) this.deps.notifier.publish(event);
      receipts?.afterCommit(this.deps.notifier);
      this.deps.log.info({ queueId, peer: peerDomain, recipients: routes.length, size: stored.length, mdns: receipts?.count ?? 0 }, 'relayed message accepted');
      return { kind: 'delivered', accepted: result.accepted };
    });
  }

  /** Forgets idempotency keys accepted before `before` (ms since epoch), in batches; returns how many went. */
  async pruneKeys(before: number, batch = 1000): Promise<number> {
    let total = 0;
    for (;;) {
      const gone = await this.deps.mail.store.transaction((tx) => tx.pruneRelayKeys(before, batch));
      total += gone;
      if (gone < batch) return total;
    }
  }

  private async route(rcptTo: string, size: number): Promise<LocalRoute> {
    const address = rcptTo.trim().toLowerCase();
    if (address.includes('@') && !this.deps.localDomains.includes(domainOf(address))) throw new Refusal('relay-recipient-not-local', domainOf(address));
    const patient = await this.deps.patients?.recipient(address, 'relay');
    if (patient && (await this.deps.patients!.isOpposed(patient))) throw new Refusal('patient-opposed', 'the patient opposed to the mailbox');
    const route: LocalRoute = patient ? { kind: 'local', address: patient.address, mailbox: patient } : await routeRecipient(this.deps.mail.store, this.deps.localDomains, address);
    await checkRecipientQuota(this.deps.mail.store, this.deps.quota, route, size);
    return route;
  }

  /** The structured-documents stage (X-MSS-CODECDA / X-MSS-INS recomputed), as for submissions. */
  private xdm(message: Buffer, documents?: XdmCdaSummary[]): Buffer {
    if (!mayCarryXdm(message)) return message;
    const result = applyXdmDocuments(message, this.deps.xdm ?? {});
    if (result.decision.action === 'set') documents?.push(...result.decision.documents);
    return result.message;
  }

  /**
   * A document that cannot be integrated, reported by error MDN: the MDNs, the refusal's audit record and the
   * idempotency key (so a retry gets no second MDN) in one unit of work; nothing is delivered, the peer gets its 250.
   */
  private async notIntegrated(
    m: RelayedMessage,
    queueId: string,
    peerDomain: string,
    key: string | null,
    refusal: Refusal,
    receipts: PreparedReceipts,
    trail: AuditEvent[],
    recordKey: (tx: StoreTx) => Promise<void>,
  ): Promise<RelayOutcome> {
    try {
      await this.deps.mail.store.transaction(async (tx) => {
        await recordKey(tx);
        await receipts.inUnit(tx);
        await appendAudit(tx, [
          ...trail,
          {
            actor: m.envelope.mailFrom || '<>',
            action: 'refuse',
            object: queueId,
            outcome: refusal.code,
            detail: { remote: m.remoteAddress, reason: refusal.detail ?? null, answer: 'error-mdn' },
          },
        ]);
      });
    } catch (err) {
      if (err instanceof AlreadyAccepted) return this.duplicate(m, queueId, peerDomain, key!);
      this.deps.log.error({ err, queueId }, 'error MDN of a relayed message could not be stored; nothing was committed');
      throw new Refusal('temporary-failure', 'store error');
    }
    receipts.afterCommit(this.deps.notifier);
    this.deps.log.info({ queueId, peer: peerDomain, refusal: refusal.code, mdns: receipts.count }, 'relayed document not integrated: error MDN sent');
    return { kind: 'not-integrated', queueId, refusal };
  }

  /** A key delivered before: nothing is stored again; the peer gets its 250 and the journal says so. */
  private async duplicate(m: RelayedMessage, queueId: string, peerDomain: string, key: string): Promise<RelayOutcome> {
    await audit(this.deps.mail.store, {
      actor: m.envelope.mailFrom || '<>',
      action: 'relay-accept',
      object: queueId,
      outcome: 'duplicate',
      detail: { peerDomain, peerDn: m.peerDn, idempotencyKey: key, remote: m.remoteAddress },
    });
    this.deps.log.info({ queueId, peer: peerDomain }, 'relayed message already accepted (idempotency key): not delivered again');
    return { kind: 'duplicate', queueId };
  }

  private async refusing<T>(actor: string, object: string, remote: string, step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (err) {
      if (err instanceof Refusal) await this.deps.reporter.report(err, actor, object, remote);
      throw err;
    }
  }
}
