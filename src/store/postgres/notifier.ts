import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { LocalNotifier } from '../notifier.js';
import type { MailboxEvent, Notifier } from '../types.js';

/**
 * Cross-process notifier over PostgreSQL LISTEN/NOTIFY, for several `mss` processes sharing one database.
 *
 * - `publish` delivers to this process's subscribers at once (a `LocalNotifier`, synchronously) and sends the
 *   event with `pg_notify` for the other processes. Each instance has a random `origin`; it ignores the
 *   notifications it sent itself, since it delivered them already.
 * - One dedicated connection LISTENs and also sends. When it drops, it is re-opened with exponential backoff;
 *   once LISTENing again, every subscribed mailbox gets a `resync` event, since notifications sent meanwhile
 *   are lost. Events published while disconnected are sent after the reconnection (bounded: past
 *   `MAX_PENDING` they collapse into one `resync` notification per mailbox).
 * - Incoming payloads are protocol input: parsed and checked field by field; malformed ones are logged and
 *   dropped.
 *
 * Payload (JSON, one object, always under PostgreSQL's 8000-byte limit):
 *   `{"v":1,"origin":"<hex>","kind":"exists"|"flags"|"expunge","mailboxId":n,"folderId":n,"uid":n,"modseq":n}`
 *   plus `"flags":[...]` for `flags`; a `flags` event whose flags do not fit is sent without them and with
 *   `"resync":true` (receivers re-read the mailbox); `{"v":1,"origin":..,"kind":"resync","mailboxId":n}` asks
 *   receivers to re-read a mailbox. The session `origin` of a `flags` event is not sent: a change made in
 *   another process never comes from one of this process's sessions.
 */

export const DEFAULT_CHANNEL = 'mss_mailbox_events';
/** Events sent in one query at most (each payload is under 8000 bytes). */
const NOTIFY_BATCH = 200;
/**
 * How long the first event of a batch waits for others: under load, one NOTIFY query then carries the events of
 * many deliveries (each query is a round trip and a wake-up of every listening backend). Subscribers of this
 * process are not delayed: they hear of the event at once.
 */
const NOTIFY_LINGER_MS = 25;
/** The NOTIFY query, prepared once on the connection. */
const NOTIFY_QUERY = { name: 'mss_notify', text: 'SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p' };
/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; keep a margin. */
export const MAX_PAYLOAD_BYTES = 7900;
const PAYLOAD_VERSION = 1;
const MAX_PENDING = 1000;
const MAX_RECONNECT_DELAY_MS = 30_000;
const CHANNEL_RE = /^[a-z_][a-z0-9_]{0,62}$/;
/** A system flag or keyword as IMAP writes it (an atom, optionally after one backslash). */
const FLAG_RE = /^\\?[^\x00-\x20(){%*"\\\]\x7f-\uffff]{1,100}$/;
const MAX_FLAGS = 200;

export interface PgNotifierOptions {
  /** LISTEN channel shared by the processes (lower-case identifier). */
  channel?: string;
  log?: Logger;
  /** First reconnection delay; doubles on each failure up to 30 s. */
  reconnectDelayMs?: number;
}

type Listener = (event: MailboxEvent) => void;

export class PgNotifier implements Notifier {
  readonly #local = new LocalNotifier();
  /** Subscriber count per mailbox, to know whom to resync. */
  readonly #subscribed = new Map<number, number>();
  readonly #origin = randomBytes(8).toString('hex');
  readonly #url: string;
  readonly #channel: string;
  readonly #log: Logger | undefined;
  readonly #baseDelay: number;

  #client: pg.Client | null = null;
  #pid = 0;
  #closed = false;
  #attempt = 0;
  #timer: NodeJS.Timeout | null = null;
  /** Events to send once connected again; then mailboxes to announce as `resync` (overflow, send failures). */
  #pending: MailboxEvent[] = [];
  readonly #pendingResync = new Set<number>();

  private constructor(url: string, opts: PgNotifierOptions) {
    this.#url = url;
    this.#channel = opts.channel ?? DEFAULT_CHANNEL;
    if (!CHANNEL_RE.test(this.#channel)) throw new Error(`invalid notification channel name: ${this.#channel}`);
    this.#log = opts.log;
    this.#baseDelay = opts.reconnectDelayMs ?? 500;
  }

  /** Opens the listening connection; rejects when the first connection fails. */
  static async connect(url: string, opts: PgNotifierOptions = {}): Promise<PgNotifier> {
    const notifier = new PgNotifier(url, opts);
    notifier.#client = await notifier.#open();
    return notifier;
  }

  /** The backend process id of the listening connection (null while disconnected). */
  get backendPid(): number | null {
    return this.#client ? this.#pid : null;
  }

  publish(event: MailboxEvent): void {
    this.#local.publish(event);
    if (this.#closed) return;
    if (!this.#client) {
      this.#defer(event);
      return;
    }
    this.#send(this.#client, event);
  }

  subscribe(mailboxId: number, listener: Listener): () => void {
    const unsubscribe = this.#local.subscribe(mailboxId, listener);
    this.#subscribed.set(mailboxId, (this.#subscribed.get(mailboxId) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      unsubscribe();
      const n = (this.#subscribed.get(mailboxId) ?? 1) - 1;
      if (n > 0) this.#subscribed.set(mailboxId, n);
      else this.#subscribed.delete(mailboxId);
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const client = this.#client;
    this.#client = null;
    this.#pending = [];
    this.#pendingResync.clear();
    if (client) {
      try {
        this.#wakeSender?.();
        await this.#sending; // notifications of changes already committed still go out
        await client.query(`UNLISTEN "${this.#channel}"`);
      } catch {
        // The connection may be gone already.
      }
      await client.end().catch(() => {});
    }
    await this.#local.close();
    this.#subscribed.clear();
  }

  // --- connection -------------------------------------------------------------------------------------

  /** Connects and LISTENs; the returned client is watched for loss. */
  async #open(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.#url, application_name: 'mss-notifier' });
    let lost = false;
    const onLost = (err?: Error) => {
      if (lost) return;
      lost = true;
      this.#lost(client, err);
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', (msg) => this.#receive(msg));
    try {
      await client.connect();
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      this.#pid = rows[0]?.pid ?? 0;
      await client.query(`LISTEN "${this.#channel}"`);
    } catch (err) {
      lost = true; // not installed yet: nothing to reconnect
      await client.end().catch(() => {});
      throw err;
    }
    return client;
  }

  #lost(client: pg.Client, err: Error | undefined): void {
    if (this.#client !== client) return; // an old connection, or one being closed
    this.#client = null;
    void client.end().catch(() => {});
    if (this.#closed) return;
    this.#log?.warn({ err: err?.message }, 'notifier connection lost; reconnecting');
    this.#schedule();
  }

  #schedule(): void {
    if (this.#closed || this.#timer) return;
    const delay = Math.min(this.#baseDelay * 2 ** this.#attempt, MAX_RECONNECT_DELAY_MS);
    this.#attempt++;
    // Jitter, so that processes restarted together do not reconnect in lock-step.
    const jittered = Math.round(delay * (0.75 + Math.random() * 0.5));
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#reconnect();
    }, jittered);
  }

  async #reconnect(): Promise<void> {
    let client: pg.Client;
    try {
      client = await this.#open();
    } catch (err) {
      if (this.#closed) return;
      this.#log?.warn({ err: errorText(err), attempt: this.#attempt }, 'notifier reconnection failed');
      this.#schedule();
      return;
    }
    if (this.#closed) {
      await client.end().catch(() => {});
      return;
    }
    this.#client = client;
    this.#attempt = 0;
    this.#log?.info('notifier reconnected');
    // Whatever was sent while we were not listening is lost: every subscriber re-reads its state.
    for (const mailboxId of [...this.#subscribed.keys()]) this.#local.publish({ kind: 'resync', mailboxId });
    const pending = this.#pending;
    this.#pending = [];
    for (const event of pending) this.#send(client, event);
    const resync = [...this.#pendingResync];
    this.#pendingResync.clear();
    for (const mailboxId of resync) this.#send(client, { kind: 'resync', mailboxId });
  }

  // --- sending ----------------------------------------------------------------------------------------

  #defer(event: MailboxEvent): void {
    if (this.#pendingResync.has(event.mailboxId)) return;
    if (event.kind !== 'resync' && this.#pending.length < MAX_PENDING) {
      this.#pending.push(event);
      return;
    }
    // Too many: the other processes will re-read the mailboxes concerned instead.
    this.#pendingResync.add(event.mailboxId);
    this.#pending = this.#pending.filter((e) => e.mailboxId !== event.mailboxId);
  }

  /**
   * One query at a time on the client (a pg client must not be given a query while another is running): the
   * first event of a batch schedules a flush after the linger, and the events published until then (or while an
   * earlier flush is still running) go out with it, in order.
   */
  #sending: Promise<void> = Promise.resolve();
  #outbox: { payload: string; event: MailboxEvent }[] = [];
  #flushScheduled = false;

  #send(client: pg.Client, event: MailboxEvent): void {
    this.#outbox.push({ payload: encodePayload(this.#origin, event), event });
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    this.#sending = this.#sending.then(() => this.#linger()).then(() => this.#flush(client));
  }

  /** Waits for more events to send with the first one, unless the notifier is closing (close sends at once). */
  #linger(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wakeSender = null;
        resolve();
      }, NOTIFY_LINGER_MS);
      this.#wakeSender = () => {
        clearTimeout(timer);
        this.#wakeSender = null;
        resolve();
      };
    });
  }

  #wakeSender: (() => void) | null = null;

  async #flush(client: pg.Client): Promise<void> {
    this.#flushScheduled = false;
    const events = this.#outbox.splice(0);
    for (let i = 0; i < events.length; i += NOTIFY_BATCH) {
      const batch = events.slice(i, i + NOTIFY_BATCH);
      try {
        // A function scan returns the array's elements in order: notifications keep the order of the events.
        await client.query({ ...NOTIFY_QUERY, values: [this.#channel, batch.map((b) => b.payload)] });
      } catch (err) {
        if (this.#closed) return;
        this.#log?.warn({ err: errorText(err), events: batch.length }, 'notifier publish failed');
        // Announced as a resync once connected again (if the connection is in fact fine, at the next loss).
        for (const { event } of batch) this.#pendingResync.add(event.mailboxId);
      }
    }
  }

  // --- receiving --------------------------------------------------------------------------------------

  #receive(msg: pg.Notification): void {
    if (this.#closed || msg.channel !== this.#channel) return;
    // Sent on this very connection: delivered locally when published (a cheaper test than the payload's origin).
    if (msg.processId === this.#pid) return;
    const decoded = decodePayload(msg.payload);
    if (!decoded) {
      this.#log?.warn({ pid: msg.processId, bytes: msg.payload?.length ?? 0 }, 'malformed notification ignored');
      return;
    }
    if (decoded.origin === this.#origin) return; // delivered locally when published
    this.#local.publish(decoded.event);
  }
}

// --- payload ------------------------------------------------------------------------------------------

/** The NOTIFY payload of an event; a `flags` event whose flags do not fit becomes a resync hint. */
export function encodePayload(origin: string, event: MailboxEvent): string {
  const head = { v: PAYLOAD_VERSION, origin };
  if (event.kind === 'resync') return JSON.stringify({ ...head, kind: 'resync', mailboxId: event.mailboxId });
  const base = { ...head, kind: event.kind, mailboxId: event.mailboxId, folderId: event.folderId, uid: event.uid, modseq: event.modseq };
  if (event.kind !== 'flags') return JSON.stringify(base);
  const full = JSON.stringify({ ...base, flags: event.flags });
  if (Buffer.byteLength(full, 'utf8') <= MAX_PAYLOAD_BYTES) return full;
  return JSON.stringify({ ...base, resync: true });
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function isId(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Parses and checks a NOTIFY payload; null when it is not one this version understands. */
export function decodePayload(payload: string | undefined): { origin: string; event: MailboxEvent } | null {
  if (payload === undefined || payload.length > 8000) return null;
  let data: unknown;
  try {
    data = JSON.parse(payload);
  } catch {
    return null;
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return null;
  const v: unknown = Reflect.get(data, 'v');
  const origin: unknown = Reflect.get(data, 'origin');
  const kind: unknown = Reflect.get(data, 'kind');
  const mailboxId: unknown = Reflect.get(data, 'mailboxId');
  if (v !== PAYLOAD_VERSION || typeof origin !== 'string' || origin.length === 0 || origin.length > 64 || !isId(mailboxId)) return null;
  if (kind === 'resync') return { origin, event: { kind, mailboxId } };
  if (kind !== 'exists' && kind !== 'flags' && kind !== 'expunge') return null;
  const folderId: unknown = Reflect.get(data, 'folderId');
  const uid: unknown = Reflect.get(data, 'uid');
  const modseq: unknown = Reflect.get(data, 'modseq');
  if (!isId(folderId) || !isId(uid) || !isId(modseq)) return null;
  if (kind !== 'flags') return { origin, event: { kind, mailboxId, folderId, uid, modseq } };
  const resync: unknown = Reflect.get(data, 'resync');
  if (resync === true) return { origin, event: { kind: 'resync', mailboxId } };
  const flags: unknown = Reflect.get(data, 'flags');
  if (!Array.isArray(flags)) return null;
  const items: readonly unknown[] = flags;
  if (items.length > MAX_FLAGS) return null;
  const checked: string[] = [];
  for (const flag of items) {
    if (typeof flag !== 'string' || !FLAG_RE.test(flag)) return null;
    checked.push(flag);
  }
  return { origin, event: { kind, mailboxId, folderId, uid, modseq, flags: checked } };
}
