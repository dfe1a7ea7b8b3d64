import type { MessageMeta } from '../mime/types.js';
import type { MailboxRow } from '../store/types.js';

/** What an ingress adapter (SMTP, webmail) hands to the pipeline. */
export interface Submission {
  /** SMTP submission, or the webmail (the only way a patient sends: replies, under the patient rules). */
  channel: 'submission' | 'webmail';
  sessionId: string;
  remoteAddress: string;
  /** The HELO/EHLO name the client gave. */
  clientName: string;
  /** e.g. 'ESMTPSA' (RFC 3848). */
  protocol: string;
  tls: { protocol: string; cipher: string } | null;
  sender: MailboxRow;
  envelope: { mailFrom: string; rcptTo: string[] };
  raw: Buffer;
  receivedAt: Date;
  /**
   * Routes the adapter already resolved for this transaction's recipients (SMTP: at each RCPT TO, moments
   * before), keyed by lower-case address; `submit` resolves the others itself.
   */
  routes?: ReadonlyMap<string, RecipientRoute>;
}

export type LocalRoute = { kind: 'local'; address: string; mailbox: MailboxRow };
/** A recipient at another operator of the trust space: queued for its domain (src/pipeline/outbound.ts). */
export type RemoteRoute = { kind: 'remote'; address: string; domain: string };
export type RecipientRoute = LocalRoute | RemoteRoute;

/** A submission after parsing: the pipeline's working value. */
export interface ParsedSubmission extends Submission {
  meta: MessageMeta;
  /** `raw` with the trace header prepended: what gets stored. */
  stored: Buffer;
}

export interface Delivered {
  address: string;
  mailboxId: number;
  folderId: number;
  uid: number;
  modseq: number;
}

export interface Accepted {
  queueId: string;
  delivered: Delivered[];
  /** Outbound queue items, one per remote destination domain, committed with the local copies. */
  queued?: { id: string; destination: string }[];
}
