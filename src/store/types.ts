import type { BlobBody, BlobSweep, BlobSweepOptions } from './blobs.js';
import type { PatientReads, PatientWrites } from './patients.js';

/**
 * The one port between the server and its database. Engines (SQLite now, PostgreSQL next) implement it;
 * nothing outside `src/store/` writes SQL.
 *
 * Content is opaque to the store: message bodies and everything derived from headers or content arrive
 * already sealed (`src/crypto/seal.ts`; bodies in the segmented format of `src/crypto/seal-stream.ts`, streamed
 * in and out as pieces). Only what IMAP needs to count and order is in clear: UIDs, MODSEQs, flags, sizes,
 * dates, folder names.
 *
 * The interface is asynchronous even where the engine is not, and writes happen only inside an explicit
 * unit of work (`transaction`), so a second engine fits without touching callers.
 */

export const MAILBOX_TYPES = ['PER', 'ORG', 'APP', 'CAB', 'PATIENT'] as const;
export type MailboxType = (typeof MAILBOX_TYPES)[number];

export const MAILBOX_STATES = ['active', 'pending', 'disabled'] as const;
export type MailboxState = (typeof MAILBOX_STATES)[number];

export interface MailboxRow {
  id: number;
  address: string; // lower-case
  type: MailboxType;
  ownerId: string | null; // national identifier (idNat_PS, idNat_Struct, INS)
  displayName: string | null;
  passwordHash: string | null;
  state: MailboxState;
  wrappedKey: Buffer; // the mailbox data key, sealed by the master key
  createdAt: number; // ms since epoch
}

export interface NewMailbox {
  address: string;
  type: MailboxType;
  ownerId: string | null;
  displayName: string | null;
  passwordHash: string | null;
  state: MailboxState;
  wrappedKey: Buffer;
}

export interface FolderRow {
  id: number;
  mailboxId: number;
  name: string; // IMAP name, '/' delimiter, 'INBOX' canonical
  uidValidity: number;
  uidNext: number;
  highestModseq: number;
  specialUse: string | null; // '\Sent', '\Drafts', '\Trash', '\Junk', '\Archive'
  subscribed: boolean;
}

export interface NewFolder {
  mailboxId: number;
  name: string;
  specialUse: string | null;
  subscribed: boolean;
}

/** What IMAP needs to count and order a folder's messages: all in clear. */
export interface MessageSummary {
  id: number;
  uid: number;
  modseq: number;
  flags: string[]; // system flags (\Seen...) and keywords
  internalDate: number; // ms since epoch
  size: number; // RFC822.SIZE in bytes
  blobId: number; // the sealed message, shared by its copies; never changes for a row
}

export interface FolderStats {
  messages: number;
  unseen: number;
  deleted: number;
  bytes: number;
}

export interface MessageRow extends MessageSummary {
  mailboxId: number;
  folderId: number;
  sealedMeta: Buffer; // envelope, MIME structure with offsets, thread headers
}

export interface NewMessage {
  blobId: number;
  sealedMeta: Buffer;
  flags: string[];
  internalDate: number;
  size: number;
}

export interface AppendedMessage {
  id: number;
  uid: number;
  modseq: number;
  uidValidity: number;
}

export interface FlagChange {
  uid: number;
  modseq: number;
  flags: string[];
}

/** A message removed from a folder: its UID and the MODSEQ given to its removal. */
export interface ExpungedMessage {
  uid: number;
  modseq: number;
}

export interface MailboxUsage {
  messages: number;
  /** Sum of the messages' RFC822.SIZE. */
  bytes: number;
}

/**
 * A message content's entry in the keyed blind index of SEARCH (docs/decisions/0010-search-blind-index.md), opaque
 * to the store: kept per blob, so the copies of a message share it, and removed with the blob.
 */
export interface SearchIndexEntry {
  /**
   * A Bloom filter of keyed terms: a probe p (a 48-bit integer) is in it when bit i = p mod (8 × length) is set,
   * bit i being `1 << (i % 8)` of byte ⌊i / 8⌋ (PostgreSQL's get_bit order).
   */
  filter: Buffer;
  /** Bits of the scopes left out of the filter (too large to index): the message stays a candidate for them. */
  unindexed: number;
}

/** A message whose content is not wholly in the index: `unindexed` is null when it has no entry at all. */
export interface UnindexedMessage {
  uid: number;
  unindexed: number | null;
}

/** What `searchIndex` found: per query the UIDs whose entry has its probes; the messages the index does not wholly cover. */
export interface IndexScan {
  matches: number[][];
  partial: UnindexedMessage[];
}

export interface CopiedMessages {
  /** UIDVALIDITY of the destination folder. */
  uidValidity: number;
  /** In source UID order; source UIDs that do not exist are skipped. */
  copies: { sourceUid: number; uid: number; modseq: number }[];
}

export const AUDIT_ACTIONS = [
  'login',
  'login-failed',
  'submit',
  'deliver',
  'refuse',
  'read',
  'delete',
  'flag',
  'mailbox-create',
  'mailbox-passwd',
  'folder-create',
  'folder-delete',
  'folder-rename',
  'copy',
  'move',
  'init',
  'directory-import',
  'sender-warning',
  'key-add',
  'key-revoke',
  'trust-import',
  'enqueue',
  'relay',
  'bounce',
  'queue-retry',
  'queue-delete',
  'relay-accept',
  'mdn',
  'mdn-missing',
  'patient-activation-code',
  'patient-activate',
  'patient-oppose',
  'patient-purge',
  'patient-totp',
  'document-save',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditRow {
  seq: number;
  time: string; // ISO 8601
  actor: string;
  action: AuditAction;
  object: string;
  outcome: string;
  detail: string; // canonical JSON object; never message content
  prevHash: string; // hex
  hash: string; // hex
}

/** A record before it is linked into the chain (it gets its `seq` and hashes then). */
export type NewAuditRecord = Omit<AuditRow, 'seq' | 'prevHash' | 'hash'>;

export interface AuthFailureState {
  failures: number;
  lockedUntil: number; // ms since epoch, 0 when not locked
}

/**
 * An outbound item (a message for a remote operator), sealed before it reaches the store. A worker claims due
 * items for a lease; an item whose lease expires (its worker died) is claimable again.
 */
export interface NewQueueItem {
  id: string;
  destination: string; // the remote domain or operator
  sealedEnvelope: Buffer;
  sealedMessage: Buffer;
  nextAttemptAt: number; // ms since epoch
}

export interface QueueItem extends NewQueueItem {
  /** Claims so far, this one included. */
  attempts: number;
  leaseOwner: string | null;
  leaseUntil: number | null; // ms since epoch
  createdAt: number;
}

/**
 * One remote recipient of an outbound message whose sender asked for MDNs (src/queue/mdn-tracker.ts): the sending
 * side waits for its processed MDN (and its dispatched one, when asked) until `deadline`. Only the owning mailbox,
 * times and a keyed hash are in clear; the Message-ID, the recipient and the original's header are sealed.
 */
export interface NewMdnTracking {
  mailboxId: number;
  /** Keyed hash of (Message-ID, recipient) under a key of the mailbox: how an arriving MDN finds its entry. */
  trackKey: string;
  deadline: number; // ms since epoch
  wantDispatched: boolean;
  createdAt: number;
  sealedDetails: Buffer;
}

export interface MdnTrackingRow extends NewMdnTracking {
  id: number;
  /** When the processed MDN arrived while a dispatched one is still awaited; null before. */
  processedAt: number | null;
}

/** What an arriving MDN settles: `processed` (a dispatched one may still be awaited) or `final` (dispatched, or a failure). */
export type MdnArrival = 'processed' | 'final';

export interface StoreReads extends PatientReads {
  getMailbox(address: string): Promise<MailboxRow | null>;
  getMailboxById(id: number): Promise<MailboxRow | null>;
  listMailboxes(): Promise<MailboxRow[]>;

  listFolders(mailboxId: number): Promise<FolderRow[]>;
  /** Exact name; callers canonicalise INBOX. */
  getFolder(mailboxId: number, name: string): Promise<FolderRow | null>;
  getFolderById(id: number): Promise<FolderRow | null>;

  /** In UID order. */
  listMessages(folderId: number): Promise<MessageSummary[]>;
  /**
   * How many messages the folder holds, how many lack `\Seen`, how many have `\Deleted`, and their total size:
   * counted by the database (IMAP STATUS, the webmail's folder counts), without listing the messages.
   */
  folderStats(folderId: number): Promise<FolderStats>;
  /** The messages with a UID above `afterUid`, in UID order (new mail, without re-listing the folder). */
  listMessagesSince(folderId: number, afterUid: number): Promise<MessageSummary[]>;
  /** Full rows for the given UIDs, in UID order; unknown UIDs are skipped. */
  getMessages(folderId: number, uids: number[]): Promise<MessageRow[]>;
  /**
   * UIDs expunged from the folder by `expunge` with a MODSEQ above `sinceModseq` (QRESYNC's VANISHED), in UID
   * order: those above `afterUid`, at most `limit` (a page; the next one starts after the last UID returned).
   * Messages that went with a deleted folder leave no trace.
   */
  listExpunged(folderId: number, sinceModseq: number, afterUid: number, limit: number): Promise<number[]>;
  /**
   * How many messages the mailbox holds in all its folders and the sum of their sizes (QUOTA). Inside a unit of
   * work, PostgreSQL first locks the mailbox row, so quota checks of one mailbox are serialised until the commit
   * (SQLite units of work are serialised already).
   */
  mailboxUsage(mailboxId: number): Promise<MailboxUsage>;
  /**
   * The sealed bytes of a blob, read piece by piece (at most `BLOB_CHUNK` bytes each) as the consumer asks,
   * never whole; null when there is no such blob. Iterating fails (`BlobMissingError`) if the blob is removed
   * while it is being read.
   */
  readBlob(blobId: number): Promise<AsyncIterable<Buffer> | null>;

  /**
   * One pass over the folder's index entries (not its messages): for each query (probes, at least one), the UIDs,
   * ascending, of the messages whose entry has every probe of the query; and the messages without an entry, or
   * whose entry left scopes out, in UID order. The probes are tested in the engine: no filter leaves it.
   */
  searchIndex(folderId: number, queries: readonly (readonly number[])[]): Promise<IndexScan>;

  /**
   * Records with seq > afterSeq, in order, at most `limit`. Read through the `Store` (not inside a unit of
   * work), every record committed before the call is already linked and visible.
   */
  readAudit(afterSeq: number, limit: number): Promise<AuditRow[]>;

  getAuthFailures(key: string): Promise<AuthFailureState>;

  getQueueItem(id: string): Promise<QueueItem | null>;
  /** Items still in the queue (claimed or not). */
  queueLength(): Promise<number>;
  /** Queue items (claimed or not), oldest first, at most `limit` (`mss queue list`; src/store/<engine>/queue-admin.ts). */
  listQueue(limit: number): Promise<QueueItem[]>;

  /** Whether a peer operator's idempotency key was accepted already (the relay's early look; `recordRelayKey` decides). */
  relayKeyAccepted(peerDomain: string, key: string): Promise<boolean>;
}

export interface StoreTx extends StoreReads, PatientWrites {
  insertMailbox(mailbox: NewMailbox): Promise<MailboxRow>;
  updateMailbox(id: number, change: { passwordHash?: string | null; state?: MailboxState; displayName?: string | null }): Promise<void>;

  insertFolder(folder: NewFolder): Promise<FolderRow>;
  /**
   * Renames one folder (not its inferiors: callers rename each). It keeps its id, UIDs and UIDVALIDITY.
   * Throws when another folder of the mailbox already has the name.
   */
  renameFolder(folderId: number, name: string): Promise<FolderRow>;
  /**
   * Deletes a folder with its messages (and the blobs no other message uses); returns the messages removed,
   * each with a MODSEQ above the folder's last one (for the expunge events of sessions that had it open).
   */
  deleteFolder(folderId: number): Promise<ExpungedMessage[]>;
  setSubscribed(folderId: number, subscribed: boolean): Promise<void>;

  /**
   * Stores sealed bytes, read from `body` one piece at a time, where `store.blobs.location` says: chunk rows, or
   * a file of the blob directory made durable before this returns (so before the commit). A file whose unit of
   * work rolls back is removed. The blob must be referenced by a message in the same unit of work: a blob no
   * message refers to is dropped by `Store.sweepBlobs`.
   */
  insertBlob(mailboxId: number, body: BlobBody): Promise<number>;
  /** Allocates the next UID and MODSEQ of the folder. */
  appendMessage(folderId: number, message: NewMessage): Promise<AppendedMessage>;
  /**
   * `insertBlob` then `appendMessage` as one step, into a folder named by id, or by exact name in the mailbox
   * when the caller has not read its row (INBOX at delivery). PostgreSQL makes it one statement when the body is
   * one chunk kept in the database: the hot path of delivery, where round trips are the cost.
   */
  appendMessageWithBody(
    mailboxId: number,
    folder: number | string,
    body: BlobBody,
    message: Omit<NewMessage, 'blobId'>,
    /** The message's SEARCH index entry, written in the same step (`indexMessage`). */
    search?: SearchIndexEntry,
  ): Promise<AppendedMessage & { folderId: number }>;
  /** Records the index entry of a message's content (its copies share it); nothing when the content has one. */
  indexMessage(messageId: number, entry: SearchIndexEntry): Promise<void>;
  /**
   * Replaces the flags of one message and gives it a new MODSEQ; null if the UID does not exist, or if its
   * MODSEQ is above `unchangedSince` (CONDSTORE: changed since the client last saw it).
   */
  setFlags(folderId: number, uid: number, flags: string[], unchangedSince?: number): Promise<FlagChange | null>;
  /**
   * Removes the given messages (unknown UIDs are skipped) and the blobs no other message uses; each removal
   * gets a new MODSEQ (raising the folder's highest MODSEQ), recorded with its UID for `listExpunged`. UIDs are
   * never handed out again.
   */
  expunge(folderId: number, uids: number[]): Promise<ExpungedMessage[]>;
  /**
   * Copies messages into another folder of the same mailbox with new UIDs and MODSEQs, keeping flags and
   * internal date. The sealed body and metadata are shared as they are (same mailbox, same data key);
   * folders of different mailboxes are refused, since re-sealing needs keys the store does not hold.
   */
  copyMessages(fromFolderId: number, uids: number[], toFolderId: number): Promise<CopiedMessages>;

  /**
   * Adds records, in order, to the single audit chain; they commit or roll back with the unit of work.
   * SQLite (whose units of work are serialised) links them at once. PostgreSQL stages them without a lock
   * and links them into the chain just after the commit (docs/decisions/0004-postgresql-engine.md), so
   * writers in every process do not queue on the chain.
   */
  appendAudit(records: readonly NewAuditRecord[]): Promise<void>;

  recordAuthFailure(key: string, now: number, maxFailures: number, lockoutMs: number): Promise<AuthFailureState>;
  clearAuthFailures(key: string): Promise<void>;

  /** Adds an item inside the caller's unit of work (committed with the submission it comes from). */
  enqueue(item: NewQueueItem): Promise<void>;
  /**
   * Claims up to `limit` due items (next attempt reached, no live lease) for `workerId` until `now + leaseMs`,
   * counting an attempt for each; oldest due first. Concurrent claimers, in any number of processes, never
   * claim the same item while its lease lives. Commit the unit of work before delivering.
   */
  claimDue(workerId: string, limit: number, leaseMs: number, now?: number): Promise<QueueItem[]>;
  /** Removes a delivered item; false when `workerId` no longer holds its lease (it expired and was reclaimed). */
  completeQueueItem(id: string, workerId: string): Promise<boolean>;
  /** Extends `workerId`'s lease (a delivery still in progress); false when it no longer holds the lease. */
  renewQueueLease(id: string, workerId: string, leaseUntil: number): Promise<boolean>;
  /** Gives the item back for another attempt at `nextAttemptAt`; false when `workerId` no longer holds its lease. */
  releaseQueueItem(id: string, workerId: string, nextAttemptAt: number): Promise<boolean>;
  /** Replaces an item's sealed envelope (its delivery state travels in it); false when there is no such item. */
  updateQueueEnvelope(id: string, sealedEnvelope: Buffer): Promise<boolean>;
  /** Makes an item due at `nextAttemptAt`, leased or not (`mss queue retry`); false when there is no such item. */
  rescheduleQueueItem(id: string, nextAttemptAt: number): Promise<boolean>;
  /** Removes an item whoever holds its lease (`mss queue delete`); false when there is no such item. */
  deleteQueueItem(id: string): Promise<boolean>;

  /**
   * Records an idempotency key a peer operator sent (docs/decisions/0008-queue-delivery.md), in the unit of work
   * that delivers its message; false when the key was accepted before, and nothing is written. Two units of work
   * with the same key: the second waits for the first (PostgreSQL) and gets false once it commits.
   */
  recordRelayKey(peerDomain: string, key: string, acceptedAt: number): Promise<boolean>;
  /** Forgets at most `limit` keys accepted before `before` (ms since epoch); returns how many went. */
  pruneRelayKeys(before: number, limit: number): Promise<number>;

  /** Starts waiting for one recipient's MDN (src/store/<engine>/mdn-tracking.ts); false when the key is tracked already. */
  trackMdn(entry: NewMdnTracking): Promise<boolean>;
  /**
   * An MDN for a tracked message arrived in the mailbox: `final` settles the entry (it is removed), `processed` too
   * unless a dispatched MDN is awaited (then its arrival is noted). Null when nothing is tracked under the key.
   */
  recordMdn(mailboxId: number, trackKey: string, arrival: MdnArrival, at: number): Promise<'settled' | 'waiting' | null>;
  /** Entries whose deadline is reached, oldest first, at most `limit`, locked for this unit of work (others skip them). */
  claimOverdueMdn(now: number, limit: number): Promise<MdnTrackingRow[]>;
  /** Removes an entry (its failure notice is written in the same unit of work); false when it is gone already. */
  deleteMdnTracking(id: number): Promise<boolean>;
}

export interface Store extends StoreReads {
  readonly engine: 'sqlite' | 'postgres';
  /**
   * Runs `work` as one atomic, durable unit: committed when it resolves, rolled back when it throws. An engine
   * may run `work` again after rolling it back for a transient conflict (a PostgreSQL deadlock victim), so
   * `work` must have no effect outside the unit of work (publish events after it resolves).
   */
  transaction<T>(work: (tx: StoreTx) => Promise<T>): Promise<T>;
  /** Runs pending migrations; returns the schema version now in force. */
  migrate(): Promise<number>;
  /**
   * Removes blob rows no message refers to, then files of the blob directory older than the grace period that no
   * row names (a crash between writing a file and committing or removing it). Safe while the server runs.
   */
  sweepBlobs(options?: BlobSweepOptions): Promise<BlobSweep>;
  close(): Promise<void>;
}

/** A change other sessions must hear about (IMAP IDLE, NOOP, other processes later). */
export type MailboxEvent =
  | { kind: 'exists'; mailboxId: number; folderId: number; uid: number; modseq: number }
  | { kind: 'flags'; mailboxId: number; folderId: number; uid: number; modseq: number; flags: string[]; origin?: string }
  | { kind: 'expunge'; mailboxId: number; folderId: number; uid: number; modseq: number }
  /**
   * Changes to this mailbox may have been missed (a cross-process notifier lost its connection, or a
   * notification was too large to carry): listeners re-read the state of what they show.
   */
  | { kind: 'resync'; mailboxId: number };

export interface Notifier {
  /** Called after the change is committed. */
  publish(event: MailboxEvent): void;
  /** Returns the unsubscribe function. */
  subscribe(mailboxId: number, listener: (event: MailboxEvent) => void): () => void;
  close(): Promise<void>;
}
