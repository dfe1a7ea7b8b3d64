import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { audit } from '../../src/audit/journal.js';
import { accessHistory, concerns } from '../../src/webmail/access-history.js';
import { openTestStore, type TestStore } from '../helpers/engines.js';

/** "Who accessed my messages": the journal's records about one mailbox, most recent first, at most `limit`. */
describe('access history', () => {
  let handle: TestStore;
  beforeEach(async () => {
    handle = await openTestStore('sqlite');
    await handle.store.migrate();
  });
  afterEach(() => handle.dispose());

  const me = '279035121518989@patient.test';

  it('keeps the records whose actor is the mailbox or whose object is in it, newest first, up to the limit', async () => {
    const events = [
      { actor: me, action: 'login', object: me, outcome: 'ok', detail: { protocol: 'webmail', remote: '10.0.0.1' } },
      { actor: 'dpi@hopital.test', action: 'deliver', object: me, outcome: 'ok' },
      { actor: 'claire@hopital.test', action: 'read', object: 'claire@hopital.test/INBOX/1', outcome: 'ok' },
      { actor: me, action: 'read', object: `${me}/INBOX/1`, outcome: 'ok', detail: { channel: 'webmail', what: 'message' } },
      // Another mailbox whose address starts like this one's: not ours.
      { actor: 'x', action: 'read', object: `${me}.evil/INBOX/1`, outcome: 'ok' },
      { actor: me, action: 'read', object: `${me}/INBOX/1/attachment/0`, outcome: 'ok', detail: { channel: 'webmail', what: 'attachment' } },
    ] as const;
    for (const e of events) await audit(handle.store, { ...e, detail: 'detail' in e ? { ...e.detail } : undefined });
    const all = await accessHistory(handle.store, me, 10);
    expect(all.map((e) => [e.action, e.actor, e.via])).toEqual([
      ['read', me, 'webmail'],
      ['read', me, 'webmail'],
      ['deliver', 'dpi@hopital.test', null],
      ['login', me, 'webmail'],
    ]);
    expect(all[0]!.seq).toBeGreaterThan(all[1]!.seq);
    const two = await accessHistory(handle.store, me, 2);
    expect(two.map((e) => e.seq)).toEqual(all.slice(0, 2).map((e) => e.seq));
    expect(await accessHistory(handle.store, 'nobody@patient.test', 10)).toEqual([]);
  });

  it('matches the mailbox exactly, never an address that only starts the same', () => {
    expect(concerns({ actor: 'a', object: me }, me)).toBe(true);
    expect(concerns({ actor: 'a', object: `${me}/Trash/3` }, me)).toBe(true);
    expect(concerns({ actor: me, object: 'anything' }, me)).toBe(true);
    expect(concerns({ actor: 'a', object: `${me}.evil` }, me)).toBe(false);
    expect(concerns({ actor: `${me}x`, object: `x${me}` }, me)).toBe(false);
  });
});
