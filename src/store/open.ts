import { existsSync } from 'node:fs';
import { blobDirectory, sqlitePath } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { openPostgresStore, postgresSchemaVersion, withPostgresInitLock } from './postgres/index.js';
import { openSqliteStore } from './sqlite/index.js';
import type { BlobOptions } from './blobs.js';
import type { Store } from './types.js';

/** The configured database cannot be reached or opened; the message says which and why (no password). */
export class StoreUnavailableError extends Error {}

async function reaching<T>(config: Config, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (config.store.engine !== 'postgres' || typeof (err as { code?: unknown }).code !== 'string') throw err;
    throw new StoreUnavailableError(`cannot use the PostgreSQL database ${describeStore(config)}: ${(err as Error).message}`, { cause: err });
  }
}

/** Opens the configured engine and runs its pending migrations. */
export function openStore(config: Config): Promise<Store> {
  const blobs: BlobOptions = { location: config.store.blobs.location, directory: blobDirectory(config) };
  switch (config.store.engine) {
    case 'sqlite':
      return openSqliteStore(sqlitePath(config), { blobs });
    case 'postgres':
      return reaching(config, () => openPostgresStore(postgresUrl(config), { poolSize: config.store.poolSize, blobs }));
  }
}

/**
 * Runs `work` (initialisation) alone among the processes sharing the configured database: under a session
 * advisory lock on PostgreSQL; SQLite serves one process, so it just runs.
 */
export async function withInitLock<T>(config: Config, work: () => Promise<T>): Promise<T> {
  if (config.store.engine === 'sqlite') return work();
  let started = false;
  try {
    return await withPostgresInitLock(postgresUrl(config), () => {
      started = true;
      return work();
    });
  } catch (err) {
    if (started) throw err;
    // Could not connect or lock: say which database, as openStore does.
    return reaching(config, () => Promise.reject(err as Error));
  }
}

/** Whether the configured database already holds a schema (without creating anything). */
export async function storeExists(config: Config): Promise<boolean> {
  switch (config.store.engine) {
    case 'sqlite':
      return existsSync(sqlitePath(config));
    case 'postgres':
      return reaching(config, async () => (await postgresSchemaVersion(postgresUrl(config))) !== null);
  }
}

/** Where the data is, for people: the SQLite file, or the PostgreSQL URL without its password. */
export function describeStore(config: Config): string {
  switch (config.store.engine) {
    case 'sqlite':
      return sqlitePath(config);
    case 'postgres': {
      const url = new URL(postgresUrl(config));
      if (url.password) url.password = '***';
      return url.toString();
    }
  }
}

export function postgresUrl(config: Config): string {
  // The schema refuses engine "postgres" without a url; this guards configs built by hand.
  if (!config.store.url) throw new Error('store.url is required when store.engine is "postgres"');
  return config.store.url;
}
