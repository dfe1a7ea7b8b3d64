import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

/**
 * Makes the commits of a SQLite database in WAL mode durable without blocking the event loop. The writer runs with
 * `synchronous = NORMAL`: a COMMIT writes its frames to the WAL and returns without an fsync (SQLite still syncs
 * the WAL before each checkpoint, and the database after it). Each unit of work then waits here, after releasing
 * the writer, for an fdatasync of the WAL on a libuv thread: the next units commit meanwhile, and one fdatasync
 * covers every commit made before it started. A unit of work resolves only once its commit is on disk, as with
 * `synchronous = FULL`; what differs is that other readers may see a commit up to one fdatasync before it is
 * durable (docs/decisions/0016-sqlite-wal-sync.md).
 */
export class WalSync {
  #handle: FileHandle | null = null;
  /** Commits counted so far, and how many of them the last completed fdatasync covered. */
  #committed = 0;
  #synced = 0;
  #running: Promise<void> | null = null;
  #closed = false;

  constructor(private readonly databaseFile: string) {}

  /** Call right after a COMMIT returns: the ticket to wait for with `durable`. */
  committed(): number {
    return ++this.#committed;
  }

  /** Resolves once every commit up to `ticket` is on disk; rejects if the fdatasync fails (durability unknown). */
  async durable(ticket: number): Promise<void> {
    while (this.#synced < ticket) {
      this.#running ??= this.#sync().finally(() => (this.#running = null));
      await this.#running;
    }
  }

  async #sync(): Promise<void> {
    const target = this.#committed;
    if (this.#closed) throw new Error('store is closed');
    if (!this.#handle) {
      this.#handle = await open(`${this.databaseFile}-wal`, 'r');
      // The WAL file's name must survive a crash too (SQLite's own FULL mode syncs the directory likewise).
      const dir = await open(path.dirname(this.databaseFile), 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    }
    await this.#handle.datasync();
    if (target > this.#synced) this.#synced = target;
  }

  /** After the last commit: waits for a sync in flight, then lets the file go. */
  async close(): Promise<void> {
    await this.#running?.catch(() => {});
    this.#closed = true;
    await this.#handle?.close();
    this.#handle = null;
  }
}
