import type { DirectoryStore } from './directory-types.js';
export { ImportConflictError } from './directory-types.js';
import { PostgresDirectoryStore } from './postgres/directory.js';
import { PostgresStore } from './postgres/index.js';
import { SqliteDirectoryStore } from './sqlite/directory.js';
import { SqliteStore } from './sqlite/index.js';
import type { Store } from './types.js';

/**
 * The directory store of an open `Store`, sharing its connections (SQLite) or pool (PostgreSQL). It lives as
 * long as the store: close the store, not this.
 */
export function openDirectoryStore(store: Store): DirectoryStore {
  if (store instanceof SqliteStore) return new SqliteDirectoryStore(store.directoryAccess());
  if (store instanceof PostgresStore) return new PostgresDirectoryStore(store.directoryPool());
  throw new Error(`no directory store for the ${store.engine} engine`);
}
