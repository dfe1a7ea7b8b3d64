import type pg from 'pg';
import { inPoolTransaction } from './pool-transaction.js';
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

type Run = (sql: string, params?: unknown[]) => Promise<Raw[]>;

export const { toCredential, toCorrespondentKey } = keystoreRowReaders({ readInt, readText, readTextOrNull, readBytes });

class Reads implements KeystoreReads {
  constructor(protected readonly run: Run) {}

  async listCredentials(mailboxId?: number): Promise<CredentialRow[]> {
    const rows =
      mailboxId === undefined
        ? await this.run('SELECT * FROM mailbox_credentials ORDER BY id')
        : await this.run('SELECT * FROM mailbox_credentials WHERE mailbox_id = $1 ORDER BY id', [mailboxId]);
    return rows.map(toCredential);
  }

  async getCredential(id: number): Promise<CredentialRow | null> {
    const [row] = await this.run('SELECT * FROM mailbox_credentials WHERE id = $1', [id]);
    return row ? toCredential(row) : null;
  }

  async listCorrespondentKeys(address: string): Promise<CorrespondentKeyRow[]> {
    return (await this.run('SELECT * FROM correspondent_keys WHERE address = $1 ORDER BY id', [address.toLowerCase()])).map(toCorrespondentKey);
  }
}

class Tx extends Reads implements KeystoreTx {
  async lockMailbox(mailboxId: number): Promise<void> {
    await this.run('SELECT id FROM mailboxes WHERE id = $1 FOR UPDATE', [mailboxId]);
  }

  async insertCredential(c: NewCredential): Promise<{ row: CredentialRow; created: boolean }> {
    const inserted = await this.run(
      `INSERT INTO mailbox_credentials (mailbox_id, usage, format, certificate, chain, sealed_key, fingerprint, serial, issuer, subject,
                                        not_before, not_after, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
       ON CONFLICT (mailbox_id, usage, fingerprint) DO NOTHING
       RETURNING *`,
      [c.mailboxId, c.usage, c.format, c.certificate, c.chainPem, c.sealedKey, c.fingerprint, c.serial, c.issuer, c.subject, c.notBefore, c.notAfter, Date.now()],
    );
    if (inserted[0]) return { row: toCredential(inserted[0]), created: true };
    const [row] = await this.run('SELECT * FROM mailbox_credentials WHERE mailbox_id = $1 AND usage = $2 AND fingerprint = $3', [
      c.mailboxId,
      c.usage,
      c.fingerprint,
    ]);
    return { row: toCredential(row!), created: false };
  }

  async revokeCredential(id: number, revokedAt: number, reason: string): Promise<boolean> {
    const rows = await this.run(
      'UPDATE mailbox_credentials SET revoked_at = $1, revocation_reason = $2 WHERE id = $3 AND revoked_at IS NULL RETURNING id',
      [revokedAt, reason, id],
    );
    return rows.length === 1;
  }

  async insertCorrespondentKey(k: NewCorrespondentKey): Promise<{ row: CorrespondentKeyRow; created: boolean }> {
    const address = k.address.toLowerCase();
    const inserted = await this.run(
      `INSERT INTO correspondent_keys (address, format, certificate, fingerprint, source, added_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (address, fingerprint) DO NOTHING
       RETURNING *`,
      [address, k.format, k.certificate, k.fingerprint, k.source, Date.now()],
    );
    if (inserted[0]) return { row: toCorrespondentKey(inserted[0]), created: true };
    const [row] = await this.run('SELECT * FROM correspondent_keys WHERE address = $1 AND fingerprint = $2', [address, k.fingerprint]);
    return { row: toCorrespondentKey(row!), created: false };
  }

  async deleteCorrespondentKey(id: number): Promise<boolean> {
    return (await this.run('DELETE FROM correspondent_keys WHERE id = $1 RETURNING id', [id])).length === 1;
  }
}

function runner(target: pg.Pool | pg.PoolClient): Run {
  return async (sql, params = []) => (await target.query<Raw>(sql, params)).rows;
}

/**
 * The keystore tables on the pool of a `PostgresStore` (`PostgresStore.directoryPool()`): reads on any pooled
 * client (committed data), each unit of work on one client between BEGIN and COMMIT.
 */
export class PostgresKeystoreStore extends Reads implements KeystoreStore {
  readonly engine = 'postgres' as const;
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    super(runner(pool));
    this.#pool = pool;
  }

  async transaction<T>(work: (tx: KeystoreTx) => Promise<T>): Promise<T> {
    return inPoolTransaction(this.#pool, (client) => work(new Tx(runner(client))));
  }
}
