import { afterEach, describe, expect, it } from 'vitest';
import { FolderMessages, SharedFolders } from '../../src/imap/folder-messages.js';
import { SelectedFolder } from '../../src/imap/selected.js';
import type { MessageSummary, Store } from '../../src/store/types.js';
import { ENGINES } from '../helpers/engines.js';
import { sampleMessage, startImapServer, type ImapTestServer } from './harness.js';

/**
 * The message state of a selected folder, shared by a process's sessions and kept current from events: it
 * must agree with the database after every kind of change, whether an event announced it or not.
 */
describe.each(ENGINES)('shared folder state (%s)', (engine) => {
  let server: ImapTestServer | null = null;
  afterEach(async () => {
    await server?.dispose();
    server = null;
  });

  const inbox = async (s: ImapTestServer) => (await s.store.getFolder(s.mailbox.id, 'INBOX'))!;
  const brief = (messages: readonly MessageSummary[]) => messages.map((m) => ({ uid: m.uid, flags: m.flags, modseq: m.modseq }));
  const fromDatabase = async (s: ImapTestServer) => brief(await s.store.listMessages((await inbox(s)).id));

  it('follows deliveries, flag changes and expunges announced by events, without listing the folder again', async () => {
    const s = (server = await startImapServer(engine));
    for (let i = 1; i <= 3; i++) await s.deliver(sampleMessage(`m${i}`));
    const folder = await inbox(s);
    let listed = 0;
    const counting = new Proxy(s.store, {
      get(target, name, receiver) {
        if (name === 'listMessages') listed++;
        const value = Reflect.get(target, name, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    }) as Store;
    const shared = new SharedFolders(counting, s.notifier, { lingerMs: 50 });
    const state = shared.acquire(s.mailbox.id, folder.id);
    expect((await state.list()).map((m) => m.uid)).toEqual([1, 2, 3]);

    await s.deliver(sampleMessage('m4'), { flags: ['\\Seen'] });
    const change = (await s.store.transaction((tx) => tx.setFlags(folder.id, 2, ['\\Flagged'])))!;
    s.notifier.publish({ kind: 'flags', mailboxId: s.mailbox.id, folderId: folder.id, uid: 2, modseq: change.modseq, flags: change.flags });
    const [gone] = await s.store.transaction((tx) => tx.expunge(folder.id, [1]));
    s.notifier.publish({ kind: 'expunge', mailboxId: s.mailbox.id, folderId: folder.id, uid: 1, modseq: gone!.modseq });

    expect(brief(await state.list())).toEqual(await fromDatabase(s));
    expect((await state.list()).map((m) => m.uid)).toEqual([2, 3, 4]);
    expect(listed).toBe(1);

    // A second session on the folder shares the state; after the last one leaves it lingers, then goes.
    expect(shared.acquire(s.mailbox.id, folder.id)).toBe(state);
    shared.release(state);
    shared.release(state);
    expect(shared.acquire(s.mailbox.id, folder.id)).toBe(state);
    shared.release(state);
    expect(shared.size).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(shared.size).toBe(0);
    expect(shared.acquire(s.mailbox.id, folder.id)).not.toBe(state);
    shared.close();
  });

  it('keeps at most `maxLingering` folders that no session holds, dropping the longest unused first', async () => {
    const s = (server = await startImapServer(engine));
    const shared = new SharedFolders(s.store, s.notifier, { maxLingering: 1 });
    const inboxState = shared.acquire(s.mailbox.id, (await inbox(s)).id);
    const sent = shared.acquire(s.mailbox.id, (await s.store.getFolder(s.mailbox.id, 'Sent'))!.id);
    shared.release(inboxState);
    shared.release(sent);
    expect(shared.size).toBe(1);
    expect(shared.acquire(s.mailbox.id, sent.folderId)).toBe(sent);
    expect(shared.acquire(s.mailbox.id, inboxState.folderId)).not.toBe(inboxState);
    shared.close();
    expect(shared.size).toBe(0);

    // Bounded by messages too: a folder larger than the budget does not stay once released.
    for (let i = 1; i <= 3; i++) await s.deliver(sampleMessage(`m${i}`));
    const small = new SharedFolders(s.store, s.notifier, { maxLingeringMessages: 2 });
    const big = small.acquire(s.mailbox.id, inboxState.folderId);
    expect((await big.list()).length).toBe(3);
    small.release(big);
    expect(small.size).toBe(0);
  });

  it('gives every reader the new mail, also one that asks while another read is in flight', async () => {
    const s = (server = await startImapServer(engine));
    await s.deliver(sampleMessage('m1'));
    const folder = await inbox(s);
    const shared = new SharedFolders(s.store, s.notifier);
    const state = shared.acquire(s.mailbox.id, folder.id);
    await state.list();
    await s.deliver(sampleMessage('m2'));
    const lists = await Promise.all([state.list(), state.list(), state.list()]);
    expect(lists.map((l) => l.map((m) => m.uid))).toEqual([
      [1, 2],
      [1, 2],
      [1, 2],
    ]);
    shared.close();
  });

  it('derives the overview SELECT reports once per change of the state', async () => {
    const s = (server = await startImapServer(engine));
    await s.deliver(sampleMessage('m1'), { flags: ['\\Seen', 'urgent'] });
    await s.deliver(sampleMessage('m2'));
    const folder = await inbox(s);
    const shared = new SharedFolders(s.store, s.notifier);
    const state = shared.acquire(s.mailbox.id, folder.id);
    const first = state.overview(await state.list());
    expect(first).toEqual({ uids: [1, 2], keywords: ['urgent'], firstUnseen: 1 });
    expect(state.overview(await state.list())).toBe(first);

    // A flag change announced by an event: derived again.
    const change = (await s.store.transaction((tx) => tx.setFlags(folder.id, 2, ['\\Seen', 'suivi'])))!;
    s.notifier.publish({ kind: 'flags', mailboxId: s.mailbox.id, folderId: folder.id, uid: 2, modseq: change.modseq, flags: change.flags });
    expect(state.overview(await state.list())).toEqual({ uids: [1, 2], keywords: ['urgent', 'suivi'], firstUnseen: -1 });
    // New mail, and a list taken before it: each gets its own overview.
    const before = await state.list();
    await s.deliver(sampleMessage('m3'));
    expect(state.overview(await state.list())).toEqual({ uids: [1, 2, 3], keywords: ['urgent', 'suivi'], firstUnseen: 2 });
    expect(state.overview(before).uids).toEqual([1, 2]);
    shared.close();
  });

  it('shares the UIDs of the overview between the sessions that select the folder, each copying before it changes them', async () => {
    const s = (server = await startImapServer(engine));
    for (let i = 1; i <= 3; i++) await s.deliver(sampleMessage(`m${i}`));
    const folder = await inbox(s);
    const shared = new SharedFolders(s.store, s.notifier);
    const state = shared.acquire(s.mailbox.id, folder.id);
    const { uids } = state.overview(await state.list());
    const [a, b] = [new SelectedFolder(folder, false, [], 'a', state), new SelectedFolder(folder, false, [], 'b', state)];
    a.shareUids(uids);
    b.shareUids(uids);
    expect(a.uids).toBe(b.uids);
    const sent: string[] = [];
    await a.removed([2], async (data) => void sent.push(data.toString()));
    expect(sent).toEqual(['* 2 EXPUNGE\r\n']);
    expect(a.uids).toEqual([1, 3]);
    expect(b.uids).toEqual([1, 2, 3]);
    expect(uids).toEqual([1, 2, 3]);
    shared.close();
  });

  it('re-reads the folder when the database is ahead of the events it heard (a change no one announced)', async () => {
    const s = (server = await startImapServer(engine));
    for (let i = 1; i <= 3; i++) await s.deliver(sampleMessage(`m${i}`));
    const folder = await inbox(s);
    const state = new SharedFolders(s.store, s.notifier).acquire(s.mailbox.id, folder.id);
    await state.list();

    await s.store.transaction((tx) => tx.setFlags(folder.id, 3, ['\\Deleted']));
    await s.store.transaction((tx) => tx.expunge(folder.id, [1]));
    await s.store.transaction((tx) => s.mail.append(tx, s.mailbox, folder, sampleMessage('silent'), { flags: ['\\Answered'] }));

    expect(brief(await state.list())).toEqual(await fromDatabase(s));
    expect((await state.list()).map((m) => m.uid)).toEqual([2, 3, 4]);
  });

  it('applies again an event that arrives while the folder is being read (the read may predate it)', async () => {
    const s = (server = await startImapServer(engine));
    for (let i = 1; i <= 2; i++) await s.deliver(sampleMessage(`m${i}`));
    const folder = await inbox(s);
    let state: FolderMessages | null = null;
    let raced = false;
    // A listing taken before a flag change whose event comes in before the listing returns.
    const racing = new Proxy(s.store, {
      get(target, name, receiver) {
        if (name === 'listMessages') {
          return async (folderId: number) => {
            const before = await target.listMessages(folderId);
            if (!raced) {
              raced = true;
              const change = (await target.transaction((tx) => tx.setFlags(folder.id, 1, ['\\Seen'])))!;
              state!.onEvent({ kind: 'flags', mailboxId: s.mailbox.id, folderId: folder.id, uid: 1, modseq: change.modseq, flags: change.flags });
              const [gone] = await target.transaction((tx) => tx.expunge(folder.id, [2]));
              state!.onEvent({ kind: 'expunge', mailboxId: s.mailbox.id, folderId: folder.id, uid: 2, modseq: gone!.modseq });
            }
            return before;
          };
        }
        const value = Reflect.get(target, name, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    }) as Store;
    state = new FolderMessages(racing, folder.id);
    expect(brief(await state.list())).toEqual([{ uid: 1, flags: ['\\Seen'], modseq: expect.any(Number) as number }]);
    expect(brief(await state.list())).toEqual(await fromDatabase(s));
  });
});
