import { describe, expect, it } from 'vitest';
import { randomId } from '../src/random-id.js';
import { newQueueItemId } from '../src/queue/envelope.js';
import { newQueueId } from '../src/pipeline/index.js';

describe('random ids', () => {
  it('never begin with "-", so the command line does not read them as options', () => {
    // One base64url id in 64 began with '-': among 10,000 draws, some would have (probability 1 - (63/64)^10000).
    const ids = Array.from({ length: 10_000 }, () => randomId(9));
    expect(ids.filter((id) => id.startsWith('-'))).toEqual([]);
    expect(ids.every((id) => /^[A-Za-z0-9_][A-Za-z0-9_-]{11}$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    // Every other first character still comes up: the redraw removes only '-'.
    expect(new Set(ids.map((id) => id[0])).size).toBe(63);
  });

  it('are what queue items and transactions are named with', () => {
    // 2,000 draws each: with plain base64url ids, one beginning with '-' would come up all but surely.
    for (let i = 0; i < 2000; i++) {
      expect(newQueueItemId()).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{19}$/);
      expect(newQueueId()).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{11}$/);
    }
  });
});
