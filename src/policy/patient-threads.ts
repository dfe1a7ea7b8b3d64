import { createHmac, hkdfSync } from 'node:crypto';
import { openJson, sealJson } from '../crypto/seal.js';
import type { EnvelopeAddress, MessageMeta } from '../mime/types.js';
import type { SealedMail } from '../store/sealed-mail.js';
import type { MailboxRow, StoreReads, StoreTx } from '../store/types.js';

/**
 * The conversations professionals open with a patient (the reply-only rule, DOMAIN.md §1.5): every professional's
 * message delivered to a patient is recorded by the keyed hash of its Message-ID, with its conversation and the
 * addresses a reply may go to (Reply-To, else From), sealed. A patient's message must answer a recorded message of
 * a conversation no professional closed with `X-MSS-MES: FIN`.
 *
 * Keys: HMAC-SHA-256 under a key derived (HKDF) from the patient mailbox's data key, so the hashes mean nothing
 * outside this mailbox and nothing without the master key.
 */

const KEY_INFO = Buffer.from('mss patient threads v1');
/** Ids read from In-Reply-To and References, at most (a header cannot make the lookup unbounded). */
const MAX_IDS = 64;

export type ReplyCheck =
  | { ok: true; threadKey: string; allowed: string[] }
  | { ok: false; reason: 'not-a-reply' | 'unknown-thread' | 'thread-closed' };

/** The message ids (`<…>`) of a header value, in order; a value without angle brackets counts as one id. */
export function messageIds(value: string | null): string[] {
  if (value === null) return [];
  const found = value.match(/<[^<>\s]+>/g);
  if (found) return found;
  const bare = value.trim();
  return bare === '' || /\s/.test(bare) ? [] : [`<${bare}>`];
}

function addressList(list: EnvelopeAddress[] | null): string[] {
  return (list ?? []).filter((a) => a.mailbox && a.host).map((a) => `${a.mailbox}@${a.host}`.toLowerCase());
}

/** Whether the professional's message closes its conversation to the patient (`X-MSS-MES: FIN`, Ref#2 ECO.2.2.8). */
export function closesThread(raw: Buffer): boolean {
  const text = raw.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const header = (end < 0 ? text : text.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ');
  return header.split(/\r?\n/).some((line) => /^x-mss-mes\s*:\s*fin\s*$/i.test(line));
}

export class PatientThreads {
  readonly #keys = new Map<number, Buffer>();

  constructor(private readonly mail: SealedMail) {}

  #key(patient: MailboxRow): Buffer {
    let key = this.#keys.get(patient.id);
    if (!key) {
      key = Buffer.from(hkdfSync('sha256', this.mail.key(patient), Buffer.alloc(0), KEY_INFO, 32));
      this.#keys.set(patient.id, key);
    }
    return key;
  }

  #hash(patient: MailboxRow, kind: 'message' | 'thread', id: string): string {
    return createHmac('sha256', this.#key(patient)).update(`${kind}\n${id}`).digest('base64url');
  }

  #aad(patient: MailboxRow, messageKey: string): string {
    return `patient-thread|${patient.id}|${messageKey}`;
  }

  #seal(patient: MailboxRow, messageKey: string, allowed: string[]): Buffer {
    return sealJson(this.mail.key(patient), allowed, this.#aad(patient, messageKey));
  }

  #open(patient: MailboxRow, messageKey: string, sealed: Buffer): string[] {
    const value: unknown = openJson<unknown>(this.mail.key(patient), sealed, this.#aad(patient, messageKey));
    if (!Array.isArray(value) || !value.every((a): a is string => typeof a === 'string')) throw new Error('patient thread: sealed addresses are not a list');
    return value;
  }

  /** The ids a message refers to: In-Reply-To first, then References from the latest back to the first. */
  #ancestors(meta: MessageMeta): string[] {
    const ids = [...messageIds(meta.thread.inReplyTo), ...[...meta.thread.references].reverse().flatMap((r) => messageIds(r))];
    return [...new Set(ids)].slice(0, MAX_IDS);
  }

  /** The recorded messages among the ids, keyed by hash. */
  async #known(reader: StoreReads, patient: MailboxRow, ids: string[]) {
    const keys = ids.map((id) => this.#hash(patient, 'message', id));
    const rows = await reader.getPatientThreadMessages(patient.id, keys);
    const byKey = new Map(rows.map((r) => [r.messageKey, r]));
    return keys.map((k) => byKey.get(k)).filter((r) => r !== undefined);
  }

  /**
   * Records a professional's message delivered to the patient, in the delivery's unit of work. Its conversation is
   * the one of the first recorded message it refers to, else the one its first reference (or In-Reply-To, or its
   * own Message-ID) starts; `X-MSS-MES: FIN` closes that conversation. Replies may go to Reply-To, else From.
   */
  async recordProfessionalMessage(tx: StoreTx, patient: MailboxRow, meta: MessageMeta, closes: boolean, at: number): Promise<void> {
    const own = messageIds(meta.thread.messageId)[0] ?? null;
    const known = await this.#known(tx, patient, this.#ancestors(meta));
    const root = meta.thread.references.flatMap((r) => messageIds(r))[0] ?? messageIds(meta.thread.inReplyTo)[0] ?? own;
    if (root === null) return;
    const threadKey = known[0]?.threadKey ?? this.#hash(patient, 'thread', root);
    await tx.upsertPatientThread(patient.id, threadKey, at, closes ? at : null);
    if (own === null) return;
    const replyTo = addressList(meta.envelope.replyTo);
    const allowed = replyTo.length > 0 ? replyTo : addressList(meta.envelope.from);
    const messageKey = this.#hash(patient, 'message', own);
    await tx.insertPatientThreadMessage({ mailboxId: patient.id, messageKey, threadKey, allowed: this.#seal(patient, messageKey, allowed), createdAt: at });
  }

  /**
   * Whether a message of the patient answers a recorded professional's message in an open conversation: the
   * message it answers is the first recorded one among In-Reply-To, then References from the latest.
   */
  async checkReply(reader: StoreReads, patient: MailboxRow, meta: MessageMeta): Promise<ReplyCheck> {
    const ids = this.#ancestors(meta);
    if (ids.length === 0) return { ok: false, reason: 'not-a-reply' };
    const [answered] = await this.#known(reader, patient, ids);
    if (!answered) return { ok: false, reason: 'unknown-thread' };
    const thread = await reader.getPatientThread(patient.id, answered.threadKey);
    if (!thread || thread.closedAt !== null) return { ok: false, reason: 'thread-closed' };
    return { ok: true, threadKey: answered.threadKey, allowed: this.#open(patient, answered.messageKey, answered.allowed) };
  }

  /**
   * Records the patient's own reply in its conversation (same reply addresses), so a professional answering it by
   * its Message-ID alone stays in the conversation.
   */
  async recordPatientReply(tx: StoreTx, patient: MailboxRow, meta: MessageMeta, threadKey: string, allowed: string[], at: number): Promise<void> {
    const own = messageIds(meta.thread.messageId)[0];
    if (!own) return;
    const messageKey = this.#hash(patient, 'message', own);
    await tx.upsertPatientThread(patient.id, threadKey, at, null);
    await tx.insertPatientThreadMessage({ mailboxId: patient.id, messageKey, threadKey, allowed: this.#seal(patient, messageKey, allowed), createdAt: at });
  }

  /** For the webmail's reply button: the conversation of a message the patient reads, as `checkReply` would see a reply to it. */
  async replyTo(reader: StoreReads, patient: MailboxRow, original: MessageMeta): Promise<ReplyCheck> {
    const own = messageIds(original.thread.messageId)[0];
    if (!own) return { ok: false, reason: 'unknown-thread' };
    const [row] = await this.#known(reader, patient, [own]);
    if (!row) return { ok: false, reason: 'unknown-thread' };
    const thread = await reader.getPatientThread(patient.id, row.threadKey);
    if (!thread || thread.closedAt !== null) return { ok: false, reason: 'thread-closed' };
    return { ok: true, threadKey: row.threadKey, allowed: this.#open(patient, row.messageKey, row.allowed) };
  }
}
