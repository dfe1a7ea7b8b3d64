import { randomBytes } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import MailComposer from 'nodemailer/lib/mail-composer';
import { appendAudit } from '../audit/journal.js';
import { buildMdn } from '../mime/mdn.js';
import type { Pipeline } from '../pipeline/index.js';
import type { Accepted, Submission } from '../pipeline/types.js';
import type { SealedMail } from '../store/sealed-mail.js';
import type { MailboxRow, Notifier } from '../store/types.js';
import type { FormFile } from './http-io.js';
import type { OpenedMessage } from './mail-reader.js';

/**
 * What the webmail sends: messages built with nodemailer's MailComposer and read receipts built by
 * src/mime/mdn.ts, both handed to `Pipeline.submit` on the `webmail` channel (the pipeline applies every rule,
 * the patient ones included), then a copy kept in the sender's Sent folder.
 */

export interface Draft {
  to: string[];
  subject: string;
  text: string;
  attachments: FormFile[];
  /** The message answered: threading headers come from it, never from the form. */
  original: OpenedMessage | null;
  /** Disposition-Notification-To: the sender's own address. */
  requestReceipt: boolean;
  /** `X-MSS-MES: FIN`: the patient may no longer reply in this conversation. */
  closeThread: boolean;
}

export interface Connection {
  remote: string;
  tls: TLSSocket | null;
}

/** Display name of the program in Received and Reporting-UA. */
const PRODUCT = 'mss-webmail';

export async function composeMessage(from: MailboxRow, draft: Draft, hostname: string): Promise<Buffer> {
  const thread = draft.original?.meta.thread;
  const references = thread ? [...thread.references, ...(thread.messageId ? [thread.messageId] : [])] : [];
  const headers: Record<string, string> = {};
  if (draft.closeThread) headers['X-MSS-MES'] = 'FIN';
  const composer = new MailComposer({
    from: from.displayName ? { name: from.displayName, address: from.address } : from.address,
    to: draft.to,
    subject: draft.subject,
    text: draft.text,
    messageId: `<${randomBytes(16).toString('hex')}@${hostname}>`,
    date: new Date(),
    ...(thread?.messageId ? { inReplyTo: thread.messageId, references } : {}),
    ...(draft.requestReceipt ? { headers: { ...headers, 'Disposition-Notification-To': from.address } } : { headers }),
    attachments: draft.attachments.map((f) => ({ filename: f.name || 'piece-jointe', contentType: f.type, content: f.content })),
  });
  return composer.compile().build();
}

export class Outgoing {
  constructor(
    private readonly deps: { pipeline: Pipeline; mail: SealedMail; notifier: Notifier; hostname: string },
  ) {}

  /** Submits through the pipeline (throws its `Refusal`), then files a copy in Sent and audits the send. */
  async send(sender: MailboxRow, rcptTo: string[], raw: Buffer, via: Connection, kind: 'message' | 'receipt'): Promise<Accepted> {
    const cipher = via.tls?.getCipher();
    const submission: Submission = {
      channel: 'webmail',
      sessionId: randomBytes(8).toString('hex'),
      remoteAddress: via.remote,
      clientName: PRODUCT,
      protocol: 'HTTPS',
      tls: via.tls && cipher ? { protocol: via.tls.getProtocol() ?? 'TLS', cipher: cipher.name } : null,
      sender,
      envelope: { mailFrom: sender.address, rcptTo },
      raw,
      receivedAt: new Date(),
    };
    const accepted = await this.deps.pipeline.submit(submission);
    const { mail, notifier } = this.deps;
    const filed = await mail.store.transaction(async (tx) => {
      const sent = kind === 'message' ? await tx.getFolder(sender.id, 'Sent') : null;
      const appended = sent ? await mail.append(tx, sender, sent, raw, { flags: ['\\Seen'] }) : null;
      await appendAudit(tx, {
        actor: sender.address,
        action: 'submit',
        object: accepted.queueId,
        outcome: 'ok',
        detail: { channel: 'webmail', kind, recipients: rcptTo.length },
      });
      return appended;
    });
    if (filed) notifier.publish({ kind: 'exists', mailboxId: sender.id, folderId: filed.folderId, uid: filed.uid, modseq: filed.modseq });
    return accepted;
  }

  /** A read receipt the person chose to send (`manual-action/MDN-sent-manually; displayed`). */
  buildReceipt(reader: MailboxRow, original: OpenedMessage): { raw: Buffer; to: string } | null {
    const notifyTo = original.view.receipt.notifyTo;
    if (!original.view.receipt.requested || !notifyTo || original.view.receipt.reason === 'is-report') return null;
    const mdn = buildMdn({
      original: original.raw,
      from: reader.address,
      to: notifyTo,
      finalRecipient: reader.address,
      originalRecipient: original.view.receipt.originalRecipient,
      reportingUa: { name: this.deps.hostname, product: PRODUCT },
      disposition: 'displayed',
      manual: true,
      returnContent: 'headers',
    });
    return { raw: mdn.raw, to: notifyTo };
  }
}
