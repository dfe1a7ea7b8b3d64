import pg from 'pg';
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
import { migrations } from './migrations.js';
import * as queueAdmin from './queue-admin.js';
import * as mdnTracking from './mdn-tracking.js';
import * as relayKeys from './relay-keys.js';
import type { NewPatientAccount, PatientAccountChange, PatientAccountRow, PatientThreadMessageRow, PatientThreadRow } from '../patient-types.js';
import * as patients from './patients.js';
import * as searchIndex from './search-index.js';
import { readBytes, readInt, readTextOrNull, toAudit, toFolder, toMailbox, toMessage, toQueueItem, toSummary } from './rows.js';
import { linkPendingAudit } from './audit-linker.js';
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

type Raw = Record<string, unknown>;
type Run = (sql: string, params?: unknown[]) => Promise<Raw[]>;

/**
 * The engine for several gateway processes on one database: `pg` with a pool. A unit of work checks out one
 * client (`BEGIN` … `COMMIT`); reads outside a unit of work use any pooled client and see committed data.
 * Every connection runs with `synchronous_commit = on`, so a resolved `transaction()` is durable (the basis
 * of "durable before 250"), whatever the server's default.
 *
 * Concurrency across processes (docs/decisions/0004-postgresql-engine.md):
 * - UIDs and MODSEQs come from the folder row, taken under its row lock (`UPDATE … RETURNING`, or
 *   `SELECT … FOR UPDATE` first where the change depends on what the folder holds), so writers of one folder
 *   are serialised and never share a UID; a rolled-back unit of work gives its UID back.
 * - Audit records are staged without a lock and linked into the single chain after the commit, by one linker
 *   at a time (a transaction-scoped advisory lock).
 * - Migrations run under a session advisory lock.
 */

/** Advisory lock keys (scoped to the database by PostgreSQL). */
const MIGRATION_LOCK = 0x6d7373_01; // 'mss' 01 ('mss' 02 is the audit chain's: audit-linker.ts)
const INIT_LOCK = 0x6d7373_03; // 'mss' 03

/**
 * How long the linker waits after a commit to gather more records (readers of the journal link first, so this
 * delays nobody); how often each process looks for records left unlinked by a process that stopped.
 */
const CHAIN_LINGER_MS = 100;
const CHAIN_SWEEP_MS = 2000;

/** SQLSTATEs after which a unit of work is run again: deadlock detected, serialization failure. */
const RETRYABLE = new Set(['40P01', '40001']);
const MAX_ATTEMPTS = 5;

function sqlState(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/**
 * Statements on the delivery and IMAP hot paths, prepared once per connection (a named statement is parsed and
 * planned by the server the first time only). Only fixed texts are registered, so the set stays small.
 */
const preparedNames = new Map<string, string>();
function hot(sql: string): string {
  if (!preparedNames.has(sql)) preparedNames.set(sql, `mss_hot_${preparedNames.size}`);
  return sql;
}

function runner(target: pg.Pool | pg.PoolClient): Run {
  return async (sql, params = []) => {
    const name = preparedNames.get(sql);
    return (await target.query<Raw>(name ? { name, text: sql, values: params } : { text: sql, values: params })).rows;
  };
}

const SELECT_MAILBOX = hot('SELECT * FROM mailboxes WHERE address = $1');
const SELECT_FOLDER = hot('SELECT * FROM folders WHERE mailbox_id = $1 AND name = $2');
const SELECT_FOLDER_BY_ID = hot('SELECT * FROM folders WHERE id = $1');
const SELECT_SUMMARIES_SINCE = hot(
  'SELECT id, uid, modseq, flags, internal_date, size, blob_id FROM messages WHERE folder_id = $1 AND uid > $2 ORDER BY uid',
);
/** UID allocation under the folder's row lock and the message row, in one round trip. */
const APPEND_MESSAGE = hot(
  `WITH f AS (UPDATE folders SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1 WHERE id = $1
              RETURNING mailbox_id, uid_validity, uid_next - 1 AS uid, highest_modseq AS modseq),
        m AS (INSERT INTO messages (mailbox_id, folder_id, uid, modseq, flags, internal_date, size, blob_id, meta)
              SELECT f.mailbox_id, $1, f.uid, f.modseq, $2, $3, $4, $5, $6 FROM f RETURNING id)
   SELECT m.id, f.uid, f.modseq, f.uid_validity FROM m, f`,
);
/** A one-chunk blob (most messages) with its chunk row, in one round trip. */
const INSERT_ONE_CHUNK_BLOB = hot(
  `WITH b AS (INSERT INTO blobs (mailbox_id, size) VALUES ($1, $2::bigint) RETURNING id),
        c AS (INSERT INTO blob_chunks (blob_id, seq, data) SELECT id, 0, $3 FROM b WHERE $2::bigint > 0)
   SELECT id FROM b`,
);
/**
 * Delivery's whole write of one message: UID allocation under the folder's row lock, the one-chunk blob and the
 * message row, in one round trip. The folder is named by id, or by mailbox and name.
 */
const appendWithBody = (folderMatch: string) =>
  hot(
    `WITH f AS (UPDATE folders SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1 WHERE ${folderMatch}
                RETURNING id, mailbox_id, uid_validity, uid_next - 1 AS uid, highest_modseq AS modseq),
          b AS (INSERT INTO blobs (mailbox_id, size) SELECT mailbox_id, $3::bigint FROM f RETURNING id),
          c AS (INSERT INTO blob_chunks (blob_id, seq, data) SELECT id, 0, $4 FROM b WHERE $3::bigint > 0),
          m AS (INSERT INTO messages (mailbox_id, folder_id, uid, modseq, flags, internal_date, size, blob_id, meta)
                SELECT f.mailbox_id, f.id, f.uid, f.modseq, $5, $6, $7, b.id, $8 FROM f, b RETURNING id),
          s AS (INSERT INTO search_docs (blob_id, unindexed, filter) SELECT id, $9, $10 FROM b WHERE $10::bytea IS NOT NULL)
     SELECT m.id, f.id AS folder_id, f.uid, f.modseq, f.uid_validity FROM m, f`,
  );
const APPEND_WITH_BODY_BY_NAME = appendWithBody('mailbox_id = $1 AND name = $2');
const APPEND_WITH_BODY_BY_ID = appendWithBody('mailbox_id = $1 AND id = $2::bigint');

/** The INSERT of staged audit records as SQL text (quoted with the driver's literal escaping), or ''. */
function stagedAuditInsert(client: pg.PoolClient, records: readonly NewAuditRecord[]): string {
  if (records.length === 0) return '';
  const row = (r: NewAuditRecord) =>
    `(${[r.time, r.actor, r.action, r.object, r.outcome, r.detail].map((v) => client.escapeLiteral(String(v))).join(', ')})`;
  return `INSERT INTO audit_pending (time, actor, action, object, outcome, detail) VALUES ${records.map(row).join(', ')}; `;
}

/** A blob body's first two chunks (to tell a one-chunk body, the common case, from a longer one) and the rest. */
interface StartedChunks {
  first: Buffer | undefined;
  second: Buffer | undefined;
  rest: AsyncIterator<Buffer>;
}

async function startChunks(body: BlobBody): Promise<StartedChunks> {
  const rest = rechunk(body)[Symbol.asyncIterator]();
  const first = await rest.next();
  if (first.done) return { first: undefined, second: undefined, rest };
  const second = await rest.next();
  return { first: first.value, second: second.done ? undefined : second.value, rest };
}

class PostgresReads implements StoreReads {
  constructor(
    protected readonly run: Run,
    protected readonly files: BlobFiles,
  ) {}

  protected async one(sql: string, ...params: unknown[]): Promise<Raw | undefined> {
    return (await this.run(sql, params))[0];
  }

  protected all(sql: string, ...params: unknown[]): Promise<Raw[]> {
    return this.run(sql, params);
  }

  async getMailbox(address: string): Promise<MailboxRow | null> {
    const row = await this.one(SELECT_MAILBOX, address.toLowerCase());
    return row ? toMailbox(row) : null;
  }

  async getMailboxById(id: number): Promise<MailboxRow | null> {
    const row = await this.one('SELECT * FROM mailboxes WHERE id = $1', id);
    return row ? toMailbox(row) : null;
  }

  async listMailboxes(): Promise<MailboxRow[]> {
    return (await this.all('SELECT * FROM mailboxes ORDER BY address')).map(toMailbox);
  }

  async listFolders(mailboxId: number): Promise<FolderRow[]> {
    // Byte order of names, as SQLite's default collation gives.
    return (await this.all('SELECT * FROM folders WHERE mailbox_id = $1 ORDER BY name COLLATE "C"', mailboxId)).map(toFolder);
  }

  async getFolder(mailboxId: number, name: string): Promise<FolderRow | null> {
    const row = await this.one(SELECT_FOLDER, mailboxId, name);
    return row ? toFolder(row) : null;
  }

  async getFolderById(id: number): Promise<FolderRow | null> {
    const row = await this.one(SELECT_FOLDER_BY_ID, id);
    return row ? toFolder(row) : null;
  }

  async listMessages(folderId: number): Promise<MessageSummary[]> {
    return (
      await this.all('SELECT id, uid, modseq, flags, internal_date, size, blob_id FROM messages WHERE folder_id = $1 ORDER BY uid', folderId)
    ).map(toSummary);
  }

  async folderStats(folderId: number): Promise<FolderStats> {
    const row = await this.one(
      `SELECT count(*) AS messages, coalesce(sum(size), 0)::bigint AS bytes,
              count(*) FILTER (WHERE NOT (flags::jsonb ? '\\Seen')) AS unseen,
              count(*) FILTER (WHERE flags::jsonb ? '\\Deleted') AS deleted
         FROM messages WHERE folder_id = $1`,
      folderId,
    );
    return { messages: readInt(row!, 'messages'), unseen: readInt(row!, 'unseen'), deleted: readInt(row!, 'deleted'), bytes: readInt(row!, 'bytes') };
  }

  async listMessagesSince(folderId: number, afterUid: number): Promise<MessageSummary[]> {
    return (
      await this.all(SELECT_SUMMARIES_SINCE, folderId, afterUid)
    ).map(toSummary);
  }

  async getMessages(folderId: number, uids: number[]): Promise<MessageRow[]> {
    if (uids.length === 0) return [];
    const wanted = [...new Set(uids)];
    return (await this.all('SELECT * FROM messages WHERE folder_id = $1 AND uid = ANY($2::bigint[]) ORDER BY uid', folderId, wanted)).map(
      toMessage,
    );
  }

  async listExpunged(folderId: number, sinceModseq: number, afterUid: number, limit: number): Promise<number[]> {
    return (
      await this.all(
        'SELECT uid FROM expunged_messages WHERE folder_id = $1 AND modseq > $2 AND uid > $3 ORDER BY uid LIMIT $4',
        folderId,
        sinceModseq,
        afterUid,
        limit,
      )
    ).map((r) => readInt(r, 'uid'));
  }

  async mailboxUsage(mailboxId: number): Promise<MailboxUsage> {
    const row = await this.one(
      `SELECT count(*) AS n, coalesce(sum(m.size), 0)::bigint AS bytes
         FROM folders f JOIN messages m ON m.folder_id = f.id WHERE f.mailbox_id = $1`,
      mailboxId,
    );
    return { messages: readInt(row!, 'n'), bytes: readInt(row!, 'bytes') };
  }

  async readBlob(blobId: number): Promise<AsyncIterable<Buffer> | null> {
    const row = await this.one('SELECT size, file FROM blobs WHERE id = $1', blobId);
    if (!row) return null;
    const size = readInt(row, 'size');
    const file = readTextOrNull(row, 'file');
    if (file !== null) return this.files.read(file, size);
    return readChunks(blobId, size, async (fromSeq, limit) =>
      (await this.all('SELECT seq, data FROM blob_chunks WHERE blob_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3', blobId, fromSeq, limit)).map(
        (r) => ({ seq: readInt(r, 'seq'), data: readBytes(r, 'data') }),
      ),
    );
  }

  searchIndex(folderId: number, queries: readonly (readonly number[])[]): Promise<IndexScan> {
    return searchIndex.searchIndex(this.run, folderId, queries);
  }

  async readAudit(afterSeq: number, limit: number): Promise<AuditRow[]> {
    return (await this.all('SELECT * FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2', afterSeq, limit)).map(toAudit);
  }

  async getAuthFailures(key: string): Promise<AuthFailureState> {
    const row = await this.one('SELECT failures, locked_until FROM auth_failures WHERE key = $1', key);
    return row ? { failures: readInt(row, 'failures'), lockedUntil: readInt(row, 'locked_until') } : { failures: 0, lockedUntil: 0 };
  }

  async getQueueItem(id: string): Promise<QueueItem | null> {
    const row = await this.one('SELECT * FROM queue WHERE id = $1', id);
    return row ? toQueueItem(row) : null;
  }

  async queueLength(): Promise<number> {
    return readInt((await this.one("SELECT count(*) AS n FROM queue WHERE state = 'queued'"))!, 'n');
  }

  listQueue(limit: number): Promise<QueueItem[]> {
    return queueAdmin.listQueue(this.run, limit);
  }

  relayKeyAccepted(peerDomain: string, key: string): Promise<boolean> {
    return relayKeys.relayKeyAccepted(this.run, peerDomain, key);
  }

  getPatientAccount(mailboxId: number): Promise<PatientAccountRow | null> {
    return patients.getPatientAccount(this.run, mailboxId);
  }

  getPatientThread(mailboxId: number, threadKey: string): Promise<PatientThreadRow | null> {
    return patients.getPatientThread(this.run, mailboxId, threadKey);
  }

  getPatientThreadMessages(mailboxId: number, messageKeys: readonly string[]): Promise<PatientThreadMessageRow[]> {
    return patients.getPatientThreadMessages(this.run, mailboxId, messageKeys);
  }

  listPatientsToPurge(now: number, limit: number): Promise<PatientAccountRow[]> {
    return patients.listPatientsToPurge(this.run, now, limit);
  }
}

class PostgresTx extends PostgresReads implements StoreTx {
  /** Blob files this unit of work wrote or dropped, settled after its commit or rollback. */
  readonly blobChanges = new BlobChanges();

  constructor(
    run: Run,
    files: BlobFiles,
    private readonly blobLocation: BlobOptions['location'],
  ) {
    super(run, files);
  }

  async insertMailbox(m: NewMailbox): Promise<MailboxRow> {
    const row = await this.one(
      `INSERT INTO mailboxes (address, type, owner_id, display_name, password_hash, state, wrapped_key, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
      m.address.toLowerCase(),
      m.type,
      m.ownerId,
      m.displayName,
      m.passwordHash,
      m.state,
      m.wrappedKey,
      Date.now(),
    );
    return toMailbox(row!);
  }

  async updateMailbox(
    id: number,
    change: { passwordHash?: string | null; state?: MailboxState; displayName?: string | null },
  ): Promise<void> {
    const columns = { password_hash: change.passwordHash, state: change.state, display_name: change.displayName };
    for (const [column, value] of Object.entries(columns)) {
      if (value !== undefined) await this.run(`UPDATE mailboxes SET ${column} = $1 WHERE id = $2`, [value, id]);
    }
  }

  async insertFolder(f: NewFolder): Promise<FolderRow> {
    // UIDVALIDITY: the clock in seconds, but always above every value handed out before (the counter row is
    // locked by the UPDATE, so concurrent creations get distinct values); wraps to 1 past 32 bits.
    const counter = await this.one(
      `UPDATE uid_validity_counter
          SET last = CASE WHEN greatest(last + 1, $1::bigint) > 4294967295 THEN 1 ELSE greatest(last + 1, $1::bigint) END
        WHERE id = 1 RETURNING last`,
      Math.floor(Date.now() / 1000),
    );
    const row = await this.one(
      'INSERT INTO folders (mailbox_id, name, uid_validity, special_use, subscribed) VALUES ($1, $2, $3, $4, $5) RETURNING *',
      f.mailboxId,
      f.name,
      readInt(counter!, 'last'),
      f.specialUse,
      f.subscribed,
    );
    return toFolder(row!);
  }

  async renameFolder(folderId: number, name: string): Promise<FolderRow> {
    const row = await this.one('UPDATE folders SET name = $1 WHERE id = $2 RETURNING *', name, folderId);
    if (!row) throw new Error(`no folder ${folderId}`);
    return toFolder(row);
  }

  /**
   * Quota checks of one mailbox wait for each other until the commit. FOR NO KEY UPDATE does not conflict with the
   * key-share locks that inserting its messages takes; callers check before they write, so the mailbox lock is
   * always taken before a folder lock.
   */
  override async mailboxUsage(mailboxId: number): Promise<MailboxUsage> {
    await this.run('SELECT id FROM mailboxes WHERE id = $1 FOR NO KEY UPDATE', [mailboxId]);
    return super.mailboxUsage(mailboxId);
  }

  /** Locks the folder row until the end of the unit of work: every writer of a folder's messages takes it first. */
  async #lockFolder(folderId: number): Promise<Raw> {
    const row = await this.one('SELECT id, mailbox_id, uid_validity, uid_next, highest_modseq FROM folders WHERE id = $1 FOR UPDATE', folderId);
    if (!row) throw new Error(`no folder ${folderId}`);
    return row;
  }

  async deleteFolder(folderId: number): Promise<ExpungedMessage[]> {
    let modseq = readInt(await this.#lockFolder(folderId), 'highest_modseq');
    const rows = await this.all('DELETE FROM messages WHERE folder_id = $1 RETURNING uid, blob_id', folderId);
    await this.run('DELETE FROM folders WHERE id = $1', [folderId]);
    await this.#dropUnusedBlobs(rows.map((r) => readInt(r, 'blob_id')));
    return rows
      .map((r) => readInt(r, 'uid'))
      .sort((a, b) => a - b)
      .map((uid) => ({ uid, modseq: ++modseq }));
  }

  async setSubscribed(folderId: number, subscribed: boolean): Promise<void> {
    await this.run('UPDATE folders SET subscribed = $1 WHERE id = $2', [subscribed, folderId]);
  }

  /**
   * Deletes those of the given blobs that no message refers to any more (their chunks go with them). The blob
   * rows are locked first, in id order: of two units of work removing the last two references from different
   * folders, the second waits for the first to commit, and its next statement then sees that no reference is
   * left (without the lock, each saw the other's uncommitted reference and both kept the blob).
   */
  async #dropUnusedBlobs(blobIds: number[]): Promise<void> {
    if (blobIds.length === 0) return;
    const ids = [...new Set(blobIds)].sort((a, b) => a - b);
    await this.run('SELECT id FROM blobs WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE', [ids]);
    this.#dropped(
      await this.all(
        'DELETE FROM blobs b WHERE b.id = ANY($1::bigint[]) AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = b.id) RETURNING file',
        ids,
      ),
    );
  }

  #dropped(rows: Raw[]): void {
    for (const row of rows) {
      const file = readTextOrNull(row, 'file');
      if (file !== null) this.blobChanges.dropped.push(file);
    }
  }

  /** Deletes up to `limit` blobs no message refers to, passing over rows another unit of work holds; returns how many. */
  async sweepRows(limit: number): Promise<number> {
    const rows = await this.all(
      `DELETE FROM blobs WHERE id IN (SELECT b.id FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = b.id)
                                      LIMIT $1 FOR UPDATE SKIP LOCKED)
       RETURNING file`,
      limit,
    );
    this.#dropped(rows);
    return rows.length;
  }

  async insertBlob(mailboxId: number, body: BlobBody): Promise<number> {
    if (this.blobLocation === 'directory') {
      const { name, size } = await this.files.write(body);
      this.blobChanges.written.push(name);
      return readInt((await this.one('INSERT INTO blobs (mailbox_id, size, file) VALUES ($1, $2, $3) RETURNING id', mailboxId, size, name))!, 'id');
    }
    const chunks = await startChunks(body);
    if (chunks.second === undefined) {
      const data = chunks.first ?? Buffer.alloc(0);
      return readInt((await this.one(INSERT_ONE_CHUNK_BLOB, mailboxId, data.length, data))!, 'id');
    }
    return this.#insertChunkedBlob(mailboxId, chunks);
  }

  async #insertChunkedBlob(mailboxId: number, chunks: StartedChunks): Promise<number> {
    const id = readInt((await this.one('INSERT INTO blobs (mailbox_id, size) VALUES ($1, 0) RETURNING id', mailboxId))!, 'id');
    let seq = 0;
    let size = 0;
    const insert = async (chunk: Buffer) => {
      await this.run('INSERT INTO blob_chunks (blob_id, seq, data) VALUES ($1, $2, $3)', [id, seq++, chunk]);
      size += chunk.length;
    };
    if (chunks.first) await insert(chunks.first);
    if (chunks.second) await insert(chunks.second);
    for (let next = await chunks.rest.next(); !next.done; next = await chunks.rest.next()) await insert(next.value);
    await this.run('UPDATE blobs SET size = $1 WHERE id = $2', [size, id]);
    return id;
  }

  indexMessage(messageId: number, entry: SearchIndexEntry): Promise<void> {
    return searchIndex.indexMessage(this.run, messageId, entry);
  }

  async appendMessage(folderId: number, m: NewMessage): Promise<AppendedMessage> {
    // The UPDATE takes the folder's row lock: concurrent appends to one folder, from any process, wait here
    // and each gets the next UID and MODSEQ.
    const row = await this.one(APPEND_MESSAGE, folderId, JSON.stringify(m.flags), m.internalDate, m.size, m.blobId, m.sealedMeta);
    if (!row) throw new Error(`no folder ${folderId}`);
    return { id: readInt(row, 'id'), uid: readInt(row, 'uid'), modseq: readInt(row, 'modseq'), uidValidity: readInt(row, 'uid_validity') };
  }

  async appendMessageWithBody(
    mailboxId: number,
    folder: number | string,
    body: BlobBody,
    m: Omit<NewMessage, 'blobId'>,
    search?: SearchIndexEntry,
  ): Promise<AppendedMessage & { folderId: number }> {
    const chunks = this.blobLocation === 'database' ? await startChunks(body) : undefined;
    if (chunks && chunks.second === undefined) {
      const data = chunks.first ?? Buffer.alloc(0);
      const row = await this.one(
        typeof folder === 'string' ? APPEND_WITH_BODY_BY_NAME : APPEND_WITH_BODY_BY_ID,
        mailboxId,
        folder,
        data.length,
        data,
        JSON.stringify(m.flags),
        m.internalDate,
        m.size,
        m.sealedMeta,
        search?.unindexed ?? 0,
        search?.filter ?? null,
      );
      if (!row) throw new Error(`mailbox ${mailboxId} has no folder ${folder}`);
      return {
        id: readInt(row, 'id'),
        folderId: readInt(row, 'folder_id'),
        uid: readInt(row, 'uid'),
        modseq: readInt(row, 'modseq'),
        uidValidity: readInt(row, 'uid_validity'),
      };
    }
    const folderId = typeof folder === 'number' ? folder : (await this.getFolder(mailboxId, folder))?.id;
    if (folderId === undefined) throw new Error(`mailbox ${mailboxId} has no folder ${folder}`);
    const blobId = chunks ? await this.#insertChunkedBlob(mailboxId, chunks) : await this.insertBlob(mailboxId, body);
    const appended = await this.appendMessage(folderId, { ...m, blobId });
    if (search) await this.indexMessage(appended.id, search);
    return { ...appended, folderId };
  }

  async setFlags(folderId: number, uid: number, flags: string[], unchangedSince?: number): Promise<FlagChange | null> {
    const folder = await this.one('SELECT highest_modseq FROM folders WHERE id = $1 FOR UPDATE', folderId);
    if (!folder) return null;
    const current = await this.one('SELECT modseq FROM messages WHERE folder_id = $1 AND uid = $2', folderId, uid);
    if (!current || (unchangedSince !== undefined && readInt(current, 'modseq') > unchangedSince)) return null;
    const modseq = readInt(folder, 'highest_modseq') + 1;
    await this.run('UPDATE folders SET highest_modseq = $1 WHERE id = $2', [modseq, folderId]);
    await this.run('UPDATE messages SET flags = $1, modseq = $2 WHERE folder_id = $3 AND uid = $4', [JSON.stringify(flags), modseq, folderId, uid]);
    return { uid, modseq, flags };
  }

  async expunge(folderId: number, uids: number[]): Promise<ExpungedMessage[]> {
    let modseq = readInt(await this.#lockFolder(folderId), 'highest_modseq');
    if (uids.length === 0) return [];
    const rows = await this.all(
      'DELETE FROM messages WHERE folder_id = $1 AND uid = ANY($2::bigint[]) RETURNING uid, blob_id',
      folderId,
      [...new Set(uids)],
    );
    const removed = rows
      .map((r) => readInt(r, 'uid'))
      .sort((a, b) => a - b)
      .map((uid) => ({ uid, modseq: ++modseq }));
    if (removed.length > 0) {
      await this.run('UPDATE folders SET highest_modseq = $1 WHERE id = $2', [modseq, folderId]);
      await this.run('INSERT INTO expunged_messages (folder_id, uid, modseq) SELECT $1, u, m FROM unnest($2::bigint[], $3::bigint[]) AS t(u, m)', [
        folderId,
        removed.map((r) => r.uid),
        removed.map((r) => r.modseq),
      ]);
    }
    await this.#dropUnusedBlobs(rows.map((r) => readInt(r, 'blob_id')));
    return removed;
  }

  async copyMessages(fromFolderId: number, uids: number[], toFolderId: number): Promise<CopiedMessages> {
    // Both folder rows are locked in id order, so two opposite copies cannot deadlock.
    const locked = await this.all(
      'SELECT id, mailbox_id, uid_validity, uid_next, highest_modseq FROM folders WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE',
      [fromFolderId, toFolderId],
    );
    const from = locked.find((r) => readInt(r, 'id') === fromFolderId);
    const to = locked.find((r) => readInt(r, 'id') === toFolderId);
    if (!from) throw new Error(`no folder ${fromFolderId}`);
    if (!to) throw new Error(`no folder ${toFolderId}`);
    const mailboxId = readInt(to, 'mailbox_id');
    if (readInt(from, 'mailbox_id') !== mailboxId) throw new Error('messages can only be copied within one mailbox');
    const uidNext = readInt(to, 'uid_next');
    const highest = readInt(to, 'highest_modseq');
    // The source UIDs that exist, in order (stable: the source folder is locked).
    const existing = (
      await this.all('SELECT uid FROM messages WHERE folder_id = $1 AND uid = ANY($2::bigint[]) ORDER BY uid', fromFolderId, [...new Set(uids)])
    ).map((r) => readInt(r, 'uid'));
    if (existing.length === 0) return { uidValidity: readInt(to, 'uid_validity'), copies: [] };
    // One statement: the n-th source message (in UID order) becomes uid_next + n - 1 with MODSEQ highest + n.
    const inserted = await this.all(
      `INSERT INTO messages (mailbox_id, folder_id, uid, modseq, flags, internal_date, size, blob_id, meta)
       SELECT $3, $4, $5::bigint + s.n - 1, $6::bigint + s.n, s.flags, s.internal_date, s.size, s.blob_id, s.meta
         FROM (SELECT *, row_number() OVER (ORDER BY uid) AS n FROM messages WHERE folder_id = $1 AND uid = ANY($2::bigint[])) s
       RETURNING uid`,
      fromFolderId,
      existing,
      mailboxId,
      toFolderId,
      uidNext,
      highest,
    );
    if (inserted.length !== existing.length) throw new Error('copy: the source folder changed during the copy');
    const copies = existing.map((sourceUid, i) => ({ sourceUid, uid: uidNext + i, modseq: highest + i + 1 }));
    if (copies.length > 0) {
      await this.run('UPDATE folders SET uid_next = $1, highest_modseq = $2 WHERE id = $3', [uidNext + copies.length, highest + copies.length, toFolderId]);
    }
    return { uidValidity: readInt(to, 'uid_validity'), copies };
  }

  /**
   * Audit records of this unit of work, written to `audit_pending` in the same round trip as the COMMIT (the
   * store links them into the chain after it). No lock: concurrent units of work stage side by side; `ORDER BY
   * id` later keeps each one's order.
   */
  readonly stagedRecords: NewAuditRecord[] = [];

  async appendAudit(records: readonly NewAuditRecord[]): Promise<void> {
    this.stagedRecords.push(...records);
  }

  async recordAuthFailure(key: string, now: number, maxFailures: number, lockoutMs: number): Promise<AuthFailureState> {
    // One statement, so concurrent failures from several processes each count: the conflicting row is
    // locked and re-read. A lockout that has expired starts a fresh count.
    const row = await this.one(
      `WITH input AS (SELECT $2::bigint AS now, $3::int AS max_failures, $4::bigint AS lockout_ms)
       INSERT INTO auth_failures AS a (key, failures, locked_until, updated_at)
       SELECT $1, 1, CASE WHEN 1 >= max_failures THEN now + lockout_ms ELSE 0 END, now FROM input
       ON CONFLICT (key) DO UPDATE SET
         failures = CASE WHEN a.locked_until <> 0 AND a.locked_until <= excluded.updated_at THEN 1 ELSE a.failures + 1 END,
         locked_until = CASE
           WHEN (CASE WHEN a.locked_until <> 0 AND a.locked_until <= excluded.updated_at THEN 1 ELSE a.failures + 1 END) >= $3::int
           THEN excluded.updated_at + $4::bigint ELSE 0 END,
         updated_at = excluded.updated_at
       RETURNING failures, locked_until`,
      key,
      now,
      maxFailures,
      lockoutMs,
    );
    return { failures: readInt(row!, 'failures'), lockedUntil: readInt(row!, 'locked_until') };
  }

  async clearAuthFailures(key: string): Promise<void> {
    await this.run('DELETE FROM auth_failures WHERE key = $1', [key]);
  }

  async enqueue(item: NewQueueItem): Promise<void> {
    await this.run(
      `INSERT INTO queue (id, destination, next_attempt_at, created_at, sealed_envelope, sealed_message)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [item.id, item.destination, item.nextAttemptAt, Date.now(), item.sealedEnvelope, item.sealedMessage],
    );
  }

  async claimDue(workerId: string, limit: number, leaseMs: number, now = Date.now()): Promise<QueueItem[]> {
    // SKIP LOCKED: a claimer passes over rows another claimer is leasing right now instead of waiting for
    // them; a row leased and committed meanwhile is re-checked against the WHERE clause and left out.
    const rows = await this.all(
      `UPDATE queue q SET lease_owner = $1, lease_until = $3::bigint + $4::bigint, attempts = q.attempts + 1
        WHERE q.id IN (SELECT id FROM queue
                        WHERE state = 'queued' AND next_attempt_at <= $3::bigint AND (lease_until IS NULL OR lease_until <= $3::bigint)
                        ORDER BY next_attempt_at, id
                        LIMIT $2
                        FOR UPDATE SKIP LOCKED)
       RETURNING q.*`,
      workerId,
      limit,
      now,
      leaseMs,
    );
    return rows.map(toQueueItem).sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async completeQueueItem(id: string, workerId: string): Promise<boolean> {
    return (await this.all('DELETE FROM queue WHERE id = $1 AND lease_owner = $2 RETURNING id', id, workerId)).length === 1;
  }

  async renewQueueLease(id: string, workerId: string, leaseUntil: number): Promise<boolean> {
    return (await this.all('UPDATE queue SET lease_until = $1 WHERE id = $2 AND lease_owner = $3 RETURNING id', leaseUntil, id, workerId)).length === 1;
  }

  async releaseQueueItem(id: string, workerId: string, nextAttemptAt: number): Promise<boolean> {
    const rows = await this.all(
      'UPDATE queue SET lease_owner = NULL, lease_until = NULL, next_attempt_at = $1 WHERE id = $2 AND lease_owner = $3 RETURNING id',
      nextAttemptAt,
      id,
      workerId,
    );
    return rows.length === 1;
  }

  recordRelayKey(peerDomain: string, key: string, acceptedAt: number): Promise<boolean> {
    return relayKeys.recordRelayKey(this.run, peerDomain, key, acceptedAt);
  }

  pruneRelayKeys(before: number, limit: number): Promise<number> {
    return relayKeys.pruneRelayKeys(this.run, before, limit);
  }

  trackMdn(entry: NewMdnTracking): Promise<boolean> {
    return mdnTracking.trackMdn(this.run, entry);
  }

  recordMdn(mailboxId: number, trackKey: string, arrival: MdnArrival, at: number): Promise<'settled' | 'waiting' | null> {
    return mdnTracking.recordMdn(this.run, mailboxId, trackKey, arrival, at);
  }

  claimOverdueMdn(now: number, limit: number): Promise<MdnTrackingRow[]> {
    return mdnTracking.claimOverdueMdn(this.run, now, limit);
  }

  deleteMdnTracking(id: number): Promise<boolean> {
    return mdnTracking.deleteMdnTracking(this.run, id);
  }

  insertPatientAccount(account: NewPatientAccount): Promise<boolean> {
    return patients.insertPatientAccount(this.run, account);
  }

  updatePatientAccount(mailboxId: number, change: PatientAccountChange): Promise<boolean> {
    return patients.updatePatientAccount(this.run, mailboxId, change);
  }

  acceptTotpStep(mailboxId: number, step: number): Promise<boolean> {
    return patients.acceptTotpStep(this.run, mailboxId, step);
  }

  upsertPatientThread(mailboxId: number, threadKey: string, at: number, closedAt: number | null): Promise<void> {
    return patients.upsertPatientThread(this.run, mailboxId, threadKey, at, closedAt);
  }

  insertPatientThreadMessage(row: PatientThreadMessageRow): Promise<void> {
    return patients.insertPatientThreadMessage(this.run, row);
  }

  purgePatientData(mailboxId: number, at: number): Promise<void> {
    return patients.purgePatientData(this.run, mailboxId, at);
  }

  updateQueueEnvelope(id: string, sealedEnvelope: Buffer): Promise<boolean> {
    return queueAdmin.updateQueueEnvelope(this.run, id, sealedEnvelope);
  }

  rescheduleQueueItem(id: string, nextAttemptAt: number): Promise<boolean> {
    return queueAdmin.rescheduleQueueItem(this.run, id, nextAttemptAt);
  }

  deleteQueueItem(id: string): Promise<boolean> {
    return queueAdmin.deleteQueueItem(this.run, id);
  }
}

export interface PostgresOptions {
  /** Connections in the pool (units of work in flight at once). */
  poolSize?: number;
  /** Where new blobs go, and the blob directory (default: chunk rows in the database, no directory). */
  blobs?: BlobOptions;
}

export class PostgresStore extends PostgresReads implements Store {
  readonly engine = 'postgres' as const;
  readonly #pool: pg.Pool;
  readonly #blobs: BlobOptions;
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;
  /** The chaining run in progress in this process, if any; `#chainAgain` asks it for one more pass. */
  #chaining: Promise<void> | null = null;
  #chainAgain = false;
  readonly #chainSweep: NodeJS.Timeout;

  private constructor(pool: pg.Pool, blobs: BlobOptions) {
    super(runner(pool), new BlobFiles(blobs.directory));
    this.#pool = pool;
    this.#blobs = blobs;
    // Records staged by a process that stopped before linking them are linked by the next sweep of any process.
    this.#chainSweep = setInterval(() => this.#scheduleChain(), CHAIN_SWEEP_MS).unref();
  }

  static open(url: string, options: PostgresOptions = {}): PostgresStore {
    const pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? 10,
      application_name: 'mss',
      options: '-c synchronous_commit=on',
    });
    // An idle client that loses its connection is dropped from the pool; the next checkout opens a new one.
    pool.on('error', () => {});
    return new PostgresStore(pool, options.blobs ?? DEFAULT_BLOB_OPTIONS);
  }

  /** The pool, for the directory store (src/store/postgres/directory.ts), which shares it. */
  directoryPool(): pg.Pool {
    if (this.#closed) throw new Error('store is closed');
    return this.#pool;
  }

  transaction<T>(work: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.#unit(work);
  }

  async #unit<T>(work: (tx: PostgresTx) => Promise<T>): Promise<T> {
    if (this.#closed) throw new Error('store is closed');
    const running = this.#withRetry(work);
    this.#inFlight.add(running);
    try {
      return await running;
    } finally {
      this.#inFlight.delete(running);
    }
  }

  /**
   * A unit of work chosen as a deadlock victim (or a serialization failure) is rolled back and run again:
   * `work` must have no effect outside the unit of work, which the port already requires (events are
   * published after the commit).
   */
  async #withRetry<T>(work: (tx: PostgresTx) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#once(work);
      } catch (err) {
        const state = sqlState(err);
        if (attempt >= MAX_ATTEMPTS || state === undefined || !RETRYABLE.has(state)) throw err;
        await new Promise((r) => setTimeout(r, Math.random() * 20 * attempt));
      }
    }
  }

  async #once<T>(work: (tx: PostgresTx) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    // A unit of work's reads must not reach its client once it is back in the pool (a blob stream read late).
    let over = false;
    const run = runner(client);
    const tx = new PostgresTx(
      (sql, params) => (over ? Promise.reject(new Error('the unit of work is over')) : run(sql, params)),
      this.files,
      this.#blobs.location,
    );
    let result: T;
    let committing = false;
    try {
      await client.query('BEGIN');
      try {
        result = await work(tx);
        committing = true;
        // Simple-query protocol: the staged audit rows and the COMMIT in one round trip; an error in the
        // INSERT skips the COMMIT and the unit of work is rolled back below.
        await client.query(stagedAuditInsert(client, tx.stagedRecords) + 'COMMIT');
        if (tx.stagedRecords.length > 0) this.#scheduleChain();
      } catch (err) {
        await client.query('ROLLBACK').catch((e: unknown) => {
          broken = e instanceof Error ? e : new Error(String(e));
        });
        throw err;
      }
    } catch (err) {
      over = true;
      client.release(broken);
      // A COMMIT that failed may still have committed (the connection dropped): its files stay for the sweep,
      // which removes only files no row names.
      if (!committing) await tx.blobChanges.settle(this.files, false);
      throw err;
    }
    over = true;
    client.release();
    await tx.blobChanges.settle(this.files, true);
    return result;
  }

  async sweepBlobs(options: BlobSweepOptions = {}): Promise<BlobSweep> {
    let rows = 0;
    for (;;) {
      const swept = await this.#unit((tx) => tx.sweepRows(500));
      rows += swept;
      if (swept < 500) break;
    }
    const files = await sweepFiles(
      this.files,
      async (names) =>
        new Set((await this.all('SELECT file FROM blobs WHERE file = ANY($1::text[])', names)).map((r) => readTextOrNull(r, 'file') ?? '')),
      options.graceMs ?? DEFAULT_SWEEP_GRACE_MS,
    );
    return { rows, files };
  }

  /** Every record committed before the call is linked before the journal is read. */
  override async readAudit(afterSeq: number, limit: number): Promise<AuditRow[]> {
    await this.#linkPending(true);
    return super.readAudit(afterSeq, limit);
  }

  /**
   * Links staged audit records in the background, coalescing: one run at a time per process, and a commit
   * during a run asks for one more pass instead of a run of its own. When another process holds the chain, its
   * run may have begun before our commit, so we try again shortly.
   */
  #scheduleChain(): void {
    if (this.#closed) return;
    if (this.#chaining) {
      this.#chainAgain = true;
      return;
    }
    this.#chaining = (async () => {
      do {
        this.#chainAgain = false;
        // A short linger gathers the records of many commits into one linking unit of work.
        await new Promise((r) => setTimeout(r, CHAIN_LINGER_MS));
        try {
          while ((await this.#linkPending(false)) === 'busy') {
            if (this.#closed) return;
            await new Promise((r) => setTimeout(r, CHAIN_LINGER_MS * (0.5 + Math.random())));
          }
        } catch {
          // The records stay staged (their unit of work committed) and the next sweep links them.
          return;
        }
      } while (this.#chainAgain && !this.#closed);
    })().finally(() => {
      this.#chaining = null;
    });
  }

  #linkPending(wait: boolean): Promise<'done' | 'busy'> {
    return linkPendingAudit(this.#pool, wait);
  }

  async migrate(): Promise<number> {
    if (this.#closed) throw new Error('store is closed');
    const client = await this.#pool.connect();
    try {
      // Two processes starting together: the second waits here, then finds nothing left to do.
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      try {
        await client.query('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at BIGINT NOT NULL)');
        const current = readInt((await client.query<Raw>('SELECT coalesce(max(version), 0) AS v FROM schema_version')).rows[0]!, 'v');
        let version = current;
        for (const m of migrations) {
          if (m.version <= current) continue;
          await client.query('BEGIN');
          try {
            await client.query(m.sql);
            await client.query('INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)', [m.version, Date.now()]);
            await client.query('COMMIT');
          } catch (err) {
            await client.query('ROLLBACK');
            throw err;
          }
          version = m.version;
        }
        return version;
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
      }
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#chainSweep);
    // Let units of work in flight finish and link what they staged, then close every connection.
    await Promise.allSettled([...this.#inFlight]);
    await this.#chaining;
    await this.#linkPending(true).catch(() => {
      // Left staged: the next process to start links them.
    });
    await this.#pool.end();
  }
}

export async function openPostgresStore(url: string, options: PostgresOptions = {}): Promise<Store> {
  const store = PostgresStore.open(url, options);
  try {
    await store.migrate();
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

/**
 * The schema version of the database at `url`, or null when the database or its schema does not exist yet
 * (`isInitialised`, `mss init`). Opens one connection, changes nothing.
 */
export async function postgresSchemaVersion(url: string): Promise<number | null> {
  const client = new pg.Client({ connectionString: url, application_name: 'mss' });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    if (sqlState(err) === '3D000') return null; // invalid_catalog_name: no such database
    throw err;
  }
  try {
    const present = (await client.query<Raw>("SELECT to_regclass('schema_version') IS NOT NULL AS present")).rows[0];
    if (present?.present !== true) return null;
    const row = (await client.query<Raw>('SELECT max(version) AS v FROM schema_version')).rows[0];
    return row?.v === null || row === undefined ? null : readInt(row, 'v');
  } finally {
    await client.end();
  }
}

/**
 * Runs `work` while holding a session advisory lock on the database at `url`, so that `mss init` (master key,
 * dev PKI, schema, demo) runs once when several processes start together on a fresh database: the others wait,
 * then find everything created. Rejects when the database cannot be reached, before `work` runs.
 */
export async function withPostgresInitLock<T>(url: string, work: () => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'mss-init' });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT pg_advisory_lock($1)', [INIT_LOCK]);
  } catch (err) {
    await client.end().catch(() => {});
    throw err;
  }
  try {
    return await work();
  } finally {
    // Ending the session releases the lock.
    await client.end().catch(() => {});
  }
}
