import { describe, expect, it } from 'vitest';
import { MetaCache } from '../../src/store/meta-cache.js';
import type { MessageMeta } from '../../src/mime/types.js';

const meta = (subject: string) => ({ envelope: { subject } }) as unknown as MessageMeta;

describe('MetaCache', () => {
  it('keeps the most recently used entries within its budget (three times the sealed size each)', () => {
    const cache = new MetaCache(3 * 300);
    cache.set(1, 10, meta('a'), 100);
    cache.set(1, 11, meta('b'), 100);
    cache.set(1, 12, meta('c'), 100);
    expect(cache.size).toBe(3);
    expect(cache.get(1, 10)).toEqual(meta('a')); // 10 is now the most recent
    cache.set(1, 13, meta('d'), 100);
    expect(cache.get(1, 11)).toBeUndefined();
    expect([10, 12, 13].map((id) => cache.get(1, id))).toEqual([meta('a'), meta('c'), meta('d')]);
  });

  it('gives an entry only to the mailbox it was opened for, and keeps nothing larger than the budget', () => {
    const cache = new MetaCache(3 * 100);
    cache.set(1, 10, meta('a'), 50);
    expect(cache.get(2, 10)).toBeUndefined();
    cache.set(1, 11, meta('huge'), 101);
    expect(cache.get(1, 11)).toBeUndefined();
    expect(cache.get(1, 10)).toEqual(meta('a'));
    expect(new MetaCache(0).size).toBe(0);
  });
});
