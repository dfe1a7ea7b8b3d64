import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { BlobOptions } from '../../src/store/blobs.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/types.js';

/** A fresh, real database per call; `dispose` closes it and removes its files (or drops the database). */
export interface TestStore {
  store: Store;
  dir: string;
  /** Where blobs go; the blob directory is `<dir>/blobs` (shared by every `Store` of the handle). */
  blobs: BlobOptions;
  /** The PostgreSQL database URL (postgres engine only). */
  url?: string;
  /** Another `Store` on the same database (a second process, for PostgreSQL); closed by `dispose`. */
  openAnother(): Promise<Store>;
  reopen(): Promise<Store>;
  dispose(): Promise<void>;
}

export const ENGINES = ['sqlite', 'postgres'] as const;
export type Engine = (typeof ENGINES)[number];

export const BLOB_LOCATIONS = ['database', 'directory'] as const;
export type BlobLocation = (typeof BLOB_LOCATIONS)[number];

/** Every engine with every blob location, for `describe.each`. */
export const ENGINE_BLOBS: readonly [Engine, BlobLocation][] = ENGINES.flatMap((e) => BLOB_LOCATIONS.map((b): [Engine, BlobLocation] => [e, b]));

/** The maintenance database the tests create their databases from (superuser, trust auth on 127.0.0.1). */
export const PG_ADMIN_URL = process.env.MSS_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Creates an empty database `mss_test_<random>`; returns its URL and the function that drops it. */
export async function createTestDatabase(): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const name = `mss_test_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

export async function openTestStore(engine: Engine, location: BlobLocation = 'database'): Promise<TestStore> {
  switch (engine) {
    case 'sqlite': {
      const dir = mkdtempSync(path.join(tmpdir(), 'mss-store-'));
      const file = path.join(dir, 'mss.sqlite');
      const blobs: BlobOptions = { location, directory: path.join(dir, 'blobs') };
      const others: Store[] = [];
      const handle: TestStore = {
        store: await openSqliteStore(file, { blobs }),
        dir,
        blobs,
        async openAnother() {
          const other = await openSqliteStore(file, { blobs });
          others.push(other);
          return other;
        },
        async reopen() {
          await handle.store.close();
          handle.store = await openSqliteStore(file, { blobs });
          return handle.store;
        },
        async dispose() {
          await Promise.all([handle.store, ...others].map((s) => s.close()));
          rmSync(dir, { recursive: true, force: true });
        },
      };
      return handle;
    }
    case 'postgres': {
      const dir = mkdtempSync(path.join(tmpdir(), 'mss-store-'));
      const blobs: BlobOptions = { location, directory: path.join(dir, 'blobs') };
      const db = await createTestDatabase();
      const others: Store[] = [];
      const handle: TestStore = {
        store: await openPostgresStore(db.url, { poolSize: 5, blobs }),
        dir,
        blobs,
        url: db.url,
        async openAnother() {
          const other = await openPostgresStore(db.url, { poolSize: 5, blobs });
          others.push(other);
          return other;
        },
        async reopen() {
          await handle.store.close();
          handle.store = await openPostgresStore(db.url, { poolSize: 5, blobs });
          return handle.store;
        },
        async dispose() {
          await Promise.all([handle.store, ...others].map((s) => s.close()));
          await db.drop();
          rmSync(dir, { recursive: true, force: true });
        },
      };
      return handle;
    }
  }
}

export function tempDir(prefix = 'mss-'): { dir: string; dispose(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A blob's sealed bytes gathered whole (tests only: the port hands them out in pieces); null when there is none. */
export async function blobBytes(store: Pick<Store, 'readBlob'>, blobId: number): Promise<Buffer | null> {
  const pieces = await store.readBlob(blobId);
  if (!pieces) return null;
  const out: Buffer[] = [];
  for await (const piece of pieces) out.push(piece);
  return Buffer.concat(out);
}
