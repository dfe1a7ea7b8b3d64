import type pg from 'pg';
import type { Raw } from '../rows.js';
import { toSessionRow } from '../sqlite/webmail-sessions.js';
import type { SessionStage, WebmailSessionRow, WebmailSessionStore } from '../webmail-sessions.js';
import { readInt } from './rows.js';

/** Webmail sessions on the pool of a `PostgresStore`: one statement per call, each its own unit of work. */
export class PostgresWebmailSessions implements WebmailSessionStore {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  async #run(sql: string, params: unknown[]): Promise<Raw[]> {
    return (await this.#pool.query<Raw>(sql, params)).rows;
  }

  async create(r: WebmailSessionRow): Promise<void> {
    await this.#run(
      `INSERT INTO webmail_sessions (id_hash, mailbox_id, csrf, stage, lang, created_at, last_seen_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [r.idHash, r.mailboxId, r.csrf, r.stage, r.lang, r.createdAt, r.lastSeenAt, r.expiresAt],
    );
  }

  async get(idHash: string): Promise<WebmailSessionRow | null> {
    const [row] = await this.#run('SELECT * FROM webmail_sessions WHERE id_hash = $1', [idHash]);
    return row ? toSessionRow(row, readInt) : null;
  }

  async touch(idHash: string, change: { lastSeenAt: number; stage?: SessionStage; lang?: string }): Promise<boolean> {
    const rows = await this.#run(
      'UPDATE webmail_sessions SET last_seen_at = $1, stage = coalesce($2, stage), lang = coalesce($3, lang) WHERE id_hash = $4 RETURNING id_hash',
      [change.lastSeenAt, change.stage ?? null, change.lang ?? null, idHash],
    );
    return rows.length === 1;
  }

  async delete(idHash: string): Promise<boolean> {
    return (await this.#run('DELETE FROM webmail_sessions WHERE id_hash = $1 RETURNING id_hash', [idHash])).length === 1;
  }

  async deleteForMailbox(mailboxId: number): Promise<number> {
    return (await this.#run('DELETE FROM webmail_sessions WHERE mailbox_id = $1 RETURNING id_hash', [mailboxId])).length;
  }

  async prune(now: number, idleBefore: number): Promise<number> {
    return (await this.#run('DELETE FROM webmail_sessions WHERE expires_at <= $1 OR last_seen_at < $2 RETURNING id_hash', [now, idleBefore])).length;
  }
}
