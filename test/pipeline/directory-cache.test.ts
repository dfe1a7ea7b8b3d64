import { describe, expect, it } from 'vitest';
import { cachedDirectoryLookups } from '../../src/pipeline/directory-cache.js';
import type { DirectoryLookups } from '../../src/pipeline/check-directory.js';

/** A directory whose answers the test changes, counting the reads that reach it. */
function countingDirectory() {
  const practitioners = new Map<string, { active: boolean }>();
  const reads = { mailbox: 0, practitioner: 0 };
  const lookups = {
    async getMailbox(address: string) {
      reads.mailbox++;
      return address === 'known@example.org' ? ({ address } as never) : null;
    },
    async getPractitioner(id: string) {
      reads.practitioner++;
      return (practitioners.get(id) as never) ?? null;
    },
  } satisfies DirectoryLookups;
  return { lookups, practitioners, reads };
}

describe('cached directory lookups', () => {
  it('answers from memory within the TTL, "not found" included, and reads again after it', async () => {
    const dir = countingDirectory();
    let now = 1_000_000;
    const cached = cachedDirectoryLookups(dir.lookups, { ttlSeconds: 30, now: () => now });
    expect(await cached.getPractitioner('810001234565')).toBeNull();
    dir.practitioners.set('810001234565', { active: true });
    expect(await cached.getPractitioner('810001234565')).toBeNull(); // still the remembered answer
    expect(dir.reads.practitioner).toBe(1);
    now += 30_001;
    expect(await cached.getPractitioner('810001234565')).toEqual({ active: true });
    expect(dir.reads.practitioner).toBe(2);
    expect(await cached.getMailbox('known@example.org')).toEqual({ address: 'known@example.org' });
    expect(await cached.getMailbox('known@example.org')).toEqual({ address: 'known@example.org' });
    expect(dir.reads.mailbox).toBe(1);
  });

  it('keeps at most maxEntries answers, dropping the oldest', async () => {
    const dir = countingDirectory();
    const cached = cachedDirectoryLookups(dir.lookups, { ttlSeconds: 60, maxEntries: 2 });
    for (const id of ['a', 'b', 'c']) await cached.getPractitioner(id);
    await cached.getPractitioner('c');
    await cached.getPractitioner('b');
    expect(dir.reads.practitioner).toBe(3);
    await cached.getPractitioner('a'); // dropped when c came in
    expect(dir.reads.practitioner).toBe(4);
  });

  it('reads the store every time with ttlSeconds 0', async () => {
    const dir = countingDirectory();
    const cached = cachedDirectoryLookups(dir.lookups, { ttlSeconds: 0 });
    await cached.getPractitioner('x');
    await cached.getPractitioner('x');
    expect(dir.reads.practitioner).toBe(2);
  });
});
