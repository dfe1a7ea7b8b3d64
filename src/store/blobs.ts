import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, opendir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';

/**
 * Sealed message bodies ("blobs"), engine-neutral parts: how they are cut into chunk rows, and the blob
 * directory (one file per blob) that both engines can use instead of chunk rows (`store.blobs` in the config,
 * docs/decisions/0004-postgresql-engine.md). The bytes are sealed before they get here; nothing in this file
 * reads them.
 */

/** Sealed bytes handed to `insertBlob`: one Buffer, or pieces of any size read one at a time. */
export type BlobBody = Buffer | Iterable<Buffer> | AsyncIterable<Buffer>;

/** Bytes per chunk row (database location) and at most per piece handed out by `readBlob`. */
export const BLOB_CHUNK = 256 * 1024;

export interface BlobOptions {
  /** Where new blobs go; existing blobs are read from wherever their row says they are. */
  location: 'database' | 'directory';
  /** The blob directory (read for blobs stored there, written when `location` is 'directory'). */
  directory: string | null;
}

export const DEFAULT_BLOB_OPTIONS: BlobOptions = { location: 'database', directory: null };

/** A blob row says where its bytes are, but they are not all there (removed meanwhile, or damaged). */
export class BlobMissingError extends Error {}

/** What a sweep removed: blob rows no message refers to, and files of the blob directory no row refers to. */
export interface BlobSweep {
  rows: number;
  files: number;
}

export interface BlobSweepOptions {
  /**
   * Files younger than this are kept even when no committed row names them: a unit of work writes its file
   * before it commits the row (default one hour; no unit of work lasts that long).
   */
  graceMs?: number;
}

export const DEFAULT_SWEEP_GRACE_MS = 60 * 60_000;

const started = new WeakSet<object>();

/**
 * Marks a one-shot source (a stream, a generator) as being read, and refuses a second read. A unit of work may
 * run again (a PostgreSQL deadlock victim): read a second time, a spent stream would yield nothing and store an
 * empty body without a word, so its `work` must make a fresh stream each run (or pass a Buffer or an array).
 */
export function readOnce(source: Buffer | Iterable<Buffer> | AsyncIterable<Buffer>): void {
  if (Buffer.isBuffer(source) || Array.isArray(source)) return;
  if (started.has(source)) throw new Error('this body stream was already read: a unit of work run again must make a fresh one');
  started.add(source);
}

/** `body` as pieces of exactly `size` bytes (the last one shorter), holding at most one piece at a time. */
export async function* rechunk(body: BlobBody, size = BLOB_CHUNK): AsyncIterable<Buffer> {
  if (Buffer.isBuffer(body)) {
    for (let start = 0; start < body.length; start += size) yield body.subarray(start, start + size);
    return;
  }
  readOnce(body);
  let piece = Buffer.allocUnsafe(size);
  let filled = 0;
  for await (const chunk of body) {
    if (!Buffer.isBuffer(chunk)) throw new TypeError('a blob body yields Buffers');
    let offset = 0;
    while (offset < chunk.length) {
      const used = Math.min(size - filled, chunk.length - offset);
      chunk.copy(piece, filled, offset, offset + used);
      filled += used;
      offset += used;
      if (filled === size) {
        yield piece;
        piece = Buffer.allocUnsafe(size);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield piece.subarray(0, filled);
}

/** Blob file names: 32 lower-case hex digits, under a directory named by their first two. */
const NAME = /^[0-9a-f]{32}$/;
const TEMP = /^[0-9a-f]{32}\.tmp$/;

async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function removeQuietly(file: string): Promise<boolean> {
  try {
    await unlink(file);
    return true;
  } catch {
    // Already gone, or not removable now: the sweep takes it later.
    return false;
  }
}

/**
 * The blob directory: `<dir>/<2 hex>/<32 hex>`, one file per blob, written once and never changed. With
 * several processes it must be one directory shared by all of them (the same path on every machine).
 */
export class BlobFiles {
  constructor(readonly directory: string | null) {}

  #root(): string {
    if (this.directory === null) throw new BlobMissingError('no blob directory is configured (store.blobs.directory)');
    return this.directory;
  }

  path(name: string): string {
    if (!NAME.test(name)) throw new BlobMissingError(`not a blob file name: ${JSON.stringify(name)}`);
    return path.join(this.#root(), name.slice(0, 2), name);
  }

  /**
   * Writes `body` to a new file and makes it durable (temporary file fsync'd, renamed, directory fsync'd)
   * before returning, so the row that names it can be committed after. Returns the file's name and size.
   */
  async write(body: BlobBody): Promise<{ name: string; size: number }> {
    const root = this.#root();
    const name = randomBytes(16).toString('hex');
    const dir = path.join(root, name.slice(0, 2));
    const created = await mkdir(dir, { recursive: true, mode: 0o700 });
    const final = path.join(dir, name);
    const temp = `${final}.tmp`;
    const handle = await open(temp, 'wx', 0o600);
    let size = 0;
    try {
      try {
        for await (const chunk of rechunk(body)) {
          await handle.write(chunk);
          size += chunk.length;
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, final);
      await fsyncDirectory(dir);
      // A directory created just now must itself be in its parent for the file to survive a crash.
      if (created !== undefined) {
        for (let d = dir; ; d = path.dirname(d)) {
          await fsyncDirectory(path.dirname(d));
          if (path.resolve(d) === path.resolve(created)) break;
        }
      }
    } catch (err) {
      await removeQuietly(temp);
      await removeQuietly(final);
      throw err;
    }
    return { name, size };
  }

  /** The file's bytes in pieces of at most `BLOB_CHUNK`; fails unless it holds exactly `size` bytes. */
  async *read(name: string, size: number): AsyncIterable<Buffer> {
    let seen = 0;
    try {
      for await (const chunk of createReadStream(this.path(name), { highWaterMark: BLOB_CHUNK })) {
        seen += (chunk as Buffer).length;
        yield chunk as Buffer;
      }
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ENOENT') throw new BlobMissingError(`blob file ${name} is missing`);
      throw err;
    }
    if (seen !== size) throw new BlobMissingError(`blob file ${name} holds ${seen} bytes, ${size} expected`);
  }

  /** Removes files (after the commit that dropped their rows, or the rollback of the unit of work that wrote them). */
  async remove(names: Iterable<string>): Promise<number> {
    let removed = 0;
    for (const name of names) if (await removeQuietly(this.path(name))) removed++;
    return removed;
  }

  /**
   * Files of the directory last changed before `before` (ms since epoch), blob files and temporary files left by
   * an interrupted write, in batches. `isTemp` files are never named by a row.
   */
  async *listOlderThan(before: number, batch = 500): AsyncIterable<{ name: string; file: string; isTemp: boolean }[]> {
    if (this.directory === null) return;
    let out: { name: string; file: string; isTemp: boolean }[] = [];
    let top;
    try {
      top = await opendir(this.directory);
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ENOENT') return;
      throw err;
    }
    for await (const entry of top) {
      if (!entry.isDirectory() || !/^[0-9a-f]{2}$/.test(entry.name)) continue;
      const sub = path.join(this.directory, entry.name);
      for await (const f of await opendir(sub)) {
        const isTemp = TEMP.test(f.name);
        if (!f.isFile() || !(isTemp || NAME.test(f.name)) || !f.name.startsWith(entry.name)) continue;
        const file = path.join(sub, f.name);
        const info = await stat(file).catch(() => null);
        if (info === null || info.mtimeMs >= before) continue;
        out.push({ name: isTemp ? f.name.slice(0, 32) : f.name, file, isTemp });
        if (out.length >= batch) {
          yield out;
          out = [];
        }
      }
    }
    if (out.length > 0) yield out;
  }
}

/**
 * Files of one unit of work: those it wrote (removed if it rolls back) and those whose rows it deleted (removed
 * once it commits).
 */
export class BlobChanges {
  readonly written: string[] = [];
  readonly dropped: string[] = [];

  /** Applies the outcome of the unit of work to the directory; never throws (the sweep takes what is left). */
  async settle(files: BlobFiles, committed: boolean): Promise<void> {
    const names = committed ? this.dropped : this.written;
    if (names.length === 0) return;
    await files.remove(names).catch(() => 0);
  }
}

/** Sweeps the files of the directory: those older than the grace period that no row names are removed. */
export async function sweepFiles(
  files: BlobFiles,
  named: (names: string[]) => Promise<Set<string>>,
  graceMs: number,
): Promise<number> {
  let removed = 0;
  for await (const batch of files.listOlderThan(Date.now() - graceMs)) {
    const known = await named(batch.filter((f) => !f.isTemp).map((f) => f.name));
    for (const f of batch) {
      if (!f.isTemp && known.has(f.name)) continue;
      try {
        await unlink(f.file);
        removed++;
      } catch {
        // Gone meanwhile.
      }
    }
  }
  return removed;
}

/** Chunk rows asked for per query when a blob is read from the database. */
const READ_AHEAD = 4;

/**
 * A blob's chunk rows in order, a few per query (`fetch(fromSeq, limit)` returns rows with `seq >= fromSeq`
 * in order). Fails if a chunk is missing or the bytes do not add up to `size` (the blob was removed meanwhile).
 */
export async function* readChunks(
  blobId: number,
  size: number,
  fetch: (fromSeq: number, limit: number) => Promise<{ seq: number; data: Buffer }[]>,
): AsyncIterable<Buffer> {
  let seq = 0;
  let seen = 0;
  for (;;) {
    const rows = await fetch(seq, READ_AHEAD);
    for (const row of rows) {
      if (row.seq !== seq) throw new BlobMissingError(`blob ${blobId}: chunk ${seq} is missing`);
      seq++;
      seen += row.data.length;
      yield row.data;
    }
    if (rows.length < READ_AHEAD) break;
  }
  if (seen !== size) throw new BlobMissingError(`blob ${blobId}: ${seen} bytes read, ${size} expected (removed while being read?)`);
}
