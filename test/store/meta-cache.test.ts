import { describe, expect, it } from 'vitest';
import { MetaCache } from '../../src/store/meta-cache.js';
import type { MessageMeta } from '../../src/mime/types.js';

const meta = (subject: string) => ({ envelope: { subject } }) as unknown as MessageMeta;
/** The reference of message row `id` (UID = id, folder 1). */
const ref = (id: number) => ({ id, folderId: 1, uid: id, internalDate: 1_700_000_000_000 });
/** The estimated cost of an entry of sealed size 100: 2 × 100 + 128. */
const COST = 328;

describe('MetaCache', () => {
  it('drops nothing while the budget holds, then the entries unused for longest, and stays within its budget', () => {
    const cache = new MetaCache(6 * COST);
    for (const id of [10, 11, 12, 13, 14, 15]) cache.set(1, ref(id), meta(`m${id}`), 100);
    expect(cache.size).toBe(6); // the whole budget, nothing dropped
    expect(cache.bytes).toBe(6 * COST);
    cache.set(1, ref(16), meta('m16'), 100); // one over: the oldest goes
    expect(cache.size).toBe(6);
    expect(cache.get(1, ref(10))).toBeUndefined();
    expect(cache.get(1, ref(11))).toEqual(meta('m11')); // used: it is now among the newest
    cache.set(1, ref(17), meta('m17'), 100); // 12 is now the entry unused for longest
    expect(cache.get(1, ref(12))).toBeUndefined();
    expect([11, 13, 14, 15, 16, 17].map((id) => cache.get(1, ref(id)))).toEqual(['m11', 'm13', 'm14', 'm15', 'm16', 'm17'].map(meta));

    // A working set the size of the budget, used in any order, stays whole.
    for (let round = 0; round < 50; round++) {
      for (const id of [17, 11, 15, 13, 16, 14]) expect(cache.get(1, ref(id))).toEqual(meta(`m${id}`));
    }
    expect(cache.bytes).toBeLessThanOrEqual(cache.maxBytes);

    for (let id = 100; id < 1000; id++) {
      cache.set(1, ref(id), meta(`m${id}`), 100);
      cache.get(1, ref(id - 3));
      expect(cache.bytes).toBeLessThanOrEqual(cache.maxBytes);
    }
    expect(cache.get(1, ref(999))).toEqual(meta('m999'));
  });

  it('replaces an entry set again, counting it once', () => {
    const cache = new MetaCache(6 * COST);
    cache.set(1, ref(10), meta('a'), 100);
    cache.set(1, ref(10), meta('b'), 100);
    expect(cache.size).toBe(1);
    expect(cache.bytes).toBe(COST);
    expect(cache.get(1, ref(10))).toEqual(meta('b'));
  });

  it('gives an entry only to the message it was opened for: a row id given again is another message', () => {
    const cache = new MetaCache(6 * COST);
    cache.set(1, ref(10), meta('a'), 100);
    expect(cache.get(1, { ...ref(10), uid: 11 })).toBeUndefined();
    expect(cache.get(1, { ...ref(10), folderId: 2 })).toBeUndefined();
    expect(cache.get(1, { ...ref(10), internalDate: 1 })).toBeUndefined();
    expect(cache.get(1, ref(10))).toEqual(meta('a'));
  });

  it('gives an entry only to the mailbox it was opened for, and keeps nothing larger than half the budget', () => {
    const cache = new MetaCache(2 * COST);
    cache.set(1, ref(10), meta('a'), 100);
    expect(cache.get(2, ref(10))).toBeUndefined();
    cache.set(1, ref(11), meta('huge'), 101);
    expect(cache.get(1, ref(11))).toBeUndefined();
    expect(cache.get(1, ref(10))).toEqual(meta('a'));
    expect(new MetaCache(0).size).toBe(0);
    new MetaCache(0).set(1, ref(1), meta('a'), 1);
  });
});
