import { simpleParser, type AddressObject } from 'mailparser';
import { mdnPolicy, type MdnRequest } from '../mime/mdn.js';
import { decodeWords } from '../mime/encoded-words.js';
import type { EnvelopeAddress, MessageMeta } from '../mime/types.js';
import type { SealedMail } from '../store/sealed-mail.js';
import type { FolderRow, MailboxRow, MessageRow, Notifier, StoreTx } from '../store/types.js';

/**
 * What the webmail reads of a mailbox, always through the logged-in user's own mailbox row: folders are looked
 * up by id and checked to belong to it, messages by UID inside such a folder. So changing an id in a URL can
 * only ever reach one's own mail (or nothing).
 */

/** The folders the webmail shows, in this order. */
export const WEB_FOLDERS = ['INBOX', 'Sent', 'Trash'] as const;
export type WebFolderName = (typeof WEB_FOLDERS)[number];

export interface FolderView {
  id: number;
  name: WebFolderName;
  total: number;
  unread: number;
}

export interface AddressView {
  name: string | null;
  address: string;
}

export interface MessageListItem {
  uid: number;
  seen: boolean;
  internalDate: number;
  from: AddressView[];
  to: AddressView[];
  subject: string;
  size: number;
}

export interface AttachmentView {
  /** Position among the message's attachments: the id used in URLs. */
  index: number;
  filename: string;
  contentType: string;
  size: number;
  /** An IHE XDM archive (the CDA viewer applies). */
  xdm: boolean;
}

export interface MessageView {
  folder: FolderView;
  uid: number;
  seen: boolean;
  internalDate: number;
  subject: string;
  from: AddressView[];
  to: AddressView[];
  cc: AddressView[];
  date: number | null;
  text: string | null;
  /** The HTML part as sent: it must go through the sanitiser before it is shown. */
  html: string | null;
  attachments: AttachmentView[];
  /** Whether a read receipt is asked for and where it would go. */
  receipt: MdnRequest;
  /** A read receipt was sent already ($MDNSent, RFC 3503). */
  receiptSent: boolean;
  /** The professional closed the conversation (`X-MSS-MES: FIN`). */
  closed: boolean;
}

export interface OpenedMessage {
  view: MessageView;
  meta: MessageMeta;
  raw: Buffer;
  row: MessageRow;
  attachments: { filename: string; contentType: string; content: Buffer }[];
}

/** RFC 3503: the keyword saying an MDN was sent (or declined) for the message. */
export const MDN_SENT = '$MDNSent';
/** The ANS subject prefix of messages carrying structured documents, hidden when shown (Ségur SC.MSS/UX.28). */
const XDM_PREFIX = /^\s*XDM\/1\.0\/DDM\+\s*/i;

export function displaySubject(subject: string | null): string {
  return (subject ?? '').replace(XDM_PREFIX, '').trim();
}

function envelopeAddresses(list: EnvelopeAddress[] | null): AddressView[] {
  return (list ?? [])
    .filter((a) => a.mailbox && a.host)
    .map((a) => ({ name: a.name ? decodeWords(a.name) : null, address: `${a.mailbox}@${a.host}`.toLowerCase() }));
}

function parsedAddresses(value: AddressObject | AddressObject[] | undefined): AddressView[] {
  const objects = value === undefined ? [] : Array.isArray(value) ? value : [value];
  return objects.flatMap((o) => o.value).flatMap((a) => (a.address ? [{ name: a.name || null, address: a.address.toLowerCase() }] : []));
}

function isXdm(filename: string, contentType: string): boolean {
  return /(^|\/)ihe_xdm\.zip$/i.test(filename) || (contentType.toLowerCase() === 'application/zip' && /xdm/i.test(filename));
}

export class MailReader {
  constructor(
    private readonly mail: SealedMail,
    private readonly notifier: Notifier,
  ) {}

  async folders(mailbox: MailboxRow): Promise<FolderView[]> {
    const rows = await this.mail.store.listFolders(mailbox.id);
    const out: FolderView[] = [];
    for (const name of WEB_FOLDERS) {
      const row = rows.find((f) => f.name === name);
      if (!row) continue;
      const stats = await this.mail.store.folderStats(row.id);
      out.push({ id: row.id, name, total: stats.messages, unread: stats.unseen });
    }
    return out;
  }

  /** One of the user's web folders, or null (another user's folder id, or a folder the webmail does not show). */
  async folder(mailbox: MailboxRow, folderId: number): Promise<FolderRow | null> {
    const row = await this.mail.store.getFolderById(folderId);
    if (!row || row.mailboxId !== mailbox.id || !WEB_FOLDERS.some((n) => n === row.name)) return null;
    return row;
  }

  async folderByName(mailbox: MailboxRow, name: WebFolderName): Promise<FolderRow | null> {
    return this.mail.store.getFolder(mailbox.id, name);
  }

  /** Newest first; `query` keeps the messages whose subject or addresses contain it (case and accents ignored). */
  async list(mailbox: MailboxRow, folder: FolderRow, options: { query?: string; offset: number; limit: number }): Promise<{ items: MessageListItem[]; total: number }> {
    const summaries = (await this.mail.store.listMessages(folder.id)).reverse();
    const fold = (s: string) => s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
    const query = fold(options.query?.trim() ?? '');
    const toItem = (row: MessageRow): MessageListItem => {
      const meta = this.mail.openMeta(mailbox, row);
      return {
        uid: row.uid,
        seen: row.flags.includes('\\Seen'),
        internalDate: row.internalDate,
        from: envelopeAddresses(meta.envelope.from),
        to: envelopeAddresses(meta.envelope.to),
        subject: displaySubject(meta.thread.subject),
        size: row.size,
      };
    };
    if (!query) {
      const page = summaries.slice(options.offset, options.offset + options.limit);
      const rows = await this.mail.store.getMessages(folder.id, page.map((s) => s.uid));
      const byUid = new Map(rows.map((r) => [r.uid, r]));
      return { items: page.flatMap((s) => (byUid.has(s.uid) ? [toItem(byUid.get(s.uid)!)] : [])), total: summaries.length };
    }
    // Content is sealed: search opens the metadata of the folder's messages (subject and addresses only).
    const rows = await this.mail.store.getMessages(folder.id, summaries.map((s) => s.uid));
    const matches = rows
      .map(toItem)
      .filter((item) => fold([item.subject, ...item.from.flatMap((a) => [a.name ?? '', a.address]), ...item.to.flatMap((a) => [a.name ?? '', a.address])].join(' ')).includes(query))
      .sort((a, b) => b.uid - a.uid);
    return { items: matches.slice(options.offset, options.offset + options.limit), total: matches.length };
  }

  /** The message with its parts, or null when the folder has no such UID. */
  async open(mailbox: MailboxRow, folder: FolderRow, uid: number): Promise<OpenedMessage | null> {
    const [row] = await this.mail.store.getMessages(folder.id, [uid]);
    if (!row) return null;
    const meta = this.mail.openMeta(mailbox, row);
    const raw = await this.mail.openBody(mailbox, row);
    const parsed = await simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true });
    const attachments = parsed.attachments.map((a) => ({
      filename: a.filename ?? `attachment-${parsed.attachments.indexOf(a) + 1}`,
      contentType: (a.contentType || 'application/octet-stream').toLowerCase(),
      content: a.content,
    }));
    const mes = parsed.headers.get('x-mss-mes');
    const name = WEB_FOLDERS.find((n) => n === folder.name) ?? 'INBOX';
    const view: MessageView = {
      // Counts are the page's business (its navigation reads them once).
      folder: { id: folder.id, name, total: 0, unread: 0 },
      uid,
      seen: row.flags.includes('\\Seen'),
      internalDate: row.internalDate,
      subject: displaySubject(meta.thread.subject),
      from: envelopeAddresses(meta.envelope.from),
      to: parsedAddresses(parsed.to),
      cc: parsedAddresses(parsed.cc),
      date: parsed.date ? parsed.date.getTime() : null,
      text: parsed.text ?? null,
      html: typeof parsed.html === 'string' ? parsed.html : null,
      attachments: attachments.map((a, index) => ({ index, filename: a.filename, contentType: a.contentType, size: a.content.length, xdm: isXdm(a.filename, a.contentType) })),
      receipt: mdnPolicy(raw),
      receiptSent: row.flags.includes(MDN_SENT),
      closed: typeof mes === 'string' && mes.trim().toUpperCase() === 'FIN',
    };
    return { view, meta, raw, row, attachments };
  }

  /** Adds flags (\Seen on reading, $MDNSent after a receipt) and tells the other sessions. */
  async addFlags(mailbox: MailboxRow, folder: FolderRow, row: MessageRow, flags: string[]): Promise<void> {
    const missing = flags.filter((f) => !row.flags.includes(f));
    if (missing.length === 0) return;
    const change = await this.mail.store.transaction((tx) => tx.setFlags(folder.id, row.uid, [...row.flags, ...missing]));
    if (change) this.notifier.publish({ kind: 'flags', mailboxId: mailbox.id, folderId: folder.id, uid: change.uid, modseq: change.modseq, flags: change.flags });
  }

  /** Moves one message to another web folder of the same mailbox; returns its new UID, or null when it is gone. */
  async move(mailbox: MailboxRow, from: FolderRow, uid: number, to: FolderRow, audit: (tx: StoreTx) => Promise<void>): Promise<number | null> {
    const result = await this.mail.store.transaction(async (tx) => {
      const copied = await tx.copyMessages(from.id, [uid], to.id);
      const copy = copied.copies[0];
      if (!copy) return null;
      const removed = await tx.expunge(from.id, [uid]);
      await audit(tx);
      return { copy, removed };
    });
    if (!result) return null;
    this.notifier.publish({ kind: 'exists', mailboxId: mailbox.id, folderId: to.id, uid: result.copy.uid, modseq: result.copy.modseq });
    for (const r of result.removed) this.notifier.publish({ kind: 'expunge', mailboxId: mailbox.id, folderId: from.id, uid: r.uid, modseq: r.modseq });
    return result.copy.uid;
  }
}
