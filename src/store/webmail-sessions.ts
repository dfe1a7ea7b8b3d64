import { PostgresStore } from './postgres/index.js';
import { PostgresWebmailSessions } from './postgres/webmail-sessions.js';
import { SqliteStore } from './sqlite/index.js';
import { SqliteWebmailSessions } from './sqlite/webmail-sessions.js';
import type { Store } from './types.js';

/**
 * The webmail's sessions (migration 14), a storage port beside `Store` like the trust store: in the database so
 * every process behind a load balancer knows them. Only the SHA-256 of the cookie is kept, never the cookie.
 */

export const SESSION_STAGES = ['password', 'complete'] as const;
/** `password`: the password was right, the second factor (patients' TOTP) is still awaited; `complete`: logged in. */
export type SessionStage = (typeof SESSION_STAGES)[number];

export interface WebmailSessionRow {
  /** Hex SHA-256 of the cookie value. */
  idHash: string;
  mailboxId: number;
  /** The session's CSRF token (random, sent in every form). */
  csrf: string;
  stage: SessionStage;
  lang: string;
  createdAt: number; // ms since epoch
  lastSeenAt: number;
  /** The absolute end of the session (idle expiry is `lastSeenAt` + the idle limit, checked by the caller). */
  expiresAt: number;
}

export interface WebmailSessionStore {
  create(row: WebmailSessionRow): Promise<void>;
  get(idHash: string): Promise<WebmailSessionRow | null>;
  /** Records activity (and a new stage or language when given); false when the session is gone. */
  touch(idHash: string, change: { lastSeenAt: number; stage?: SessionStage; lang?: string }): Promise<boolean>;
  delete(idHash: string): Promise<boolean>;
  /** Ends every session of a mailbox (password change, opposition); returns how many went. */
  deleteForMailbox(mailboxId: number): Promise<number>;
  /** Removes sessions past their absolute expiry or idle since before `idleBefore`; returns how many went. */
  prune(now: number, idleBefore: number): Promise<number>;
}

/** The sessions table of an open `Store`, sharing its connections (SQLite) or pool (PostgreSQL). */
export function openWebmailSessions(store: Store): WebmailSessionStore {
  if (store instanceof SqliteStore) return new SqliteWebmailSessions(store.directoryAccess());
  if (store instanceof PostgresStore) return new PostgresWebmailSessions(store.directoryPool());
  throw new Error(`no webmail session store for the ${store.engine} engine`);
}
