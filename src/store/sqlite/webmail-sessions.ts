import type Database from 'better-sqlite3';
import { CorruptRowError, type Raw } from '../rows.js';
import { SESSION_STAGES, type SessionStage, type WebmailSessionRow, type WebmailSessionStore } from '../webmail-sessions.js';
import { readInt, readText } from './rows.js';

type Db = Database.Database;

function stageOf(row: Raw): SessionStage {
  const v = readText(row, 'stage');
  const stage = SESSION_STAGES.find((s) => s === v);
  if (!stage) throw new CorruptRowError(`column stage: unexpected value ${JSON.stringify(v)}`);
  return stage;
}

export function toSessionRow(row: Raw, int: (row: Raw, column: string) => number): WebmailSessionRow {
  return {
    idHash: readText(row, 'id_hash'),
    mailboxId: int(row, 'mailbox_id'),
    csrf: readText(row, 'csrf'),
    stage: stageOf(row),
    lang: readText(row, 'lang'),
    createdAt: int(row, 'created_at'),
    lastSeenAt: int(row, 'last_seen_at'),
    expiresAt: int(row, 'expires_at'),
  };
}

/** Webmail sessions on the connections of a `SqliteStore`: reads on its reader, writes on its writer. */
export class SqliteWebmailSessions implements WebmailSessionStore {
  readonly #reader: Db;
  readonly #withWriter: <T>(work: (writer: Db) => Promise<T>) => Promise<T>;

  constructor(access: { reader: Db; withWriter<T>(work: (writer: Db) => Promise<T>): Promise<T> }) {
    this.#reader = access.reader;
    this.#withWriter = access.withWriter;
  }

  create(r: WebmailSessionRow): Promise<void> {
    return this.#withWriter(async (db) => {
      db.prepare(
        `INSERT INTO webmail_sessions (id_hash, mailbox_id, csrf, stage, lang, created_at, last_seen_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(r.idHash, r.mailboxId, r.csrf, r.stage, r.lang, r.createdAt, r.lastSeenAt, r.expiresAt);
    });
  }

  async get(idHash: string): Promise<WebmailSessionRow | null> {
    const row = this.#reader.prepare('SELECT * FROM webmail_sessions WHERE id_hash = ?').get(idHash) as Raw | undefined;
    return row ? toSessionRow(row, readInt) : null;
  }

  touch(idHash: string, change: { lastSeenAt: number; stage?: SessionStage; lang?: string }): Promise<boolean> {
    return this.#withWriter(async (db) => {
      const result = db
        .prepare('UPDATE webmail_sessions SET last_seen_at = ?, stage = coalesce(?, stage), lang = coalesce(?, lang) WHERE id_hash = ?')
        .run(change.lastSeenAt, change.stage ?? null, change.lang ?? null, idHash);
      return result.changes === 1;
    });
  }

  delete(idHash: string): Promise<boolean> {
    return this.#withWriter(async (db) => db.prepare('DELETE FROM webmail_sessions WHERE id_hash = ?').run(idHash).changes === 1);
  }

  deleteForMailbox(mailboxId: number): Promise<number> {
    return this.#withWriter(async (db) => db.prepare('DELETE FROM webmail_sessions WHERE mailbox_id = ?').run(mailboxId).changes);
  }

  prune(now: number, idleBefore: number): Promise<number> {
    return this.#withWriter(
      async (db) => db.prepare('DELETE FROM webmail_sessions WHERE expires_at <= ? OR last_seen_at < ?').run(now, idleBefore).changes,
    );
  }
}
