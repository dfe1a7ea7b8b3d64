import { decodeWords } from './encoded-words.js';
import { headerValue, readHeader, type HeaderField } from './headers.js';
import {
  bareAddress,
  buildReportMessage,
  fieldGroups,
  fieldsPart,
  findReport,
  mailDate,
  newMessageId,
  oneLine,
  originalHeader,
  originalPart,
  reportEnvelope,
  ReportParseError,
  textPart,
  typedValue,
  type ReportEnvelope,
  type ReturnContent,
} from './report.js';

/**
 * Delivery Status Notifications (RFC 3464 in a RFC 6522 multipart/report): what the queue worker sends the
 * sender when a message cannot be delivered (failed), is late (delayed), or was delivered where a DSN was
 * asked for; and reading one back (`parseDsn`) for the tracker of outbound messages. Pure functions over
 * bytes: no store, no SMTP.
 */

export const DSN_ACTIONS = ['failed', 'delayed', 'delivered', 'relayed', 'expanded'] as const;
export type DsnAction = (typeof DSN_ACTIONS)[number];

export interface DsnRecipient {
  finalRecipient: string;
  /** The recipient as the sender gave it (ORCPT), when it differs or is known. */
  originalRecipient?: string | null;
  action: DsnAction;
  /** Enhanced status code (RFC 3463), e.g. `5.1.1`; 4.x.x for delayed, 2.x.x for delivered/relayed/expanded. */
  status: string;
  /** The remote server's reply, e.g. `550 5.1.1 No such user` (written `Diagnostic-Code: smtp; …`). */
  diagnostic?: string | null;
  /** The remote server that gave `diagnostic` (host name). */
  remoteMta?: string | null;
  lastAttemptDate?: Date | null;
  /** For `delayed`: until when we keep trying. */
  willRetryUntil?: Date | null;
}

export interface DsnInput {
  /** Our host name (`Reporting-MTA: dns; <name>`). */
  reportingMta: string;
  /** The DSN comes from `MAILER-DAEMON@<domain>`. */
  domain: string;
  /** Where it goes: the original envelope sender (never send a DSN for a message whose sender was `<>`). */
  to: string;
  /** The message reported on, as queued. */
  original: Buffer;
  recipients: readonly DsnRecipient[];
  arrivalDate?: Date | null;
  /** The ENVID the sender gave (RFC 3461), if any. */
  originalEnvelopeId?: string | null;
  /** The original's header only (default, RFC 3462 RET=HDRS) or the whole message. */
  returnContent?: ReturnContent;
  /** A sentence for people explaining the cause (e.g. the refusal text), in French and English. */
  explanation?: { fr: string; en: string } | null;
  subject?: string;
  date?: Date;
  messageId?: string;
}

export interface BuiltDsn {
  raw: Buffer;
  messageId: string;
  subject: string;
  /** The SMTP envelope: MAIL FROM is the null path `<>` (RFC 5321 §4.5.5: no DSN may answer a DSN). */
  envelope: { from: ''; to: string[] };
}

const STATUS = /^([245])\.\d{1,3}\.\d{1,3}$/;

function checkRecipient(r: DsnRecipient): void {
  const m = STATUS.exec(r.status);
  if (!m) throw new RangeError(`DSN status: expected x.y.z with x 2, 4 or 5 (got ${JSON.stringify(r.status)})`);
  const klass = m[1];
  const ok = r.action === 'failed' ? klass !== '2' : r.action === 'delayed' ? klass === '4' : klass === '2';
  if (!ok) throw new RangeError(`DSN status ${r.status} does not fit action ${r.action}`);
  if (r.willRetryUntil && r.action !== 'delayed') throw new RangeError('Will-Retry-Until belongs to a delayed recipient only');
}

/** The most serious action of the report, which names it: failed, then delayed, then the rest. */
function headline(recipients: readonly DsnRecipient[]): DsnAction {
  if (recipients.some((r) => r.action === 'failed')) return 'failed';
  if (recipients.some((r) => r.action === 'delayed')) return 'delayed';
  return recipients[0]!.action;
}

const HEADLINES: Record<DsnAction, { fr: string; en: string }> = {
  failed: { fr: 'Message non remis', en: 'Undelivered message' },
  delayed: { fr: 'Remise retardée', en: 'Delivery delayed' },
  delivered: { fr: 'Message remis', en: 'Message delivered' },
  relayed: { fr: 'Message relayé', en: 'Message relayed' },
  expanded: { fr: 'Message redistribué', en: 'Message expanded' },
};

const RECIPIENT_OUTCOME: Record<DsnAction, { fr: string; en: string }> = {
  failed: { fr: 'non remis ; nous avons cessé les tentatives', en: 'not delivered; we have stopped trying' },
  delayed: { fr: 'pas encore remis ; nous réessayons', en: 'not delivered yet; we keep trying' },
  delivered: { fr: 'remis', en: 'delivered' },
  relayed: { fr: 'relayé vers un système qui ne renvoie pas de notification', en: 'relayed to a system that sends no notifications' },
  expanded: { fr: 'redistribué à plusieurs destinataires', en: 'expanded to several recipients' },
};

/** The subject: the headline in French and English, then the original subject. */
export function dsnSubject(action: DsnAction, originalSubject: string | null): string {
  const h = HEADLINES[action];
  return `${h.fr} / ${h.en}${originalSubject ? ` : ${originalSubject}` : ''}`;
}

function humanText(input: DsnInput, subject: string | null, messageId: string | null): string {
  const french: string[] = [];
  const english: string[] = [];
  const about = subject ? ` « ${subject} »` : '';
  const aboutEn = subject ? ` "${subject}"` : '';
  french.push(`Ceci est un message automatique du serveur ${input.reportingMta}.`, '');
  english.push(`This is an automatic message from the server ${input.reportingMta}.`, '');
  french.push(`Votre message${about}${messageId ? ` (${messageId})` : ''} :`);
  english.push(`Your message${aboutEn}${messageId ? ` (${messageId})` : ''}:`);
  for (const r of input.recipients) {
    const o = RECIPIENT_OUTCOME[r.action];
    french.push(`- ${r.finalRecipient} : ${o.fr} (statut ${r.status}).`);
    english.push(`- ${r.finalRecipient}: ${o.en} (status ${r.status}).`);
    if (r.diagnostic) {
      const where = r.remoteMta ? ` ${oneLine(r.remoteMta)}` : '';
      french.push(`  Réponse du serveur${where} : ${oneLine(r.diagnostic)}`);
      english.push(`  Reply from the server${where}: ${oneLine(r.diagnostic)}`);
    }
    if (r.willRetryUntil) {
      french.push(`  Nouvelles tentatives jusqu'au ${r.willRetryUntil.toISOString()}.`);
      english.push(`  We will keep trying until ${r.willRetryUntil.toISOString()}.`);
    }
  }
  if (input.explanation) {
    french.push('', oneLine(input.explanation.fr));
    english.push('', oneLine(input.explanation.en));
  }
  const returned = (input.returnContent ?? 'headers') === 'full' ? ['Le message est joint.', 'The message is attached.'] : ["Les en-têtes du message sont joints.", "The message's header is attached."];
  french.push('', returned[0]!);
  english.push('', returned[1]!);
  return [...french, '', '---', '', ...english, ''].join('\n');
}

/**
 * A `multipart/report; report-type=delivery-status` DSN from `MAILER-DAEMON@<domain>`: human text (French,
 * then English), the `message/delivery-status` block (per-message fields, then one group per recipient), and
 * the original as text/rfc822-headers (default) or message/rfc822. Send it with the null envelope sender.
 */
export function buildDsn(input: DsnInput): BuiltDsn {
  if (input.recipients.length === 0) throw new RangeError('a DSN reports on at least one recipient');
  for (const r of input.recipients) checkRecipient(r);
  const to = bareAddress(input.to, 'DSN To');
  const from = bareAddress(`MAILER-DAEMON@${input.domain}`, 'DSN From');
  const originalFields = readHeader(input.original, 0, input.original.length).fields;
  const rawSubject = headerValue(originalFields, 'subject');
  const originalSubject = rawSubject === null ? null : decodeWords(rawSubject);
  const originalMessageId = headerValue(originalFields, 'message-id');
  const subject = input.subject ?? dsnSubject(headline(input.recipients), originalSubject);
  const messageId = input.messageId ?? newMessageId(input.domain);
  const date = input.date ?? new Date();

  const perMessage: [string, string | null][] = [
    ['Reporting-MTA', `dns; ${input.reportingMta}`],
    ['Original-Envelope-Id', input.originalEnvelopeId ?? null],
    ['Arrival-Date', input.arrivalDate ? mailDate(input.arrivalDate) : null],
  ];
  const perRecipient = input.recipients.map((r): [string, string | null][] => [
    ['Original-Recipient', r.originalRecipient ? `rfc822; ${bareAddress(r.originalRecipient, 'Original-Recipient')}` : null],
    ['Final-Recipient', `rfc822; ${bareAddress(r.finalRecipient, 'Final-Recipient')}`],
    ['Action', r.action],
    ['Status', r.status],
    ['Remote-MTA', r.remoteMta ? `dns; ${r.remoteMta}` : null],
    ['Diagnostic-Code', r.diagnostic ? `smtp; ${r.diagnostic}` : null],
    ['Last-Attempt-Date', r.lastAttemptDate ? mailDate(r.lastAttemptDate) : null],
    ['Will-Retry-Until', r.willRetryUntil ? mailDate(r.willRetryUntil) : null],
  ]);
  const parts = [
    textPart(humanText(input, originalSubject, originalMessageId)),
    fieldsPart('message/delivery-status', [perMessage, ...perRecipient]),
    originalPart(input.original, input.returnContent ?? 'headers'),
  ];
  const headers: [string, string][] = [
    ['From', `Mail Delivery System <${from}>`],
    ['To', to],
    ['Subject', subject],
    ['Date', mailDate(date)],
    ['Message-ID', messageId],
    ...(originalMessageId ? ([['In-Reply-To', originalMessageId], ['References', originalMessageId]] as [string, string][]) : []),
    ['Auto-Submitted', 'auto-replied'],
  ];
  return { raw: buildReportMessage(headers, 'delivery-status', parts), messageId, subject, envelope: { from: '', to: [to] } };
}

// ---------------------------------------------------------------------------------------------------------
// Reading

export interface ParsedDsnRecipient {
  finalRecipient: string | null;
  originalRecipient: string | null;
  /** Lower-case, as written (one of DSN_ACTIONS in a conforming DSN). */
  action: string | null;
  /** The x.y.z code, without a trailing comment. */
  status: string | null;
  /** The Diagnostic-Code value after its type (`smtp; `). */
  diagnostic: string | null;
  remoteMta: string | null;
  lastAttemptDate: string | null;
  willRetryUntil: string | null;
  fields: [string, string][];
}

export interface ParsedDsn {
  message: ReportEnvelope;
  reportingMta: string | null;
  arrivalDate: string | null;
  originalEnvelopeId: string | null;
  /** Message-ID of the returned original (or a per-message `…Original-Message-Id` extension field). */
  originalMessageId: string | null;
  originalSubject: string | null;
  recipients: ParsedDsnRecipient[];
  perMessageFields: [string, string][];
}

export { ReportParseError as DsnParseError };

const isRecipientGroup = (g: readonly HeaderField[]) => g.some((f) => f.name === 'final-recipient' || f.name === 'original-recipient');

function recipientOf(group: readonly HeaderField[]): ParsedDsnRecipient {
  const v = (name: string) => headerValue(group, name);
  const typed = (name: string) => {
    const value = v(name);
    return value === null ? null : typedValue(value).value || null;
  };
  const status = v('status');
  return {
    finalRecipient: typed('final-recipient'),
    originalRecipient: typed('original-recipient'),
    action: v('action')?.toLowerCase() ?? null,
    status: status === null ? null : (/^\d\.\d{1,3}\.\d{1,3}/.exec(status)?.[0] ?? status),
    diagnostic: typed('diagnostic-code'),
    remoteMta: typed('remote-mta'),
    lastAttemptDate: v('last-attempt-date'),
    willRetryUntil: v('will-retry-until'),
    fields: group.map((f) => [f.name, f.value]),
  };
}

/**
 * Reads a DSN: the first `multipart/report; report-type=delivery-status` in the message. Lenient about field
 * order, a missing per-message group and a missing address type, as DSNs in the wild are. Throws
 * `DsnParseError` when there is no such report or it names no recipient.
 */
export function parseDsn(raw: Buffer): ParsedDsn {
  const found = findReport(raw, 'delivery-status', ['delivery-status', 'global-delivery-status']);
  const groups = fieldGroups(raw, found.machine);
  const perMessage = groups[0] && !isRecipientGroup(groups[0]) ? groups[0] : [];
  const recipients = groups.filter(isRecipientGroup).map(recipientOf);
  if (recipients.length === 0) throw new ReportParseError('message/delivery-status names no recipient');
  const reportingMta = headerValue(perMessage, 'reporting-mta');
  const extensionMessageId = perMessage.find((f) => f.name.endsWith('original-message-id'))?.value ?? null;
  const originalSubject = originalHeader(raw, found.original, 'subject');
  return {
    message: reportEnvelope(found.fields),
    reportingMta: reportingMta === null ? null : typedValue(reportingMta).value,
    arrivalDate: headerValue(perMessage, 'arrival-date'),
    originalEnvelopeId: headerValue(perMessage, 'original-envelope-id'),
    originalMessageId: originalHeader(raw, found.original, 'message-id') ?? extensionMessageId,
    originalSubject: originalSubject === null ? null : decodeWords(originalSubject),
    recipients,
    perMessageFields: perMessage.map((f) => [f.name, f.value]),
  };
}
