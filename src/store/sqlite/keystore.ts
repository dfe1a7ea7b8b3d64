import type Database from 'better-sqlite3';
import { keystoreRowReaders } from '../keystore-rows.js';
import type {
  CorrespondentKeyRow,
  CredentialRow,
  KeystoreReads,
  KeystoreStore,
  KeystoreTx,
  NewCorrespondentKey,
  NewCredential,
} from '../keystore-types.js';
import type { Raw } from '../rows.js';
import { readBytes, readInt, readText, readTextOrNull } from './rows.js';

type Db = Database.Database;

/** What the keystore needs of the `SqliteStore` it lives beside (`SqliteStore.directoryAccess()`). */
export interface SqliteKeystoreAccess {
  reader: Db;
  /** Runs `work` with the writer connection under the store's unit-of-work lock (no transaction opened). */
  withWriter<T>(work: (writer: Db) => Promise<T>): Promise<T>;
}

export const { toCredential, toCorrespondentKey } = keystoreRowReaders({ readInt, readText, readTextOrNull, readBytes });

class Reads implements KeystoreReads {
  constructor(protected readonly db: Db) {}

  protected one(sql: string, ...params: unknown[]): Raw | undefined {
    return this.db.prepare(sql).get(...params) as Raw | undefined;
  }

  protected all(sql: string, ...params: unknown[]): Raw[] {
    return this.db.prepare(sql).all(...params) as Raw[];
  }

  async listCredentials(mailboxId?: number): Promise<CredentialRow[]> {
    const rows =
      mailboxId === undefined
        ? this.all('SELECT * FROM mailbox_credentials ORDER BY id')
        : this.all('SELECT * FROM mailbox_credentials WHERE mailbox_id = ? ORDER BY id', mailboxId);
    return rows.map(toCredential);
  }

  async getCredential(id: number): Promise<CredentialRow | null> {
    const row = this.one('SELECT * FROM mailbox_credentials WHERE id = ?', id);
    return row ? toCredential(row) : null;
  }

  async listCorrespondentKeys(address: string): Promise<CorrespondentKeyRow[]> {
    return this.all('SELECT * FROM correspondent_keys WHERE address = ? ORDER BY id', address.toLowerCase()).map(toCorrespondentKey);
  }
}

class Tx extends Reads implements KeystoreTx {
  async lockMailbox(_mailboxId: number): Promise<void> {
    // Units of work are serialised by BEGIN IMMEDIATE and the store's writer lock.
  }

  async insertCredential(c: NewCredential): Promise<{ row: CredentialRow; created: boolean }> {
    const info = this.db
      .prepare(
        `INSERT INTO mailbox_credentials (mailbox_id, usage, format, certificate, chain, sealed_key, fingerprint, serial, issuer, subject,
                                          not_before, not_after, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (mailbox_id, usage, fingerprint) DO NOTHING`,
      )
      .run(
        c.mailboxId,
        c.usage,
        c.format,
        c.certificate,
        c.chainPem,
        c.sealedKey,
        c.fingerprint,
        c.serial,
        c.issuer,
        c.subject,
        c.notBefore,
        c.notAfter,
        Date.now(),
      );
    const row = this.one(
      'SELECT * FROM mailbox_credentials WHERE mailbox_id = ? AND usage = ? AND fingerprint = ?',
      c.mailboxId,
      c.usage,
      c.fingerprint,
    );
    return { row: toCredential(row!), created: info.changes === 1 };
  }

  async revokeCredential(id: number, revokedAt: number, reason: string): Promise<boolean> {
    const info = this.db
      .prepare('UPDATE mailbox_credentials SET revoked_at = ?, revocation_reason = ? WHERE id = ? AND revoked_at IS NULL')
      .run(revokedAt, reason, id);
    return info.changes === 1;
  }

  async insertCorrespondentKey(k: NewCorrespondentKey): Promise<{ row: CorrespondentKeyRow; created: boolean }> {
    const address = k.address.toLowerCase();
    const info = this.db
      .prepare(
        `INSERT INTO correspondent_keys (address, format, certificate, fingerprint, source, added_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (address, fingerprint) DO NOTHING`,
      )
      .run(address, k.format, k.certificate, k.fingerprint, k.source, Date.now());
    const row = this.one('SELECT * FROM correspondent_keys WHERE address = ? AND fingerprint = ?', address, k.fingerprint);
    return { row: toCorrespondentKey(row!), created: info.changes === 1 };
  }

  async deleteCorrespondentKey(id: number): Promise<boolean> {
    return this.db.prepare('DELETE FROM correspondent_keys WHERE id = ?').run(id).changes === 1;
  }
}

/** The keystore tables on the connections of a `SqliteStore`: reads on its reader, units of work on its writer. */
export class SqliteKeystoreStore extends Reads implements KeystoreStore {
  readonly engine = 'sqlite' as const;
  readonly #withWriter: SqliteKeystoreAccess['withWriter'];

  constructor(access: SqliteKeystoreAccess) {
    super(access.reader);
    this.#withWriter = access.withWriter;
  }

  transaction<T>(work: (tx: KeystoreTx) => Promise<T>): Promise<T> {
    return this.#withWriter(async (db) => {
      db.exec('BEGIN IMMEDIATE');
      try {
        const result = await work(new Tx(db));
        db.exec('COMMIT');
        return result;
      } catch (err) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw err;
      }
    });
  }
}
