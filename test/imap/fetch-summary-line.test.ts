import { describe, expect, it } from 'vitest';
import type { FetchItem } from '../../src/imap/fetch-items.js';
import { fetchValues, summaryFetchLine } from '../../src/imap/fetch-response.js';
import { atom, untaggedLines } from '../../src/imap/serializer.js';
import type { MessageSummary } from '../../src/store/types.js';

/** The text fast path of summary-only FETCH writes exactly what the general path writes. */
describe('summaryFetchLine', () => {
  const message: MessageSummary = { id: 7, uid: 4242, modseq: 9_007_199_254_740_000, flags: ['\\Seen', '\\Flagged', '$Label1'], internalDate: Date.UTC(2026, 10, 26, 8, 5, 3), size: 12_345, blobId: 3 };
  const kinds = ['FLAGS', 'UID', 'MODSEQ', 'INTERNALDATE', 'RFC822.SIZE'] as const;
  const general = (seq: number, items: FetchItem[], m: MessageSummary) => untaggedLines([[seq, atom('FETCH'), fetchValues(items, m, null, null)]]).toString('latin1');

  it.each([[['FLAGS']], [['UID', 'FLAGS']], [[...kinds]], [['RFC822.SIZE', 'INTERNALDATE', 'MODSEQ']]] as const)('%j', (names) => {
    const items = names.map((kind) => ({ kind }) as FetchItem);
    expect(summaryFetchLine(17, items, message)).toBe(general(17, items, message));
    expect(summaryFetchLine(1, items, { ...message, flags: [] })).toBe(general(1, items, { ...message, flags: [] }));
  });

  it('leaves to the general path what needs more than the summary, or a flag that is not printable ASCII', () => {
    expect(summaryFetchLine(1, [{ kind: 'ENVELOPE' }], message)).toBeNull();
    expect(summaryFetchLine(1, [{ kind: 'FLAGS' }], { ...message, flags: ['étiquette'] })).toBeNull();
  });
});
