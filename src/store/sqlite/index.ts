import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type {
  AppendedMessage,
  AuditRow,
  AuthFailureState,
  CopiedMessages,
  ExpungedMessage,
  FlagChange,
  FolderRow,
  FolderStats,
  MailboxRow,
  MailboxState,
  MailboxUsage,
  MdnArrival,
  MdnTrackingRow,
  MessageRow,
  MessageSummary,
  NewAuditRecord,
  NewFolder,
  NewMailbox,
  NewMdnTracking,
  NewMessage,
  NewQueueItem,
  QueueItem,
  SearchIndexEntry,
  Store,
  StoreReads,
  StoreTx,
  IndexScan,
} from '../types.js';
import { linkRecords } from '../../audit/chain.js';
import {
  BlobChanges,
  BlobFiles,
  DEFAULT_BLOB_OPTIONS,
  DEFAULT_SWEEP_GRACE_MS,
  readChunks,
  rechunk,
  sweepFiles,
  type BlobBody,
  type BlobOptions,
  type BlobSweep,
  type BlobSweepOptions,
} from '../blobs.js';
import { migrations } from './migrations.js';
import { WalSync } from './wal-sync.js';
import * as queueAdmin from './queue-admin.js';
import * as mdnTracking from './mdn-tracking.js';
import * as relayKeys from './relay-keys.js';
import type { NewPatientAccount, PatientAccountChange, PatientAccountRow, PatientThreadMessageRow, PatientThreadRow } from '../patient-types.js';
import * as patients from './patients.js';
import * as searchIndex from './search-index.js';
import { FOLDER_LISTING, FOLDER_LISTING_SINCE, readBytes, readInt, readTextOrNull, toAudit, toFolder, toMailbox, toMessage, toQueueItem, toSummaryValues } from './rows.js';

type Db = Database.Database;
type Raw = Record<string, unknown>;

/**
 * The embedded engine: better-sqlite3 in WAL mode, a committed unit of work on disk (fdatasync of the WAL, off
 * the event loop: `WalSync`) before `transaction()` resolves — the basis of "durable before 250".
 *
 * Two connections: one writer, for units of work (serialised by an async lock, because a unit of work may
 * await between statements), and one reader, which sees only committed data. Reads outside units of work go to
 * the writer while no unit of work holds it: SQLite drops a connection's whole page cache when another
 * connection has committed since its last read, so the reader, behind every write, would read each page again
 * from the file; the writer keeps its cache across its own commits. While a unit of work is open, they go to
 * the reader, which does not see it.
 */
class SqliteReads implements StoreReads {
  readonly #db: Db;

  constructor(
    db: Db,
    protected readonly files: BlobFiles,
  ) {
    this.#db = db;
  }

  /** The connection this object's reads use now. */
  protected get db(): Db {
    return this.#db;
  }

  protected one(sql: string, ...params: unknown[]): Raw | undefined {
    return this.db.prepare(sql).get(...params) as Raw | undefined;
  }

  protected all(sql: string, ...params: unknown[]): Raw[] {
    return this.db.prepare(sql).all(...params) as Raw[];
  }

  /** Summary rows read as arrays: a 100,000-message folder without 100,000 intermediate objects. */
  #summaries(sql: string, ...params: unknown[]): MessageSummary[] {
    return (this.db.prepare(sql).raw(true).all(...params) as unknown[][]).map(toSummaryValues);
  }

  async getMailbox(address: string): Promise<MailboxRow | null> {
    const row = this.one('SELECT * FROM mailboxes WHERE address = ?', address.toLowerCase());
    return row ? toMailbox(row) : null;
  }

  async getMailboxById(id: number): Promise<MailboxRow | null> {
    const row = this.one('SELECT * FROM mailboxes WHERE id = ?', id);
    return row ? toMailbox(row) : null;
  }

  async listMailboxes(): Promise<MailboxRow[]> {
    return this.all('SELECT * FROM mailboxes ORDER BY address').map(toMailbox);
  }

  async listFolders(mailboxId: number): Promise<FolderRow[]> {
    return this.all('SELECT * FROM folders WHERE mailbox_id = ? ORDER BY name', mailboxId).map(toFolder);
  }

  async getFolder(mailboxId: number, name: string): Promise<FolderRow | null> {
    const row = this.one('SELECT * FROM folders WHERE mailbox_id = ? AND name = ?', mailboxId, name);
    return row ? toFolder(row) : null;
  }

  async getFolderById(id: number): Promise<FolderRow | null> {
    const row = this.one('SELECT * FROM folders WHERE id = ?', id);
    return row ? toFolder(row) : null;
  }

  async listMessages(folderId: number): Promise<MessageSummary[]> {
    return this.#summaries(FOLDER_LISTING, folderId);
  }

  async folderStats(folderId: number): Promise<FolderStats> {
    const row = this.one(
      `SELECT count(*) AS messages, coalesce(sum(size), 0) AS bytes,
              coalesce(sum(NOT EXISTS (SELECT 1 FROM json_each(m.flags) WHERE value = '\\Seen')), 0) AS unseen,
              coalesce(sum(EXISTS (SELECT 1 FROM json_each(m.flags) WHERE value = '\\Deleted')), 0) AS deleted
         FROM messages m WHERE folder_id = ?`,
      folderId,
    )!;
    return { messages: readInt(row, 'messages'), unseen: readInt(row, 'unseen'), deleted: readInt(row, 'deleted'), bytes: readInt(row, 'bytes') };
  }

  async listMessagesSince(folderId: number, afterUid: number): Promise<MessageSummary[]> {
    return this.#summaries(FOLDER_LISTING_SINCE, folderId, afterUid);
  }

  async getMessages(folderId: number, uids: number[]): Promise<MessageRow[]> {
    const out: MessageRow[] = [];
    const stmt = this.db.prepare('SELECT * FROM messages WHERE folder_id = ? AND uid = ?');
    for (const uid of [...new Set(uids)].sort((a, b) => a - b)) {
      const row = stmt.get(folderId, uid) as Raw | undefined;
      if (row) out.push(toMessage(row));
    }
    return out;
  }

  async listExpunged(folderId: number, sinceModseq: number, afterUid: number, limit: number): Promise<number[]> {
    return this.all(
      'SELECT uid FROM expunged_messages WHERE folder_id = ? AND modseq > ? AND uid > ? ORDER BY uid LIMIT ?',
      folderId,
      sinceModseq,
      afterUid,
      limit,
    ).map((r) => readInt(r, 'uid'));
  }

  async mailboxUsage(mailboxId: number): Promise<MailboxUsage> {
    const row = this.one(
      'SELECT count(*) AS n, coalesce(sum(m.size), 0) AS bytes FROM folders f JOIN messages m ON m.folder_id = f.id WHERE f.mailbox_id = ?',
      mailboxId,
    )!;
    return { messages: readInt(row, 'n'), bytes: readInt(row, 'bytes') };
  }

  async readBlob(blobId: number): Promise<AsyncIterable<Buffer> | null> {
    const row = this.one('SELECT size, file FROM blobs WHERE id = ?', blobId);
    if (!row) return null;
    const size = readInt(row, 'size');
    const file = readTextOrNull(row, 'file');
    if (file !== null) return this.files.read(file, size);
    // The connection is chosen again for each batch: a unit of work may have begun on the writer meanwhile.
    return readChunks(blobId, size, async (fromSeq, limit) =>
      this.all('SELECT seq, data FROM blob_chunks WHERE blob_id = ? AND seq >= ? ORDER BY seq LIMIT ?', blobId, fromSeq, limit).map((r) => ({
        seq: readInt(r, 'seq'),
        data: readBytes(r, 'data'),
      })),
    );
  }

  async searchIndex(folderId: number, queries: readonly (readonly number[])[]): Promise<IndexScan> {
    return searchIndex.searchIndex(this.db, folderId, queries);
  }

  async readAudit(afterSeq: number, limit: number): Promise<AuditRow[]> {
    return this.all('SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?', afterSeq, limit).map(toAudit);
  }

  async getAuthFailures(key: string): Promise<AuthFailureState> {
    const row = this.one('SELECT failures, locked_until FROM auth_failures WHERE key = ?', key);
    return row ? { failures: readInt(row, 'failures'), lockedUntil: readInt(row, 'locked_until') } : { failures: 0, lockedUntil: 0 };
  }

  async getQueueItem(id: string): Promise<QueueItem | null> {
    const row = this.one('SELECT * FROM queue WHERE id = ?', id);
    return row ? toQueueItem(row) : null;
  }

  async queueLength(): Promise<number> {
    return readInt(this.one("SELECT count(*) AS n FROM queue WHERE state = 'queued'")!, 'n');
  }

  async listQueue(limit: number): Promise<QueueItem[]> {
    return queueAdmin.listQueue(this.db, limit);
  }

  async relayKeyAccepted(peerDomain: string, key: string): Promise<boolean> {
    return relayKeys.relayKeyAccepted(this.db, peerDomain, key);
  }

  async getPatientAccount(mailboxId: number): Promise<PatientAccountRow | null> {
    return patients.getPatientAccount(this.db, mailboxId);
  }

  async getPatientThread(mailboxId: number, threadKey: string): Promise<PatientThreadRow | null> {
    return patients.getPatientThread(this.db, mailboxId, threadKey);
  }

  async getPatientThreadMessages(mailboxId: number, messageKeys: readonly string[]): Promise<PatientThreadMessageRow[]> {
    return patients.getPatientThreadMessages(this.db, mailboxId, messageKeys);
  }

  async listPatientsToPurge(now: number, limit: number): Promise<PatientAccountRow[]> {
    return patients.listPatientsToPurge(this.db, now, limit);
  }
}

class SqliteTx extends SqliteReads implements StoreTx {
  /** Blob files this unit of work wrote or dropped, settled after its commit or rollback. */
  readonly blobChanges = new BlobChanges();

  constructor(
    db: Db,
    files: BlobFiles,
    private readonly blobLocation: BlobOptions['location'],
  ) {
    super(db, files);
  }

  async insertMailbox(m: NewMailbox): Promise<MailboxRow> {
    const info = this.db
      .prepare(
        `INSERT INTO mailboxes (address, type, owner_id, display_name, password_hash, state, wrapped_key, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(m.address.toLowerCase(), m.type, m.ownerId, m.displayName, m.passwordHash, m.state, m.wrappedKey, Date.now());
    return toMailbox(this.one('SELECT * FROM mailboxes WHERE id = ?', info.lastInsertRowid)!);
  }

  async updateMailbox(
    id: number,
    change: { passwordHash?: string | null; state?: MailboxState; displayName?: string | null },
  ): Promise<void> {
    const columns = { password_hash: change.passwordHash, state: change.state, display_name: change.displayName };
    for (const [column, value] of Object.entries(columns)) {
      if (value !== undefined) this.db.prepare(`UPDATE mailboxes SET ${column} = ? WHERE id = ?`).run(value, id);
    }
  }

  async insertFolder(f: NewFolder): Promise<FolderRow> {
    // UIDVALIDITY must change if a folder of the same name is ever re-created: the clock in seconds, but
    // always above every value handed out before (a counter that survives folder deletion).
    const last = readInt(this.one('SELECT last FROM uid_validity_counter WHERE id = 1')!, 'last');
    const next = Math.max(Math.floor(Date.now() / 1000), last + 1);
    const uidValidity = next > 0xffffffff ? 1 : next;
    this.db.prepare('UPDATE uid_validity_counter SET last = ? WHERE id = 1').run(uidValidity);
    const info = this.db
      .prepare('INSERT INTO folders (mailbox_id, name, uid_validity, special_use, subscribed) VALUES (?, ?, ?, ?, ?)')
      .run(f.mailboxId, f.name, uidValidity, f.specialUse, f.subscribed ? 1 : 0);
    return toFolder(this.one('SELECT * FROM folders WHERE id = ?', info.lastInsertRowid)!);
  }

  async renameFolder(folderId: number, name: string): Promise<FolderRow> {
    const info = this.db.prepare('UPDATE folders SET name = ? WHERE id = ?').run(name, folderId);
    if (info.changes === 0) throw new Error(`no folder ${folderId}`);
    return toFolder(this.one('SELECT * FROM folders WHERE id = ?', folderId)!);
  }

  async deleteFolder(folderId: number): Promise<ExpungedMessage[]> {
    const folder = this.one('SELECT highest_modseq FROM folders WHERE id = ?', folderId);
    if (!folder) throw new Error(`no folder ${folderId}`);
    let modseq = readInt(folder, 'highest_modseq');
    const rows = this.all('SELECT uid, blob_id FROM messages WHERE folder_id = ? ORDER BY uid', folderId);
    this.db.prepare('DELETE FROM messages WHERE folder_id = ?').run(folderId);
    this.db.prepare('DELETE FROM folders WHERE id = ?').run(folderId);
    this.#dropUnusedBlobs(rows.map((r) => readInt(r, 'blob_id')));
    return rows.map((r) => ({ uid: readInt(r, 'uid'), modseq: ++modseq }));
  }

  async setSubscribed(folderId: number, subscribed: boolean): Promise<void> {
    this.db.prepare('UPDATE folders SET subscribed = ? WHERE id = ?').run(subscribed ? 1 : 0, folderId);
  }

  /** Deletes those of the given blobs that no message refers to any more (their chunks go with them). */
  #dropUnusedBlobs(blobIds: Iterable<number>): void {
    const drop = this.db.prepare('DELETE FROM blobs WHERE id = ? AND NOT EXISTS (SELECT 1 FROM messages WHERE blob_id = ?) RETURNING file');
    for (const id of new Set(blobIds)) this.#dropped(drop.all(id, id) as Raw[]);
  }

  #dropped(rows: Raw[]): void {
    for (const row of rows) {
      const file = readTextOrNull(row, 'file');
      if (file !== null) this.blobChanges.dropped.push(file);
    }
  }

  /** Deletes up to `limit` blobs no message refers to; returns how many. */
  sweepRows(limit: number): number {
    const rows = this.db
      .prepare('DELETE FROM blobs WHERE id IN (SELECT b.id FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = b.id) LIMIT ?) RETURNING file')
      .all(limit) as Raw[];
    this.#dropped(rows);
    return rows.length;
  }

  async insertBlob(mailboxId: number, body: BlobBody): Promise<number> {
    if (this.blobLocation === 'directory') {
      const { name, size } = await this.files.write(body);
      this.blobChanges.written.push(name);
      return Number(this.db.prepare('INSERT INTO blobs (mailbox_id, size, file) VALUES (?, ?, ?)').run(mailboxId, size, name).lastInsertRowid);
    }
    const id = Number(this.db.prepare('INSERT INTO blobs (mailbox_id, size) VALUES (?, 0)').run(mailboxId).lastInsertRowid);
    const insert = this.db.prepare('INSERT INTO blob_chunks (blob_id, seq, data) VALUES (?, ?, ?)');
    let seq = 0;
    let size = 0;
    for await (const chunk of rechunk(body)) {
      insert.run(id, seq++, chunk);
      size += chunk.length;
    }
    this.db.prepare('UPDATE blobs SET size = ? WHERE id = ?').run(size, id);
    return id;
  }

  async indexMessage(messageId: number, entry: SearchIndexEntry): Promise<void> {
    searchIndex.indexMessage(this.db, messageId, entry);
  }

  async appendMessage(folderId: number, m: NewMessage): Promise<AppendedMessage> {
    const folder = this.one('SELECT mailbox_id, uid_validity, uid_next, highest_modseq FROM folders WHERE id = ?', folderId);
    if (!folder) throw new Error(`no folder ${folderId}`);
    const uid = readInt(folder, 'uid_next');
    const modseq = readInt(folder, 'highest_modseq') + 1;
    this.db.prepare('UPDATE folders SET uid_next = ?, highest_modseq = ? WHERE id = ?').run(uid + 1, modseq, folderId);
    const info = this.db
      .prepare(
        `INSERT INTO messages (mailbox_id, folder_id, uid, modseq, flags, internal_date, size, blob_id, meta)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(readInt(folder, 'mailbox_id'), folderId, uid, modseq, JSON.stringify(m.flags), m.internalDate, m.size, m.blobId, m.sealedMeta);
    return { id: Number(info.lastInsertRowid), uid, modseq, uidValidity: readInt(folder, 'uid_validity') };
  }

  async appendMessageWithBody(
    mailboxId: number,
    folder: number | string,
    body: BlobBody,
    m: Omit<NewMessage, 'blobId'>,
    search?: SearchIndexEntry,
  ): Promise<AppendedMessage & { folderId: number }> {
    const folderId = typeof folder === 'number' ? folder : (await this.getFolder(mailboxId, folder))?.id;
    if (folderId === undefined) throw new Error(`mailbox ${mailboxId} has no folder ${folder}`);
    const blobId = await this.insertBlob(mailboxId, body);
    const appended = await this.appendMessage(folderId, { ...m, blobId });
    if (search) await this.indexMessage(appended.id, search);
    return { ...appended, folderId };
  }

  async setFlags(folderId: number, uid: number, flags: string[], unchangedSince?: number): Promise<FlagChange | null> {
    const current = this.one('SELECT modseq FROM messages WHERE folder_id = ? AND uid = ?', folderId, uid);
    if (!current || (unchangedSince !== undefined && readInt(current, 'modseq') > unchangedSince)) return null;
    const folder = this.one('SELECT highest_modseq FROM folders WHERE id = ?', folderId)!;
    const modseq = readInt(folder, 'highest_modseq') + 1;
    this.db.prepare('UPDATE folders SET highest_modseq = ? WHERE id = ?').run(modseq, folderId);
    this.db
      .prepare('UPDATE messages SET flags = ?, modseq = ? WHERE folder_id = ? AND uid = ?')
      .run(JSON.stringify(flags), modseq, folderId, uid);
    return { uid, modseq, flags };
  }

  async expunge(folderId: number, uids: number[]): Promise<ExpungedMessage[]> {
    const folder = this.one('SELECT highest_modseq FROM folders WHERE id = ?', folderId);
    if (!folder) throw new Error(`no folder ${folderId}`);
    let modseq = readInt(folder, 'highest_modseq');
    const find = this.db.prepare('SELECT id, blob_id FROM messages WHERE folder_id = ? AND uid = ?');
    const remove = this.db.prepare('DELETE FROM messages WHERE id = ?');
    const tombstone = this.db.prepare('INSERT INTO expunged_messages (folder_id, uid, modseq) VALUES (?, ?, ?)');
    const removed: ExpungedMessage[] = [];
    const blobIds: number[] = [];
    for (const uid of [...new Set(uids)].sort((a, b) => a - b)) {
      const row = find.get(folderId, uid) as Raw | undefined;
      if (!row) continue;
      remove.run(readInt(row, 'id'));
      blobIds.push(readInt(row, 'blob_id'));
      removed.push({ uid, modseq: ++modseq });
      tombstone.run(folderId, uid, modseq);
    }
    if (removed.length > 0) this.db.prepare('UPDATE folders SET highest_modseq = ? WHERE id = ?').run(modseq, folderId);
    this.#dropUnusedBlobs(blobIds);
    return removed;
  }

  async copyMessages(fromFolderId: number, uids: number[], toFolderId: number): Promise<CopiedMessages> {
    const from = this.one('SELECT mailbox_id FROM folders WHERE id = ?', fromFolderId);
    const to = this.one('SELECT mailbox_id, uid_validity, uid_next, highest_modseq FROM folders WHERE id = ?', toFolderId);
    if (!from) throw new Error(`no folder ${fromFolderId}`);
    if (!to) throw new Error(`no folder ${toFolderId}`);
    const mailboxId = readInt(to, 'mailbox_id');
    if (readInt(from, 'mailbox_id') !== mailboxId) throw new Error('messages can only be copied within one mailbox');
    let uid = readInt(to, 'uid_next');
    let modseq = readInt(to, 'highest_modseq');
    const find = this.db.prepare('SELECT flags, internal_date, size, blob_id, meta FROM messages WHERE folder_id = ? AND uid = ?');
    const insert = this.db.prepare(
      `INSERT INTO messages (mailbox_id, folder_id, uid, modseq, flags, internal_date, size, blob_id, meta)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const copies: CopiedMessages['copies'] = [];
    for (const sourceUid of [...new Set(uids)].sort((a, b) => a - b)) {
      const row = find.get(fromFolderId, sourceUid) as Raw | undefined;
      if (!row) continue;
      const copy = { sourceUid, uid: uid++, modseq: ++modseq };
      insert.run(mailboxId, toFolderId, copy.uid, copy.modseq, row.flags, row.internal_date, row.size, row.blob_id, row.meta);
      copies.push(copy);
    }
    if (copies.length > 0) this.db.prepare('UPDATE folders SET uid_next = ?, highest_modseq = ? WHERE id = ?').run(uid, modseq, toFolderId);
    return { uidValidity: readInt(to, 'uid_validity'), copies };
  }

  async appendAudit(records: readonly NewAuditRecord[]): Promise<void> {
    // Units of work are serialised (BEGIN IMMEDIATE and the writer lock): the last record cannot move.
    const last = this.one('SELECT * FROM audit ORDER BY seq DESC LIMIT 1');
    const rows = linkRecords(last ? toAudit(last) : null, records);
    const insert = this.db.prepare(
      `INSERT INTO audit (seq, time, actor, action, object, outcome, detail, prev_hash, hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const r of rows) insert.run(r.seq, r.time, r.actor, r.action, r.object, r.outcome, r.detail, r.prevHash, r.hash);
  }

  async recordAuthFailure(key: string, now: number, maxFailures: number, lockoutMs: number): Promise<AuthFailureState> {
    const current = await this.getAuthFailures(key);
    // A lockout that has expired starts a fresh count.
    const failures = (current.lockedUntil !== 0 && current.lockedUntil <= now ? 0 : current.failures) + 1;
    const lockedUntil = failures >= maxFailures ? now + lockoutMs : 0;
    this.db
      .prepare(
        `INSERT INTO auth_failures (key, failures, locked_until, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until, updated_at = excluded.updated_at`,
      )
      .run(key, failures, lockedUntil, now);
    return { failures, lockedUntil };
  }

  async clearAuthFailures(key: string): Promise<void> {
    this.db.prepare('DELETE FROM auth_failures WHERE key = ?').run(key);
  }

  async enqueue(item: NewQueueItem): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO queue (id, destination, next_attempt_at, created_at, sealed_envelope, sealed_message)
         VALUES (?, ?, ?, ?, ?, ?)`,
      )
      .run(item.id, item.destination, item.nextAttemptAt, Date.now(), item.sealedEnvelope, item.sealedMessage);
  }

  async claimDue(workerId: string, limit: number, leaseMs: number, now = Date.now()): Promise<QueueItem[]> {
    // Units of work are serialised (BEGIN IMMEDIATE takes the database's write lock, across processes too),
    // so choosing and leasing in one statement cannot race.
    return (
      this.db
        .prepare(
          `UPDATE queue SET lease_owner = ?, lease_until = ?, attempts = attempts + 1
            WHERE id IN (SELECT id FROM queue
                          WHERE state = 'queued' AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
                          ORDER BY next_attempt_at, id LIMIT ?)
           RETURNING *`,
        )
        .all(workerId, now + leaseMs, now, now, limit) as Raw[]
    )
      .map(toQueueItem)
      .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async completeQueueItem(id: string, workerId: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM queue WHERE id = ? AND lease_owner = ?').run(id, workerId).changes === 1;
  }

  async renewQueueLease(id: string, workerId: string, leaseUntil: number): Promise<boolean> {
    return this.db.prepare('UPDATE queue SET lease_until = ? WHERE id = ? AND lease_owner = ?').run(leaseUntil, id, workerId).changes === 1;
  }

  async releaseQueueItem(id: string, workerId: string, nextAttemptAt: number): Promise<boolean> {
    const info = this.db
      .prepare('UPDATE queue SET lease_owner = NULL, lease_until = NULL, next_attempt_at = ? WHERE id = ? AND lease_owner = ?')
      .run(nextAttemptAt, id, workerId);
    return info.changes === 1;
  }

  async recordRelayKey(peerDomain: string, key: string, acceptedAt: number): Promise<boolean> {
    return relayKeys.recordRelayKey(this.db, peerDomain, key, acceptedAt);
  }

  async pruneRelayKeys(before: number, limit: number): Promise<number> {
    return relayKeys.pruneRelayKeys(this.db, before, limit);
  }

  async trackMdn(entry: NewMdnTracking): Promise<boolean> {
    return mdnTracking.trackMdn(this.db, entry);
  }

  async recordMdn(mailboxId: number, trackKey: string, arrival: MdnArrival, at: number): Promise<'settled' | 'waiting' | null> {
    return mdnTracking.recordMdn(this.db, mailboxId, trackKey, arrival, at);
  }

  async claimOverdueMdn(now: number, limit: number): Promise<MdnTrackingRow[]> {
    return mdnTracking.claimOverdueMdn(this.db, now, limit);
  }

  async deleteMdnTracking(id: number): Promise<boolean> {
    return mdnTracking.deleteMdnTracking(this.db, id);
  }

  async insertPatientAccount(account: NewPatientAccount): Promise<boolean> {
    return patients.insertPatientAccount(this.db, account);
  }

  async updatePatientAccount(mailboxId: number, change: PatientAccountChange): Promise<boolean> {
    return patients.updatePatientAccount(this.db, mailboxId, change);
  }

  async acceptTotpStep(mailboxId: number, step: number): Promise<boolean> {
    return patients.acceptTotpStep(this.db, mailboxId, step);
  }

  async upsertPatientThread(mailboxId: number, threadKey: string, at: number, closedAt: number | null): Promise<void> {
    patients.upsertPatientThread(this.db, mailboxId, threadKey, at, closedAt);
  }

  async insertPatientThreadMessage(row: PatientThreadMessageRow): Promise<void> {
    patients.insertPatientThreadMessage(this.db, row);
  }

  async purgePatientData(mailboxId: number, at: number): Promise<void> {
    patients.purgePatientData(this.db, mailboxId, at);
  }

  async updateQueueEnvelope(id: string, sealedEnvelope: Buffer): Promise<boolean> {
    return queueAdmin.updateQueueEnvelope(this.db, id, sealedEnvelope);
  }

  async rescheduleQueueItem(id: string, nextAttemptAt: number): Promise<boolean> {
    return queueAdmin.rescheduleQueueItem(this.db, id, nextAttemptAt);
  }

  async deleteQueueItem(id: string): Promise<boolean> {
    return queueAdmin.deleteQueueItem(this.db, id);
  }
}

/** How long a unit of work waits for the write lock another process holds before it fails (SQLITE_BUSY). */
const WRITE_LOCK_TIMEOUT_MS = 5000;

/** A FIFO async lock: units of work on the writer connection run one at a time. */
class Lock {
  #tail: Promise<void> = Promise.resolve();

  async acquire(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((resolve) => (release = resolve));
    const previous = this.#tail;
    this.#tail = previous.then(() => next);
    await previous;
    return release;
  }
}

export class SqliteStore extends SqliteReads implements Store {
  readonly engine = 'sqlite' as const;
  readonly #writer: Db;
  readonly #blobs: BlobOptions;
  readonly #lock = new Lock();
  /** A unit of work (or another user of the writer) holds the lock: reads go to the reader. */
  #writerHeld = false;
  #closed = false;

  readonly #walSync: WalSync;

  /**
   * What every unit of work runs on the writer, prepared once (`pragma()` and `exec()` compile their text on each
   * call): the switches of the busy timeout around BEGIN IMMEDIATE, BEGIN IMMEDIATE and COMMIT.
   */
  readonly #control: { busyOff: Database.Statement; busyOn: Database.Statement; begin: Database.Statement; commit: Database.Statement };

  private constructor(reader: Db, writer: Db, blobs: BlobOptions, walSync: WalSync) {
    super(reader, new BlobFiles(blobs.directory));
    this.#writer = writer;
    this.#blobs = blobs;
    this.#walSync = walSync;
    this.#control = {
      busyOff: writer.prepare('PRAGMA busy_timeout = 0'),
      busyOn: writer.prepare(`PRAGMA busy_timeout = ${WRITE_LOCK_TIMEOUT_MS}`),
      begin: writer.prepare('BEGIN IMMEDIATE'),
      commit: writer.prepare('COMMIT'),
    };
  }

  static open(file: string, options: SqliteOptions = {}): SqliteStore {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const writer = new Database(file);
    writer.pragma('journal_mode = WAL');
    // Commits are made durable by `WalSync`, after the writer is released (SQLite's FULL would fsync in COMMIT,
    // with the event loop blocked).
    writer.pragma('synchronous = NORMAL');
    writer.pragma('foreign_keys = ON');
    writer.pragma(`busy_timeout = ${WRITE_LOCK_TIMEOUT_MS}`);
    const reader = new Database(file);
    reader.pragma('busy_timeout = 5000');
    reader.pragma('foreign_keys = ON');
    return new SqliteStore(cachingStatements(reader), cachingStatements(writer), options.blobs ?? DEFAULT_BLOB_OPTIONS, new WalSync(file));
  }

  protected override get db(): Db {
    return this.#writerHeld || this.#writer.inTransaction || this.#closed ? super.db : this.#writer;
  }

  transaction<T>(work: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.#unit(work);
  }

  async #holdWriter(): Promise<() => void> {
    const release = await this.#lock.acquire();
    this.#writerHeld = true;
    return () => {
      this.#writerHeld = false;
      release();
    };
  }

  /**
   * The connections, for the directory store (src/store/sqlite/directory.ts), which shares them: the reader, and
   * the writer only inside `withWriter`, under the unit-of-work lock.
   */
  directoryAccess(): { reader: Db; withWriter<T>(work: (writer: Db) => Promise<T>, options?: { durable?: boolean }): Promise<T> } {
    return {
      reader: super.db,
      withWriter: async <T>(work: (writer: Db) => Promise<T>, options?: { durable?: boolean }): Promise<T> => {
        const release = await this.#holdWriter();
        let result: T;
        try {
          if (this.#closed) throw new Error('store is closed');
          result = await work(this.#writer);
        } finally {
          release();
        }
        // Whatever the work committed (on its own terms: one transaction or several) is on disk before it resolves,
        // unless it says its commits need not be (rows a later commit makes count, or drops).
        const ticket = this.#walSync.committed();
        if (options?.durable !== false) await this.#walSync.durable(ticket);
        return result;
      },
    };
  }

  async #unit<T>(work: (tx: SqliteTx) => Promise<T>): Promise<T> {
    const release = await this.#holdWriter();
    let result: T;
    let ticket: number;
    try {
      if (this.#closed) throw new Error('store is closed');
      const tx = new SqliteTx(this.#writer, this.files, this.#blobs.location);
      await this.#begin();
      let committing = false;
      try {
        result = await work(tx);
        committing = true;
        this.#control.commit.run();
        ticket = this.#walSync.committed();
      } catch (err) {
        if (this.#writer.inTransaction) this.#writer.exec('ROLLBACK');
        // After a failed COMMIT, files are left to the sweep (it removes only files no row names).
        if (!committing) await tx.blobChanges.settle(this.files, false);
        throw err;
      }
      await tx.blobChanges.settle(this.files, true);
    } finally {
      release();
    }
    // Outside the lock: the next units of work commit while this fdatasync runs, and share the next one.
    await this.#walSync.durable(ticket);
    return result;
  }

  /**
   * BEGIN IMMEDIATE: takes the database's write lock, which another process (a second server process, the command
   * line) may hold. SQLite's own busy wait would sleep with the event loop blocked; this one waits between tries.
   */
  async #begin(): Promise<void> {
    const deadline = Date.now() + WRITE_LOCK_TIMEOUT_MS;
    for (let attempt = 0; ; attempt++) {
      this.#control.busyOff.get();
      try {
        this.#control.begin.run();
        return;
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'SQLITE_BUSY' || Date.now() >= deadline) throw err;
      } finally {
        // The other users of the writer (directory, key store, dump) keep SQLite's own wait.
        this.#control.busyOn.get();
      }
      await new Promise((resolve) => (attempt === 0 ? setImmediate(resolve) : setTimeout(resolve, Math.min(attempt, 5))));
    }
  }

  async sweepBlobs(options: BlobSweepOptions = {}): Promise<BlobSweep> {
    let rows = 0;
    for (;;) {
      const swept = await this.#unit(async (tx) => tx.sweepRows(500));
      rows += swept;
      if (swept < 500) break;
    }
    const files = await sweepFiles(
      this.files,
      async (names) => {
        if (names.length === 0) return new Set();
        const found = this.all(`SELECT file FROM blobs WHERE file IN (${names.map(() => '?').join(', ')})`, ...names);
        return new Set(found.map((r) => readTextOrNull(r, 'file') ?? ''));
      },
      options.graceMs ?? DEFAULT_SWEEP_GRACE_MS,
    );
    return { rows, files };
  }

  async migrate(): Promise<number> {
    const release = await this.#holdWriter();
    let version: number;
    try {
      this.#writer.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at INTEGER NOT NULL)');
      const applied = () => readInt(this.#writer.prepare('SELECT coalesce(max(version), 0) AS v FROM schema_version').get() as Raw, 'v');
      const current = applied();
      version = current;
      for (const m of migrations) {
        if (m.version <= current) continue;
        // Under the write lock, the version read again: another process starting at the same time (the server
        // processes of one `mss start`, the command line) may have applied it meanwhile.
        this.#writer.transaction(() => {
          if (applied() >= m.version) return;
          this.#writer.exec(m.sql);
          this.#writer.prepare('INSERT INTO schema_version (version, applied_at) VALUES (?, ?)').run(m.version, Date.now());
        }).immediate();
        version = m.version;
      }
    } finally {
      release();
    }
    await this.#walSync.durable(this.#walSync.committed());
    return version;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    // Wait for the unit of work in flight, then refuse new ones.
    const release = await this.#holdWriter();
    this.#closed = true;
    try {
      await this.#walSync.close();
      super.db.close();
      this.#writer.close();
    } finally {
      release();
    }
  }
}

export interface SqliteOptions {
  /** Where new blobs go, and the blob directory (default: chunk rows in the database, no directory). */
  blobs?: BlobOptions;
}

/**
 * Reuses each statement once prepared: every unit of work runs the same few dozen SQL texts, and preparing them
 * anew each time cost more than running them. better-sqlite3 runs a statement to completion before the next
 * call (nothing here iterates lazily), so one statement per text is safe.
 */
function cachingStatements(db: Db): Db {
  const cache = new Map<string, Database.Statement>();
  const prepare = db.prepare.bind(db);
  db.prepare = ((sql: string) => {
    let stmt = cache.get(sql);
    if (!stmt) {
      stmt = prepare(sql);
      if (cache.size < 500) cache.set(sql, stmt);
    }
    return stmt;
  }) as Db['prepare'];
  return db;
}

export async function openSqliteStore(file: string, options: SqliteOptions = {}): Promise<Store> {
  const store = SqliteStore.open(file, options);
  await store.migrate();
  return store;
}
