/**
 * Our server for the IMAP bench: an operator (bench/_operator.ts) whose implicit-TLS IMAP listener is on a known
 * loopback port and whose connection limits admit the bench's idle sessions, bench users created and filled
 * through the store API (`createMailbox`, then `SealedMail.append` — the delivery path: sealed body, sealed
 * metadata with ENVELOPE/BODYSTRUCTURE precomputed — many messages per unit of work), and `mss start` in its own
 * process so that its memory can be read from /proc.
 */
import net from 'node:net';
import path from 'node:path';
import { createMailbox } from '../src/accounts/mailboxes.js';
import { loadConfig } from '../src/config/load.js';
import { openKeyring } from '../src/init.js';
import { openStore } from '../src/store/open.js';
import { SealedMail } from '../src/store/sealed-mail.js';
import type { FolderRow, MailboxRow, Store } from '../src/store/types.js';
import { createOperator, startServer, type Operator, type Server } from './_operator.js';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface ImapOperator {
  operator: Operator;
  /** The implicit-TLS IMAP port every server started on this operator listens on. */
  port: number;
}

/** A fresh operator whose IMAP listeners admit `maxConnections` sessions, all from 127.0.0.1. */
export async function createImapOperator(maxConnections: number, processes = 1): Promise<ImapOperator> {
  const port = await freePort();
  const limit = maxConnections + 50;
  const operator = createOperator({
    imap: { plain: { host: '127.0.0.1', port: 0 }, tls: { host: '127.0.0.1', port }, maxConnections: limit, maxConnectionsPerIp: limit },
    processes,
  });
  return { operator, port };
}

export async function startOurs(o: ImapOperator): Promise<Server> {
  return startServer(o.operator.dir);
}

/** The operator's store, opened in this process (the server must not be running). */
export class OurMailboxes {
  readonly #mail: SealedMail;
  readonly #boxes = new Map<string, { mailbox: MailboxRow; inbox: FolderRow }>();

  private constructor(
    readonly store: Store,
    private readonly keyring: ReturnType<typeof openKeyring>,
  ) {
    this.#mail = new SealedMail(store, keyring);
  }

  static async open(o: ImapOperator): Promise<OurMailboxes> {
    const config = loadConfig(path.join(o.operator.dir, 'config.json'));
    const keyring = openKeyring(config);
    return new OurMailboxes(await openStore(config), keyring);
  }

  async addUser(address: string, password: string): Promise<void> {
    const mailbox = await createMailbox(this.store, this.keyring, { address, type: 'ORG', password, actor: 'bench' });
    const inbox = await this.store.getFolder(mailbox.id, 'INBOX');
    if (!inbox) throw new Error(`${address} has no INBOX`);
    this.#boxes.set(address, { mailbox, inbox });
  }

  /** Appends the messages to the user's INBOX in one unit of work. */
  async addMessages(address: string, messages: readonly { raw: Buffer; flags: readonly string[]; internalDate: number }[]): Promise<void> {
    const box = this.#boxes.get(address);
    if (!box) throw new Error(`unknown bench user ${address}`);
    await this.store.transaction(async (tx) => {
      for (const m of messages) await this.#mail.append(tx, box.mailbox, box.inbox, m.raw, { flags: [...m.flags], internalDate: m.internalDate });
    });
  }

  close(): Promise<void> {
    return this.store.close();
  }
}
