import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMailbox } from '../../src/accounts/mailboxes.js';
import { Keyring } from '../../src/crypto/seal.js';
import type { MailboxRow } from '../../src/store/types.js';
import { openWebmailSessions, type WebmailSessionRow, type WebmailSessionStore } from '../../src/store/webmail-sessions.js';
import { hashToken, SESSION_COOKIE, Sessions } from '../../src/webmail/sessions.js';
import { ENGINES, openTestStore, type TestStore } from '../helpers/engines.js';

/** The webmail's session rows on both engines, and the expiry rules of `Sessions` on them (a fake clock). */
describe.each(ENGINES)('webmail sessions (%s)', (engine) => {
  let handle: TestStore;
  let sessions: WebmailSessionStore;
  let mailbox: MailboxRow;
  let other: MailboxRow;

  beforeEach(async () => {
    handle = await openTestStore(engine);
    await handle.store.migrate();
    const keyring = new Keyring(Buffer.alloc(32, 7));
    mailbox = await createMailbox(handle.store, keyring, { address: 'jean.dupont@hopital.test', type: 'PER', password: null });
    other = await createMailbox(handle.store, keyring, { address: 'claire.martin@hopital.test', type: 'PER', password: null });
    sessions = openWebmailSessions(handle.store);
  });
  afterEach(() => handle.dispose());

  const row = (over: Partial<WebmailSessionRow> = {}): WebmailSessionRow => ({
    idHash: 'a'.repeat(64),
    mailboxId: mailbox.id,
    csrf: 'csrf-token',
    stage: 'complete',
    lang: 'fr',
    createdAt: 1_000,
    lastSeenAt: 1_000,
    expiresAt: 100_000,
    ...over,
  });

  it('stores, reads, touches and deletes a session by the hash of its cookie', async () => {
    await sessions.create(row());
    expect(await sessions.get('a'.repeat(64))).toEqual(row());
    expect(await sessions.get('b'.repeat(64))).toBeNull();
    expect(await sessions.touch('a'.repeat(64), { lastSeenAt: 2_000, stage: 'complete', lang: 'en' })).toBe(true);
    expect(await sessions.get('a'.repeat(64))).toMatchObject({ lastSeenAt: 2_000, lang: 'en', stage: 'complete' });
    expect(await sessions.touch('b'.repeat(64), { lastSeenAt: 2_000 })).toBe(false);
    expect(await sessions.delete('a'.repeat(64))).toBe(true);
    expect(await sessions.delete('a'.repeat(64))).toBe(false);
    expect(await sessions.get('a'.repeat(64))).toBeNull();
  });

  it('refuses a second session with the same id and a stage outside the two known', async () => {
    await sessions.create(row());
    await expect(sessions.create(row())).rejects.toThrow();
    await expect(sessions.create(row({ idHash: 'c'.repeat(64), stage: JSON.parse('"other"') }))).rejects.toThrow();
  });

  it('ends every session of one mailbox, and prunes the expired and the idle ones', async () => {
    await sessions.create(row({ idHash: '1'.repeat(64) }));
    await sessions.create(row({ idHash: '2'.repeat(64) }));
    await sessions.create(row({ idHash: '3'.repeat(64), mailboxId: other.id }));
    expect(await sessions.deleteForMailbox(mailbox.id)).toBe(2);
    expect(await sessions.get('3'.repeat(64))).not.toBeNull();
    await sessions.create(row({ idHash: '4'.repeat(64), expiresAt: 5_000, lastSeenAt: 4_000 }));
    await sessions.create(row({ idHash: '5'.repeat(64), expiresAt: 50_000, lastSeenAt: 100 }));
    await sessions.create(row({ idHash: '6'.repeat(64), expiresAt: 50_000, lastSeenAt: 4_000 }));
    // Now 5 000, idle limit 1 000: '4' reached its absolute expiry, '3' and '5' are idle, '6' lives.
    expect(await sessions.prune(5_000, 4_000)).toBe(3);
    expect(await sessions.get('6'.repeat(64))).not.toBeNull();
  });

  it('Sessions: a cookie resolves until the idle limit or the absolute limit, whichever comes first', async () => {
    let now = 1_000_000;
    const service = new Sessions(sessions, handle.store, { idleMs: 60_000, absoluteMs: 150_000, secondFactorMs: 30_000 }, () => now);
    const { setCookie, row: started } = await service.start(mailbox, 'complete', 'fr');
    expect(setCookie).toMatch(new RegExp(`^${SESSION_COOKIE}=[A-Za-z0-9_-]{43}; Path=/; Secure; SameSite=Strict; HttpOnly; Max-Age=150$`));
    const token = /=([^;]+);/.exec(setCookie)![1]!;
    expect(started.idHash).toBe(hashToken(token));
    const req = (cookie: string) => ({ headers: { cookie } });
    expect((await service.resolve(req(`${SESSION_COOKIE}=${token}`)))?.mailbox.address).toBe(mailbox.address);
    // Active every 50 s: still alive at 100 s (idle limit 60 s)…
    now += 50_000;
    expect(await service.resolve(req(`${SESSION_COOKIE}=${token}`))).not.toBeNull();
    now += 50_000;
    expect(await service.resolve(req(`${SESSION_COOKIE}=${token}`))).not.toBeNull();
    // …but not past the absolute limit of 150 s, however active.
    now += 50_000;
    expect(await service.resolve(req(`${SESSION_COOKIE}=${token}`))).toBeNull();
    expect(await sessions.get(hashToken(token))).toBeNull();

    const idle = await service.start(mailbox, 'complete', 'fr');
    const idleToken = /=([^;]+);/.exec(idle.setCookie)![1]!;
    now += 60_000;
    expect(await service.resolve(req(`${SESSION_COOKIE}=${idleToken}`))).toBeNull();
    // A forged or malformed cookie resolves to nothing.
    expect(await service.resolve(req(`${SESSION_COOKIE}=${'A'.repeat(43)}`))).toBeNull();
    expect(await service.resolve(req(`${SESSION_COOKIE}=short`))).toBeNull();
    expect(await service.resolve(req(''))).toBeNull();
  });

  it('Sessions: the password stage lives only as long as the second-factor limit; a disabled mailbox ends it', async () => {
    let now = 5_000_000;
    const service = new Sessions(sessions, handle.store, { idleMs: 60_000, absoluteMs: 3_600_000, secondFactorMs: 30_000 }, () => now);
    const first = await service.start(mailbox, 'password', 'fr');
    const token = /=([^;]+);/.exec(first.setCookie)![1]!;
    const req = { headers: { cookie: `${SESSION_COOKIE}=${token}` } };
    expect((await service.resolve(req))?.row.stage).toBe('password');
    now += 30_000;
    expect(await service.resolve(req)).toBeNull();

    const second = await service.start(mailbox, 'complete', 'fr');
    const req2 = { headers: { cookie: `${SESSION_COOKIE}=${/=([^;]+);/.exec(second.setCookie)![1]!}` } };
    await handle.store.transaction((tx) => tx.updateMailbox(mailbox.id, { state: 'disabled' }));
    expect(await service.resolve(req2)).toBeNull();
  });
});
