import { describe, expect, it } from 'vitest';
import { MetaCache } from '../../src/store/meta-cache.js';
import type { MessageMeta } from '../../src/mime/types.js';

const meta = (subject: string) => ({ envelope: { subject } }) as unknown as MessageMeta;
/** The reference of message row `id` (UID = id, folder 1). */
const ref = (id: number) => ({ id, folderId: 1, uid: id, internalDate: 1_700_000_000_000 });
/** The estimated cost of an entry of sealed size 100: 2 × 100 + 128. */
const COST = 328;

describe('MetaCache', () => {
  it('keeps what was used since the last rotation, drops the rest, and stays within its budget', () => {
    const cache = new MetaCache(6 * COST); // generations of three entries
    for (const id of [10, 11, 12]) cache.set(1, ref(id), meta(`m${id}`), 100);
    expect(cache.size).toBe(3);
    cache.set(1, ref(13), meta('m13'), 100); // the young generation is full: it becomes the old one
    expect(cache.size).toBe(4);
    expect(cache.get(1, ref(10))).toEqual(meta('m10')); // used: back to the young generation
    cache.set(1, ref(14), meta('m14'), 100);
    cache.set(1, ref(15), meta('m15'), 100); // rotation: 11 and 12, not used since, are dropped
    expect(cache.get(1, ref(11))).toBeUndefined();
    expect(cache.get(1, ref(12))).toBeUndefined();
    expect([10, 13, 14, 15].map((id) => cache.get(1, ref(id)))).toEqual([meta('m10'), meta('m13'), meta('m14'), meta('m15')]);
    expect(cache.bytes).toBeLessThanOrEqual(cache.maxBytes);

    for (let id = 100; id < 1000; id++) {
      cache.set(1, ref(id), meta(`m${id}`), 100);
      cache.get(1, ref(id - 7));
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
