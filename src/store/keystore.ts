import type { KeystoreStore } from './keystore-types.js';
import { PostgresKeystoreStore } from './postgres/keystore.js';
import { PostgresStore } from './postgres/index.js';
import { SqliteKeystoreStore } from './sqlite/keystore.js';
import { SqliteStore } from './sqlite/index.js';
import type { Store } from './types.js';

/**
 * The keystore tables of an open `Store`, sharing its connections (SQLite) or pool (PostgreSQL). It lives as
 * long as the store: close the store, not this.
 */
export function openKeystoreStore(store: Store): KeystoreStore {
  if (store instanceof SqliteStore) return new SqliteKeystoreStore(store.directoryAccess());
  if (store instanceof PostgresStore) return new PostgresKeystoreStore(store.directoryPool());
  throw new Error(`no keystore for the ${store.engine} engine`);
}
