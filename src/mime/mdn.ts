import { parseAddressList } from './address.js';
import { decodeWords } from './encoded-words.js';
import { headerValue, readHeader, type HeaderField } from './headers.js';
import { parseStructured } from './params.js';
import {
  asciiField,
  bareAddress,
  buildReportMessage,
  fieldGroups,
  fieldsPart,
  findReport,
  mailDate,
  newMessageId,
  originalHeader,
  originalPart,
  reportEnvelope,
  ReportParseError,
  textPart,
  typedValue,
  type ReportEnvelope,
  type ReportPart,
  type ReturnContent,
} from './report.js';

/**
 * Message Disposition Notifications (RFC 8098) as MSSanté and Direct use them: when one may be sent
 * automatically (`mdnPolicy`), building one (`buildMdn`) and reading one back (`parseMdn`) for the sending
 * side's tracker. Pure functions over bytes: no store, no SMTP.
 *
 * MSSanté (ANS volet "Transmission de documents CDA … courriel MSSanté", struct-msg-mdn): three parts in order
 * (human text, message/disposition-notification, the original as message/rfc822), the original attachments
 * returned after them, `processed/Error: <code>^<label>` and the subject `[KO Intégration système !][<code>] …`
 * when an application cannot integrate a document (plus RFC 8098's Error field with the same text, for readers
 * that look there). Direct (Implementation Guide for Delivery Notification):
 * `processed` after decryption and trust checks, then `dispatched` with the X-DIRECT-FINAL-DESTINATION-DELIVERY
 * field at final delivery when the sender asked for it.
 */

export const DISPOSITION_TYPES = ['displayed', 'dispatched', 'processed', 'deleted'] as const;
export type DispositionType = (typeof DISPOSITION_TYPES)[number];

/** The Direct "timely and reliable" option and extension field (Implementation Guide for Delivery Notification, 2012). */
export const FINAL_DESTINATION_DELIVERY = 'X-DIRECT-FINAL-DESTINATION-DELIVERY';

/** The subject prefix of an MSSanté integration-error MDN, before `[<code>]`. */
export const INTEGRATION_ERROR_PREFIX = '[KO Intégration système !]';

// ---------------------------------------------------------------------------------------------------------
// Policy: may an MDN be sent automatically?

export interface DispositionOption {
  /** As written (attribute names are compared case-insensitively). */
  name: string;
  importance: 'required' | 'optional';
  values: string[];
}

export type MdnPolicyReason =
  | 'ok'
  /** No Disposition-Notification-To: never send an MDN. */
  | 'not-requested'
  /** The message is itself a report (MDN or DSN): never answer one (loop prevention). */
  | 'is-report'
  /** Disposition-Notification-To holds several addresses, or none usable. */
  | 'bad-notify-address'
  /** No Return-Path known, or the null path `<>`. */
  | 'no-return-path'
  /** Disposition-Notification-To is not the Return-Path (RFC 8098 §2.1): only a person may decide. */
  | 'return-path-differs'
  /** A `required` Disposition-Notification-Options parameter we do not implement (RFC 8098 §2.2). */
  | 'unsupported-required-option';

export interface MdnRequest {
  /** Disposition-Notification-To is present. */
  requested: boolean;
  /** The one address of Disposition-Notification-To, when it has exactly one. */
  notifyTo: string | null;
  /** An MDN may be sent without asking a person. */
  automatic: boolean;
  reason: MdnPolicyReason;
  /** From the Original-Recipient header (address only), for the MDN's Original-Recipient field. */
  originalRecipient: string | null;
  /** The sender asked for Direct timely and reliable delivery: a `dispatched` MDN with the extension field at final delivery. */
  finalDestinationDelivery: boolean;
  options: DispositionOption[];
}

/** Parameters of Disposition-Notification-Options (RFC 8098 §2.2): `attr=importance,value[,value]; …`. */
export function parseDispositionOptions(value: string | null): DispositionOption[] {
  if (!value) return [];
  const out: DispositionOption[] = [];
  for (const piece of value.split(';')) {
    const eq = piece.indexOf('=');
    if (eq <= 0) continue;
    const [importance, ...values] = piece
      .slice(eq + 1)
      .split(',')
      .map((v) => v.trim());
    const imp = importance?.toLowerCase();
    if (imp !== 'required' && imp !== 'optional') continue;
    out.push({ name: piece.slice(0, eq).trim(), importance: imp, values });
  }
  return out;
}

/** Two addresses are the same mailbox: the local part compared exactly, the domain without case. */
export function sameAddress(a: string, b: string): boolean {
  const split = (x: string) => {
    const at = x.lastIndexOf('@');
    return at < 0 ? [x, ''] : [x.slice(0, at), x.slice(at + 1).toLowerCase()];
  };
  const [la, da] = split(a.trim());
  const [lb, db] = split(b.trim());
  return la === lb && da === db && la !== '';
}

function addressesOf(value: string | null): string[] {
  return (parseAddressList(value) ?? []).filter((a) => a.mailbox && a.host).map((a) => `${a.mailbox}@${a.host}`);
}

/**
 * Whether the message asks for an MDN and whether one may be sent automatically: only when
 * Disposition-Notification-To is present, holds one address, and that address is the Return-Path
 * (`returnPath`, the envelope sender, when the caller knows it; the Return-Path header otherwise; `''` is the
 * null path). A message that is itself a report never gets one.
 */
export function mdnPolicy(message: Buffer, options: { returnPath?: string | null } = {}): MdnRequest {
  const fields = readHeader(message, 0, message.length).fields;
  const dnt = headerValue(fields, 'disposition-notification-to');
  const dno = parseDispositionOptions(headerValue(fields, 'disposition-notification-options'));
  const fdd = dno.find((o) => o.name.toUpperCase() === FINAL_DESTINATION_DELIVERY);
  const originalRecipientField = headerValue(fields, 'original-recipient');
  const base = {
    requested: dnt !== null,
    notifyTo: null as string | null,
    originalRecipient: originalRecipientField ? typedValue(originalRecipientField).value || null : null,
    finalDestinationDelivery: fdd !== undefined && fdd.values[0]?.toLowerCase() === 'true',
    options: dno,
  };
  const refuse = (reason: MdnPolicyReason): MdnRequest => ({ ...base, automatic: false, reason });
  if (dnt === null) return refuse('not-requested');
  const contentType = headerValue(fields, 'content-type');
  if (contentType && parseStructured(contentType).value === 'multipart/report') return refuse('is-report');
  const notify = addressesOf(dnt);
  if (notify.length !== 1) return refuse('bad-notify-address');
  base.notifyTo = notify[0]!;
  const unsupported = dno.filter((o) => o.importance === 'required' && o.name.toUpperCase() !== FINAL_DESTINATION_DELIVERY);
  if (unsupported.length > 0) return refuse('unsupported-required-option');
  const returnPathValue = options.returnPath !== undefined ? options.returnPath : headerValue(fields, 'return-path');
  const returnPath = returnPathValue === null ? null : returnPathValue.trim().replace(/^<(.*)>$/, '$1').trim();
  if (!returnPath) return refuse('no-return-path');
  if (!sameAddress(base.notifyTo, returnPath)) return refuse('return-path-differs');
  return { ...base, automatic: true, reason: 'ok' };
}

// ---------------------------------------------------------------------------------------------------------
// Building

export interface MdnError {
  /** The error code, e.g. `902`. */
  code: string;
  /** Its label, e.g. `Identifiant de patient inconnu`. */
  label: string;
}

export interface MdnAttachment {
  filename: string;
  contentType: string;
  content: Buffer;
}

export interface MdnInput {
  /** The message acknowledged, as received: the MDN returns it and quotes its Message-ID and Subject. */
  original: Buffer;
  /** The MDN's From: the mailbox the notification is issued for (or a service mailbox of the operator). */
  from: string;
  /** Where the MDN goes: the Disposition-Notification-To address (`MdnRequest.notifyTo`). */
  to: string;
  finalRecipient: string;
  /** Original-Recipient of the original, when it had one (`MdnRequest.originalRecipient`). */
  originalRecipient?: string | null;
  /** `Reporting-UA: <name>; <product>`: our host name and software. */
  reportingUa: { name: string; product?: string };
  disposition: DispositionType;
  /** Default automatic-action / MDN-sent-automatically. */
  manual?: boolean;
  /** The document could not be integrated: `processed/Error: <code>^<label>` and the `[KO Intégration système !]` subject. */
  error?: MdnError | null;
  /** Adds the X-DIRECT-FINAL-DESTINATION-DELIVERY field (only on the `dispatched` MDN of a request that asked for it). */
  finalDestinationDelivery?: boolean;
  /** The original whole (`full`, default; the MSSanté volet requires it) or its header only. */
  returnContent?: ReturnContent;
  /** Parts returned after the original (the MSSanté volet returns the original attachments this way). */
  attachments?: readonly MdnAttachment[];
  /** Overrides the subject rule (original subject; error prefix). */
  subject?: string;
  date?: Date;
  messageId?: string;
}

export interface BuiltMdn {
  raw: Buffer;
  messageId: string;
  subject: string;
  /** The SMTP envelope: MAIL FROM is the null path `<>` (RFC 8098 §3: nothing may answer an MDN), RCPT TO the notify address. */
  envelope: { from: ''; to: string[] };
}

function dispositionValue(input: Pick<MdnInput, 'manual' | 'disposition' | 'error'>): string {
  const mode = input.manual ? 'manual-action/MDN-sent-manually' : 'automatic-action/MDN-sent-automatically';
  const error = input.error ? `/Error: ${errorText(input.error)}` : '';
  return `${mode}; ${input.disposition}${error}`;
}

function errorText(error: MdnError): string {
  const code = error.code.trim();
  if (!/^[A-Za-z0-9._-]{1,32}$/.test(code)) throw new RangeError(`MDN error code: expected 1 to 32 letters, digits, '.', '_' or '-' (got ${JSON.stringify(error.code)})`);
  return `${code}^${error.label}`;
}

const WHAT_HAPPENED: Record<DispositionType, { fr: string; en: string }> = {
  processed: { fr: 'a été reçu et traité', en: 'was received and processed' },
  dispatched: { fr: 'a été remis à sa destination finale', en: 'was delivered to its final destination' },
  displayed: { fr: 'a été affiché', en: 'was displayed' },
  deleted: { fr: 'a été supprimé (il a pu ne pas être lu)', en: 'was deleted (it may not have been read)' },
};

function humanText(input: MdnInput, subject: string | null, date: string | null, finalRecipient: string): string {
  const quoted = subject ? `« ${subject} »` : 'sans objet';
  const quotedEn = subject ? `"${subject}"` : 'without a subject';
  const when = date ? ` (${date})` : '';
  if (input.error) {
    const text = errorText(input.error);
    return [
      `Le message ci-dessous ${quoted}${when}, adressé à ${finalRecipient}, n'a pas pu être intégré automatiquement pour la raison suivante :`,
      `  ${input.error.label} (code ${input.error.code.trim()})`,
      `Le système a retourné l'erreur ${text}`,
      '',
      `The message below ${quotedEn}${when}, sent to ${finalRecipient}, could not be integrated automatically, for this reason:`,
      `  ${input.error.label} (code ${input.error.code.trim()})`,
      '',
    ].join('\n');
  }
  const what = WHAT_HAPPENED[input.disposition];
  const how = input.manual ? '' : ' automatiquement';
  return [
    `Le message ${quoted}${when}, adressé à ${finalRecipient}, ${what.fr}${how}.`,
    input.disposition === 'processed' ? 'Cet accusé ne signifie pas que le message a été lu.' : '',
    '',
    `The message ${quotedEn}${when}, sent to ${finalRecipient}, ${what.en}${input.manual ? '' : ' automatically'}.`,
    input.disposition === 'processed' ? 'This notification does not mean that the message was read.' : '',
    '',
  ]
    .filter((l, i, all) => l !== '' || all[i - 1] !== '')
    .join('\n');
}

/** The subject of an MDN: the original subject; `[KO Intégration système !][<code>] <subject>` on an integration error. */
export function mdnSubject(originalSubject: string | null, error?: MdnError | null): string {
  const subject = originalSubject ?? '';
  if (!error) return subject;
  return `${INTEGRATION_ERROR_PREFIX}[${error.code.trim()}]${subject ? ` ${subject}` : ''}`;
}

/**
 * A `multipart/report; report-type=disposition-notification` MDN: human text (French, then English), the
 * `message/disposition-notification` block, the original (message/rfc822 or text/rfc822-headers), then any
 * returned attachments. It carries no Disposition-Notification-To. Signing and encrypting it (Direct) is the
 * security agent's job, on these bytes.
 */
export function buildMdn(input: MdnInput): BuiltMdn {
  const from = bareAddress(input.from, 'MDN From');
  const to = bareAddress(input.to, 'MDN To');
  const finalRecipient = bareAddress(input.finalRecipient, 'Final-Recipient');
  const originalRecipient = input.originalRecipient ? bareAddress(input.originalRecipient, 'Original-Recipient') : null;
  if (input.finalDestinationDelivery && input.disposition !== 'dispatched') {
    throw new RangeError(`${FINAL_DESTINATION_DELIVERY} belongs on a dispatched MDN only (got ${input.disposition})`);
  }
  const originalFields = readHeader(input.original, 0, input.original.length).fields;
  const originalMessageId = headerValue(originalFields, 'message-id');
  const rawSubject = headerValue(originalFields, 'subject');
  const originalSubject = rawSubject === null ? null : decodeWords(rawSubject);
  const subject = input.subject ?? mdnSubject(originalSubject, input.error);
  const domain = from.slice(from.lastIndexOf('@') + 1);
  const messageId = input.messageId ?? newMessageId(domain);
  const date = input.date ?? new Date();

  const ua = [asciiField(input.reportingUa.name), input.reportingUa.product ? asciiField(input.reportingUa.product) : null].filter(Boolean).join('; ');
  const notification = fieldsPart('message/disposition-notification', [
    [
      ['Reporting-UA', ua],
      ['Original-Recipient', originalRecipient ? `rfc822; ${originalRecipient}` : null],
      ['Final-Recipient', `rfc822; ${finalRecipient}`],
      ['Original-Message-ID', originalMessageId],
      ['Disposition', dispositionValue(input)],
      ['Error', input.error ? errorText(input.error) : null],
      [FINAL_DESTINATION_DELIVERY, input.finalDestinationDelivery ? '' : null],
    ],
  ]);
  const parts: ReportPart[] = [
    textPart(humanText(input, originalSubject, headerValue(originalFields, 'date'), finalRecipient)),
    notification,
    originalPart(input.original, input.returnContent ?? 'full'),
    ...(input.attachments ?? []).map((a) => attachmentPart(a)),
  ];
  const headers: [string, string][] = [
    ['From', from],
    ['To', to],
    ['Subject', subject],
    ['Date', mailDate(date)],
    ['Message-ID', messageId],
    ...(originalMessageId ? ([['In-Reply-To', originalMessageId], ['References', originalMessageId]] as [string, string][]) : []),
    ['Auto-Submitted', 'auto-replied'],
  ];
  return { raw: buildReportMessage(headers, 'disposition-notification', parts), messageId, subject, envelope: { from: '', to: [to] } };
}

function attachmentPart(a: MdnAttachment): ReportPart {
  const name = a.filename.replace(/["\\\r\n]/g, '_');
  if (!/^[\w.+-]+\/[\w.+-]+$/.test(a.contentType)) throw new RangeError(`attachment content type: ${JSON.stringify(a.contentType)}`);
  const b64 = (a.content.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
  return {
    contentType: `${a.contentType}; name="${name}"`,
    headers: [
      ['Content-Transfer-Encoding', 'base64'],
      ['Content-Disposition', `attachment; filename="${name}"`],
    ],
    body: Buffer.from(b64, 'latin1'),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Reading

export interface ParsedDisposition {
  /** `automatic-action` or `manual-action` (lower-case). */
  actionMode: string;
  /** `mdn-sent-automatically` or `mdn-sent-manually` (lower-case). */
  sendingMode: string;
  /** `processed`, `dispatched`, `displayed`, `deleted` (or an obsolete type such as `denied`, `failed`), lower-case. */
  type: string;
  /** Modifiers, lower-case (`error`, …); an `Error: …` modifier is reported as `error` with `MdnParsed.error`. */
  modifiers: string[];
}

export interface ParsedMdnError {
  code: string;
  /** The second `^` component (the label proper). */
  label: string;
  /** Everything after `Error:`, as written. */
  text: string;
}

export interface ParsedMdn {
  /** The MDN message's own header fields. */
  message: ReportEnvelope;
  reportingUa: string | null;
  mdnGateway: string | null;
  originalRecipient: string | null;
  finalRecipient: string | null;
  originalMessageId: string | null;
  disposition: ParsedDisposition;
  /** From `processed/Error: <code>^<label>` (MSSanté) or the Error field. */
  error: ParsedMdnError | null;
  /** The X-DIRECT-FINAL-DESTINATION-DELIVERY field is present (a Direct dispatched MDN at final delivery). */
  finalDestinationDelivery: boolean;
  /** Subject of the returned original, when it is there. */
  originalSubject: string | null;
  /** Every field of the notification block, names lower-case, in order. */
  fields: [string, string][];
}

export { ReportParseError as MdnParseError };

function parseError(text: string): ParsedMdnError {
  const trimmed = text.trim();
  const [code = '', label = ''] = trimmed.split('^');
  return { code: code.trim(), label: label.trim(), text: trimmed };
}

/** `automatic-action/MDN-sent-automatically; processed/error` (RFC 8098 §3.2.6), leniently spaced. */
export function parseDisposition(value: string): { disposition: ParsedDisposition; error: ParsedMdnError | null } {
  const semi = value.indexOf(';');
  if (semi < 0) throw new ReportParseError(`Disposition without ";": ${JSON.stringify(value)}`);
  const [actionMode = '', sendingMode = ''] = value
    .slice(0, semi)
    .split('/')
    .map((s) => s.trim().toLowerCase());
  const rest = value.slice(semi + 1).trim();
  const slash = rest.indexOf('/');
  const type = (slash < 0 ? rest : rest.slice(0, slash)).trim().toLowerCase();
  if (!type || !actionMode || !sendingMode) throw new ReportParseError(`malformed Disposition: ${JSON.stringify(value)}`);
  const modifierText = slash < 0 ? '' : rest.slice(slash + 1).trim();
  // The MSSanté form `processed/Error: 902^label, …`: everything after "Error:" is the error text (it may hold commas).
  const errorMatch = /^error\s*:(.*)$/is.exec(modifierText);
  if (errorMatch) return { disposition: { actionMode, sendingMode, type, modifiers: ['error'] }, error: parseError(errorMatch[1] ?? '') };
  const modifiers = modifierText
    .split(',')
    .map((m) => m.trim().toLowerCase())
    .filter(Boolean);
  return { disposition: { actionMode, sendingMode, type, modifiers }, error: null };
}

/**
 * Reads an MDN: the first `multipart/report; report-type=disposition-notification` in the message (also inside
 * message/rfc822 or multipart/signed wrappers). Throws `MdnParseError` when there is none or its Disposition
 * is missing or malformed.
 */
export function parseMdn(raw: Buffer): ParsedMdn {
  const found = findReport(raw, 'disposition-notification', ['disposition-notification', 'global-disposition-notification']);
  const fields: HeaderField[] = fieldGroups(raw, found.machine).flat();
  const field = (name: string) => headerValue(fields, name);
  const dispositionValueText = field('disposition');
  if (dispositionValueText === null) throw new ReportParseError('message/disposition-notification without a Disposition field');
  const { disposition, error: modifierError } = parseDisposition(dispositionValueText);
  const errorField = field('error');
  const recipient = (name: string) => {
    const v = field(name);
    return v === null ? null : typedValue(v).value || null;
  };
  const originalSubject = originalHeader(raw, found.original, 'subject');
  return {
    message: reportEnvelope(found.fields),
    reportingUa: field('reporting-ua'),
    mdnGateway: field('mdn-gateway'),
    originalRecipient: recipient('original-recipient'),
    finalRecipient: recipient('final-recipient'),
    originalMessageId: field('original-message-id'),
    disposition,
    error: modifierError ?? (errorField !== null ? parseError(errorField) : null),
    finalDestinationDelivery: fields.some((f) => f.name === FINAL_DESTINATION_DELIVERY.toLowerCase()),
    originalSubject: originalSubject === null ? null : decodeWords(originalSubject),
    fields: fields.map((f) => [f.name, f.value]),
  };
}
