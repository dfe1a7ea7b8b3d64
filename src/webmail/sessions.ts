import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { MailboxRow, StoreReads } from '../store/types.js';
import type { SessionStage, WebmailSessionRow, WebmailSessionStore } from '../store/webmail-sessions.js';
import { cookie, parseCookies } from './http-io.js';
import type { Lang } from './i18n.js';

/**
 * Webmail sessions: a random 256-bit cookie (`__Host-`, HttpOnly, Secure, SameSite=Strict) whose SHA-256 names
 * the row; idle and absolute expiry; one CSRF token per session. A patient's session starts at the `password`
 * stage and becomes `complete` with a new cookie once the TOTP code is right (no fixation across the step).
 */

export const SESSION_COOKIE = '__Host-mss-session';
/** Double-submit token of the forms shown before login (login, activation). */
export const ANON_CSRF_COOKIE = '__Host-mss-csrf';
export const LANG_COOKIE = '__Host-mss-lang';

export interface SessionLimits {
  idleMs: number;
  absoluteMs: number;
  /** Lifetime of a `password`-stage session: the time allowed to type the TOTP code. */
  secondFactorMs: number;
}

export interface ActiveSession {
  row: WebmailSessionRow;
  mailbox: MailboxRow;
}

/** Activity is written at most this often per session (idle expiry is minutes; a write per click is not needed). */
const TOUCH_EVERY_MS = 15_000;
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

export function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

export class Sessions {
  constructor(
    private readonly sessions: WebmailSessionStore,
    private readonly store: Pick<StoreReads, 'getMailboxById'>,
    private readonly limits: SessionLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /** Opens a session; returns the Set-Cookie value and the row. */
  async start(mailbox: MailboxRow, stage: SessionStage, lang: Lang): Promise<{ setCookie: string; row: WebmailSessionRow }> {
    const now = this.now();
    await this.sessions.prune(now, now - this.limits.idleMs);
    const token = newToken();
    const lifetime = stage === 'complete' ? this.limits.absoluteMs : this.limits.secondFactorMs;
    const row: WebmailSessionRow = {
      idHash: hashToken(token),
      mailboxId: mailbox.id,
      csrf: newToken(),
      stage,
      lang,
      createdAt: now,
      lastSeenAt: now,
      expiresAt: now + lifetime,
    };
    await this.sessions.create(row);
    return { setCookie: cookie(SESSION_COOKIE, token, { maxAgeSeconds: lifetime / 1000 }), row };
  }

  /** The live session of a request (idle and absolute expiry checked, activity recorded), or null. */
  async resolve(req: Pick<IncomingMessage, 'headers'>): Promise<ActiveSession | null> {
    const token = parseCookies(req.headers.cookie).get(SESSION_COOKIE);
    if (!token || !TOKEN.test(token)) return null;
    const idHash = hashToken(token);
    const row = await this.sessions.get(idHash);
    if (!row) return null;
    const now = this.now();
    if (row.expiresAt <= now || row.lastSeenAt + this.limits.idleMs <= now) {
      await this.sessions.delete(idHash);
      return null;
    }
    const mailbox = await this.store.getMailboxById(row.mailboxId);
    if (!mailbox || mailbox.state !== 'active') {
      await this.sessions.delete(idHash);
      return null;
    }
    if (now - row.lastSeenAt >= TOUCH_EVERY_MS) {
      await this.sessions.touch(idHash, { lastSeenAt: now });
      row.lastSeenAt = now;
    }
    return { row, mailbox };
  }

  async setLang(row: WebmailSessionRow, lang: Lang): Promise<void> {
    await this.sessions.touch(row.idHash, { lastSeenAt: this.now(), lang });
  }

  async end(row: WebmailSessionRow): Promise<void> {
    await this.sessions.delete(row.idHash);
  }

  async endAll(mailboxId: number): Promise<number> {
    return this.sessions.deleteForMailbox(mailboxId);
  }
}
