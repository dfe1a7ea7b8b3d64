import { PostgresStore } from './postgres/index.js';
import { PostgresTrustStore } from './postgres/trust.js';
import { SqliteStore } from './sqlite/index.js';
import { SqliteTrustStore } from './sqlite/trust.js';
import type { TrustStore } from './trust-types.js';
import type { Store } from './types.js';

/**
 * The trust-space tables of an open `Store`, sharing its connections (SQLite) or pool (PostgreSQL). It lives
 * as long as the store: close the store, not this.
 */
export function openTrustStore(store: Store): TrustStore {
  if (store instanceof SqliteStore) return new SqliteTrustStore(store.directoryAccess());
  if (store instanceof PostgresStore) return new PostgresTrustStore(store.directoryPool());
  throw new Error(`no trust store for the ${store.engine} engine`);
}
