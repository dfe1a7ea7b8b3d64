import type { DirectoryLookups } from './check-directory.js';

interface Entry<T> {
  value: T;
  expires: number;
}

/** A bounded map whose entries expire `ttlMs` after they were stored; the oldest goes first when full. */
class ExpiringMap<T> {
  readonly #entries = new Map<string, Entry<T>>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number,
  ) {}

  get(key: string): T | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expires > this.now()) return entry.value;
    this.#entries.delete(key);
    return undefined;
  }

  set(key: string, value: T): void {
    this.#entries.delete(key);
    if (this.#entries.size >= this.maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, { value, expires: this.now() + this.ttlMs });
  }
}

/**
 * The directory as the sender checks read it, remembered for `ttlSeconds` in this process: the directory
 * changes at imports (daily at most), while every submission looks its sender up. An import therefore reaches
 * the checks of a running process within `ttlSeconds`. Answers "not found" are remembered too. `ttlSeconds` 0
 * reads the store every time.
 */
export function cachedDirectoryLookups(
  lookups: DirectoryLookups,
  options: { ttlSeconds: number; maxEntries?: number; now?: () => number },
): DirectoryLookups {
  if (options.ttlSeconds <= 0) return lookups;
  const ttlMs = options.ttlSeconds * 1000;
  const max = options.maxEntries ?? 10_000;
  const now = options.now ?? Date.now;
  const mailboxes = new ExpiringMap<Awaited<ReturnType<DirectoryLookups['getMailbox']>>>(ttlMs, max, now);
  const practitioners = new ExpiringMap<Awaited<ReturnType<DirectoryLookups['getPractitioner']>>>(ttlMs, max, now);
  return {
    async getMailbox(address) {
      const cached = mailboxes.get(address);
      if (cached !== undefined) return cached;
      const value = await lookups.getMailbox(address);
      mailboxes.set(address, value);
      return value;
    },
    async getPractitioner(idNatPs) {
      const cached = practitioners.get(idNatPs);
      if (cached !== undefined) return cached;
      const value = await lookups.getPractitioner(idNatPs);
      practitioners.set(idNatPs, value);
      return value;
    },
  };
}
