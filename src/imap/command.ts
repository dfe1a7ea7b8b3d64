import type { Logger } from 'pino';
import type { Authenticator } from '../accounts/authenticator.js';
import type { CertificateAuthenticator } from '../accounts/certificate-login.js';
import type { Config } from '../config/schema.js';
import type { SealedMail } from '../store/sealed-mail.js';
import type { MailboxRow, Notifier, Store } from '../store/types.js';
import type { Args } from './args.js';
import type { SharedFolders } from './folder-messages.js';
import type { SelectedFolder } from './selected.js';

/**
 * The contract between the dispatcher and the command modules (one file per command under commands/).
 * A command declares the states it is valid in, how big its literals may be, its argument grammar
 * (`parse`, pure) and its handler (`run`). The dispatcher checks state and grammar, so handlers never
 * re-validate; handlers report refusals by throwing `ImapError`.
 */

export type SessionState = 'not-authenticated' | 'authenticated' | 'selected' | 'logout';

export const ANY_STATE: readonly SessionState[] = ['not-authenticated', 'authenticated', 'selected'];
export const AUTHENTICATED: readonly SessionState[] = ['authenticated', 'selected'];
export const SELECTED: readonly SessionState[] = ['selected'];
export const NOT_AUTHENTICATED: readonly SessionState[] = ['not-authenticated'];

export interface ImapServerDeps {
  limits: Config['imap'];
  /** Per-mailbox limits (QUOTA); 0 is no limit. */
  quota: Config['quota'];
  hostname: string;
  store: Store;
  mail: SealedMail;
  notifier: Notifier;
  auth: Authenticator;
  tls: { key: string; cert: string };
  /**
   * AUTHENTICATE EXTERNAL (RFC 4422): the TLS listeners request (not require) a client certificate, naming the
   * CAs of `ca` (PEM, trust anchors and intermediates); `certificates` decides whether one logs in. Absent: no
   * certificate is requested.
   */
  clientAuth?: { ca: string[]; certificates: CertificateAuthenticator };
  log: Logger;
}

/** The certificate the client presented in the TLS handshake, and the other certificates that came with it. */
export interface ClientCertificate {
  der: Buffer;
  chain: Buffer[];
}

/** What a command handler may see and do to its session. */
export interface SessionApi {
  readonly id: string;
  readonly deps: ImapServerDeps;
  readonly remote: string;
  readonly listener: 'plain' | 'tls';
  readonly secure: boolean;
  /** The client certificate of the TLS layer, or null (none presented, no TLS, or none requested). */
  readonly clientCertificate: ClientCertificate | null;
  /** COMPRESS=DEFLATE is active (RFC 4978). */
  readonly compressed: boolean;
  readonly state: SessionState;
  readonly user: MailboxRow | null;
  readonly selected: SelectedFolder | null;
  /** The message state of selected folders, shared by the sessions of this process (`SelectedFolder.messages`). */
  readonly folders: SharedFolders;
  /** Extensions the client turned on (ENABLE, or a CONDSTORE parameter/item: RFC 7162 §3.1). */
  readonly enabled: Set<string>;
  readonly log: Logger;
  capabilities(): string[];
  /** Writes response bytes (one buffer or several in order), waiting while the socket is congested. */
  send(data: Buffer | readonly Buffer[]): Promise<void>;
  /** Sends a continuation request and reads one raw line; null when the line was refused (too long). */
  readLine(prompt: string): Promise<Buffer | null>;
  /**
   * IDLE (RFC 2177): sends a continuation request, then until the client sends a line runs `push` at once
   * and again whenever the notifier reports a change for this mailbox. Returns that line (null when it was
   * refused as too long). The idle timeout runs from the start: a client that idles longer is logged out.
   */
  idle(prompt: string, push: () => Promise<void>): Promise<Buffer | null>;
  /** Login succeeded: enters the authenticated state. */
  authenticated(mailbox: MailboxRow): void;
  /** Login failed: counted per connection; past the limit the session says BYE after this command. */
  loginFailed(): void;
  /** Enters the selected state with `folder`, or leaves it with null; the previous folder's messages are released. */
  select(folder: SelectedFolder | null): void;
  /** Upgrades the connection to TLS (run after the tagged OK of STARTTLS). */
  startTls(): Promise<void>;
  /** Turns DEFLATE on in both directions (run after the tagged OK of COMPRESS). */
  startCompression(): void;
  /**
   * UNAUTHENTICATE (RFC 8437): back to the not-authenticated state; the selected folder, the notifier
   * subscription and what ENABLE turned on are dropped. TLS and compression stay.
   */
  unauthenticate(): void;
  /** Enters the logout state; the session closes after the tagged response. */
  logout(): void;
}

export interface Completion {
  text: string;
  code?: string;
  /** Runs after the tagged OK is written (STARTTLS handshake). */
  after?: () => Promise<void>;
}

export class ImapError extends Error {
  constructor(
    readonly status: 'NO' | 'BAD',
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/**
 * A response could not be finished after part of it was sent (a message body that failed to open half-way
 * through its literal): the protocol stream is broken, so the connection is cut without another word.
 */
export class ResponseBrokenError extends Error {}

/** Thrown by `send` once the connection is gone, so a handler stops working for nobody. */
export class ConnectionClosedError extends Error {
  constructor() {
    super('connection closed');
  }
}

export interface CommandSpec<A> {
  /** Upper-case name; UID commands are `UID FETCH`. */
  name: string;
  states: readonly SessionState[];
  /** `message`: literals up to `maxLiteralSize` (APPEND). Otherwise literals share the line limit. */
  literal?: 'message';
  /** False for commands during which EXPUNGE responses must not be sent (FETCH, STORE, SEARCH). */
  expungeAllowed?: boolean;
  /** Reads the arguments; the dispatcher checks that none is left over. */
  parse(args: Args): A;
  run(session: SessionApi, args: A, tag: string): Promise<Completion>;
}

/** Erases a spec's argument type for the registry, keeping parse and run paired. */
export interface AnyCommand {
  name: string;
  states: readonly SessionState[];
  literal?: 'message';
  expungeAllowed?: boolean;
  parse(args: Args): unknown;
  run(session: SessionApi, args: unknown, tag: string): Promise<Completion>;
}

export function defineCommand<A>(spec: CommandSpec<A>): AnyCommand {
  return spec as unknown as AnyCommand;
}
