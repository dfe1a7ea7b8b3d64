import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMailbox } from '../../src/accounts/mailboxes.js';
import { Keyring } from '../../src/crypto/seal.js';
import type { MailboxRow, Store } from '../../src/store/types.js';
import { blobBytes, ENGINE_BLOBS, openTestStore, type TestStore } from '../helpers/engines.js';

const blob = (n: number) => Buffer.from(`sealed-${n}`);

describe.each(ENGINE_BLOBS)('Store contract (%s, blobs in the %s)', (engine, location) => {
  let t: TestStore;
  let store: Store;
  let keyring: Keyring;
  let mailbox: MailboxRow;

  beforeEach(async () => {
    t = await openTestStore(engine, location);
    store = t.store;
    keyring = new Keyring(randomBytes(32));
    mailbox = await createMailbox(store, keyring, { address: 'Jean.Dupont@hopital.test', type: 'PER', password: 'correct horse' });
  });
  afterEach(() => t.dispose());

  it('creates a mailbox with its default folders, address normalised', async () => {
    expect(mailbox.address).toBe('jean.dupont@hopital.test');
    expect((await store.getMailbox('JEAN.dupont@hopital.test'))?.id).toBe(mailbox.id);
    const folders = await store.listFolders(mailbox.id);
    expect(folders.map((f) => f.name).sort()).toEqual(['Drafts', 'INBOX', 'Junk', 'Sent', 'Trash']);
    expect(folders.find((f) => f.name === 'Sent')?.specialUse).toBe('\\Sent');
    expect(new Set(folders.map((f) => f.uidValidity)).size).toBe(folders.length);
  });

  it('refuses a second mailbox with the same address and keeps the first intact', async () => {
    await expect(createMailbox(store, keyring, { address: 'jean.dupont@hopital.test', type: 'ORG' })).rejects.toThrow(/already exists/);
    expect((await store.getMailbox('jean.dupont@hopital.test'))?.type).toBe('PER');
    expect(await store.listMailboxes()).toHaveLength(1);
  });

  it('allocates strictly increasing UIDs and MODSEQs, and flags survive a reopen', async () => {
    const inbox = (await store.getFolder(mailbox.id, 'INBOX'))!;
    const appended = [];
    for (let i = 1; i <= 3; i++) {
      appended.push(
        await store.transaction(async (tx) => {
          const blobId = await tx.insertBlob(mailbox.id, blob(i));
          return tx.appendMessage(inbox.id, { blobId, sealedMeta: blob(100 + i), flags: [], internalDate: 1_700_000_000_000 + i, size: 10 * i });
        }),
      );
    }
    expect(appended.map((a) => a.uid)).toEqual([1, 2, 3]);
    expect(appended[1]!.modseq).toBeGreaterThan(appended[0]!.modseq);
    const change = await store.transaction((tx) => tx.setFlags(inbox.id, 2, ['\\Seen', '$Label1']));
    expect(change!.modseq).toBeGreaterThan(appended[2]!.modseq);
    expect(await store.transaction((tx) => tx.setFlags(inbox.id, 99, ['\\Seen']))).toBeNull();

    store = await t.reopen();
    const list = await store.listMessages(inbox.id);
    expect(list.map((m) => [m.uid, m.flags, m.size])).toEqual([
      [1, [], 10],
      [2, ['\\Seen', '$Label1'], 20],
      [3, [], 30],
    ]);
    const [row] = await store.getMessages(inbox.id, [2]);
    expect(row!.sealedMeta.toString()).toBe('sealed-102');
    expect((await blobBytes(store, row!.blobId))!.toString()).toBe('sealed-2');
    const folder = (await store.getFolder(mailbox.id, 'INBOX'))!;
    expect(folder.uidNext).toBe(4);
    expect(folder.highestModseq).toBe(change!.modseq);
  });

  it('rolls a unit of work back entirely when it throws: no UID is consumed, nothing stored', async () => {
    const inbox = (await store.getFolder(mailbox.id, 'INBOX'))!;
    await expect(
      store.transaction(async (tx) => {
        const blobId = await tx.insertBlob(mailbox.id, blob(1));
        await tx.appendMessage(inbox.id, { blobId, sealedMeta: blob(2), flags: [], internalDate: 0, size: 1 });
        throw new Error('disk on fire');
      }),
    ).rejects.toThrow('disk on fire');
    expect(await store.listMessages(inbox.id)).toEqual([]);
    expect((await store.getFolder(mailbox.id, 'INBOX'))!.uidNext).toBe(1);
  });

  it('never hands out one UID twice under concurrent units of work', async () => {
    const inbox = (await store.getFolder(mailbox.id, 'INBOX'))!;
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        store.transaction(async (tx) => {
          const blobId = await tx.insertBlob(mailbox.id, blob(i));
          await new Promise((r) => setImmediate(r));
          return tx.appendMessage(inbox.id, { blobId, sealedMeta: blob(i), flags: [], internalDate: 0, size: 1 });
        }),
      ),
    );
    const uids = results.map((r) => r.uid).sort((a, b) => a - b);
    expect(uids).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
  });

  it('reads outside a unit of work see only committed data', async () => {
    const inbox = (await store.getFolder(mailbox.id, 'INBOX'))!;
    let seenInside = -1;
    await store.transaction(async (tx) => {
      const blobId = await tx.insertBlob(mailbox.id, blob(1));
      await tx.appendMessage(inbox.id, { blobId, sealedMeta: blob(1), flags: [], internalDate: 0, size: 1 });
      seenInside = (await store.listMessages(inbox.id)).length;
    });
    expect(seenInside).toBe(0);
    expect(await store.listMessages(inbox.id)).toHaveLength(1);
  });

  it('a blob read begun before a unit of work that removes the blob still reads it whole while that unit is open', async () => {
    const inbox = (await store.getFolder(mailbox.id, 'INBOX'))!;
    const body = randomBytes(6 * 256 * 1024 + 1000); // more chunks than one read-ahead brings
    await store.transaction(async (tx) => {
      const blobId = await tx.insertBlob(mailbox.id, body);
      await tx.appendMessage(inbox.id, { blobId, sealedMeta: blob(1), flags: [], internalDate: 0, size: body.length });
    });
    const [message] = await store.listMessages(inbox.id);
    const reading = (await store.readBlob(message!.blobId))![Symbol.asyncIterator]();
    const pieces: Buffer[] = [((await reading.next()).value as Buffer)];
    await store.transaction(async (tx) => {
      expect(await tx.expunge(inbox.id, [message!.uid])).toHaveLength(1);
      // The removal is not committed: the rest of the blob is still there for a reader.
      for (let r = await reading.next(); !r.done; r = await reading.next()) pieces.push(r.value);
    });
    expect(Buffer.concat(pieces).equals(body)).toBe(true);
    expect(await store.readBlob(message!.blobId)).toBeNull();
  });

  async function appendN(folderId: number, n: number, flags: string[] = []) {
    const out = [];
    for (let i = 1; i <= n; i++) {
      out.push(
        await store.transaction(async (tx) => {
          const blobId = await tx.insertBlob(mailbox.id, blob(i));
          return tx.appendMessage(folderId, { blobId, sealedMeta: blob(100 + i), flags, internalDate: 1_700_000_000_000 + i, size: i });
        }),
      );
    }
    return out;
  }

  it('lists only the messages after a UID', async () => {
    const inbox = (await store.getFolder(mailbox.id, 'INBOX'))!;
    await appendN(inbox.id, 4);
    expect((await store.listMessagesSince(inbox.id, 2)).map((m) => m.uid)).toEqual([3, 4]);
    expect(await store.listMessagesSince(inbox.id, 4)).toEqual([]);
    expect((await store.listMessagesSince(inbox.id, 0)).map((m) => m.uid)).toEqual([1, 2, 3, 4]);
  });

  it('counts a folder by its flags and sizes without listing it (the same figures as the list)', async () => {
    const inbox = (await store.getFolder(mailbox.id, 'INBOX'))!;
    expect(await store.folderStats(inbox.id)).toEqual({ messages: 0, unseen: 0, deleted: 0, bytes: 0 });
    await appendN(inbox.id, 2);
    await appendN(inbox.id, 3, ['\\Seen']);
    await appendN(inbox.id, 1, ['\\Seen', '\\Deleted', 'Seen', '$Label1']);
    await appendN(inbox.id, 1, ['\\Deleted']);
    const list = await store.listMessages(inbox.id);
    expect(await store.folderStats(inbox.id)).toEqual({
      messages: list.length,
      unseen: list.filter((m) => !m.flags.includes('\\Seen')).length,
      deleted: list.filter((m) => m.flags.includes('\\Deleted')).length,
      bytes: list.reduce((n, m) => n + m.size, 0),
    });
    expect(await store.folderStats(inbox.id)).toMatchObject({ messages: 7, unseen: 3, deleted: 2 });
  });

  it('expunges messages and their blobs, raises MODSEQ, and never reuses their UIDs', async () => {
    const inbox = (await store.getFolder(mailbox.id, 'INBOX'))!;
    await appendN(inbox.id, 3);
    const [two] = await store.getMessages(inbox.id, [2]);
    const before = (await store.getFolder(mailbox.id, 'INBOX'))!.highestModseq;
    const removed = await store.transaction((tx) => tx.expunge(inbox.id, [2, 3, 99]));
    expect(removed.map((r) => r.uid)).toEqual([2, 3]);
    expect(removed[0]!.modseq).toBeGreaterThan(before);
    expect(removed[1]!.modseq).toBeGreaterThan(removed[0]!.modseq);
    expect((await store.listMessages(inbox.id)).map((m) => m.uid)).toEqual([1]);
    expect(await blobBytes(store, two!.blobId)).toBeNull();
    const folder = (await store.getFolder(mailbox.id, 'INBOX'))!;
    expect(folder.highestModseq).toBe(removed[1]!.modseq);
    expect(await store.transaction((tx) => tx.expunge(inbox.id, [2]))).toEqual([]);
    const [next] = await appendN(inbox.id, 1);
    expect(next!.uid).toBe(4);
    expect(next!.modseq).toBeGreaterThan(removed[1]!.modseq);
  });

  it('remembers expunged UIDs with the MODSEQ of their removal (QRESYNC), page by page; they go with their folder', async () => {
    const inbox = (await store.getFolder(mailbox.id, 'INBOX'))!;
    const folder = await store.transaction((tx) => tx.insertFolder({ mailboxId: mailbox.id, name: 'Dossiers', specialUse: null, subscribed: true }));
    await appendN(folder.id, 5);
    await appendN(inbox.id, 2);
    expect(await store.listExpunged(folder.id, 0, 0, 10)).toEqual([]);
    const first = await store.transaction((tx) => tx.expunge(folder.id, [4, 2]));
    const second = await store.transaction((tx) => tx.expunge(folder.id, [5]));
    await store.transaction((tx) => tx.expunge(inbox.id, [1]));
    // A unit of work that rolls back leaves no trace.
    await expect(
      store.transaction(async (tx) => {
        await tx.expunge(folder.id, [1]);
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(await store.listExpunged(folder.id, 0, 0, 10)).toEqual([2, 4, 5]);
    expect(await store.listExpunged(folder.id, first[0]!.modseq, 0, 10)).toEqual([4, 5]);
    expect(await store.listExpunged(folder.id, first[1]!.modseq, 0, 10)).toEqual([5]);
    expect(await store.listExpunged(folder.id, second[0]!.modseq, 0, 10)).toEqual([]);
    expect(await store.listExpunged(folder.id, 0, 0, 2)).toEqual([2, 4]);
    expect(await store.listExpunged(folder.id, 0, 4, 2)).toEqual([5]);
    expect(await store.listExpunged(inbox.id, 0, 0, 10)).toEqual([1]);
    await store.transaction((tx) => tx.deleteFolder(folder.id));
    expect(await store.listExpunged(folder.id, 0, 0, 10)).toEqual([]);
    expect(await store.listExpunged(inbox.id, 0, 0, 10)).toEqual([1]);
  });

  it('sums the messages of all the folders of one mailbox (quota), and serialises quota checks of a mailbox', async () => {
    const inbox = (await store.getFolder(mailbox.id, 'INBOX'))!;
    const trash = (await store.getFolder(mailbox.id, 'Trash'))!;
    expect(await store.mailboxUsage(mailbox.id)).toEqual({ messages: 0, bytes: 0 });
    await appendN(inbox.id, 3);
    await appendN(trash.id, 2);
    const other = await createMailbox(store, keyring, { address: 'other@hopital.test', type: 'PER' });
    const otherInbox = (await store.getFolder(other.id, 'INBOX'))!;
    await store.transaction(async (tx) => {
      const blobId = await tx.insertBlob(other.id, blob(9));
      await tx.appendMessage(otherInbox.id, { blobId, sealedMeta: blob(9), flags: [], internalDate: 1, size: 1000 });
    });
    expect(await store.mailboxUsage(mailbox.id)).toEqual({ messages: 5, bytes: 1 + 2 + 3 + 1 + 2 });
    expect(await store.transaction((tx) => tx.mailboxUsage(mailbox.id))).toEqual({ messages: 5, bytes: 9 });
    await store.transaction((tx) => tx.expunge(inbox.id, [3]));
    expect(await store.mailboxUsage(mailbox.id)).toEqual({ messages: 4, bytes: 6 });
    expect(await store.mailboxUsage(other.id)).toEqual({ messages: 1, bytes: 1000 });

    // Two units of work check the same limit at once, then append: the second sees the first's message.
    const limit = 5;
    const attempt = () =>
      store.transaction(async (tx) => {
        const usage = await tx.mailboxUsage(mailbox.id);
        if (usage.messages + 1 > limit) return false;
        await new Promise((r) => setTimeout(r, 50));
        const blobId = await tx.insertBlob(mailbox.id, blob(7));
        await tx.appendMessage(inbox.id, { blobId, sealedMeta: blob(7), flags: [], internalDate: 1, size: 7 });
        return true;
      });
    expect((await Promise.all([attempt(), attempt()])).sort()).toEqual([false, true]);
    expect(await store.mailboxUsage(mailbox.id)).toEqual({ messages: 5, bytes: 13 });
  });

  it('copies messages within a mailbox sharing sealed content, and keeps a shared blob until its last message goes', async () => {
    const inbox = (await store.getFolder(mailbox.id, 'INBOX'))!;
    const trash = (await store.getFolder(mailbox.id, 'Trash'))!;
    await appendN(inbox.id, 3, ['\\Seen']);
    await appendN(trash.id, 1);
    const copied = await store.transaction((tx) => tx.copyMessages(inbox.id, [3, 1, 42], trash.id));
    expect(copied.uidValidity).toBe(trash.uidValidity);
    expect(copied.copies.map((c) => [c.sourceUid, c.uid])).toEqual([
      [1, 2],
      [3, 3],
    ]);
    expect(copied.copies[1]!.modseq).toBeGreaterThan(copied.copies[0]!.modseq);
    const [original] = await store.getMessages(inbox.id, [3]);
    const [copy] = await store.getMessages(trash.id, [3]);
    expect(copy).toMatchObject({ flags: ['\\Seen'], internalDate: original!.internalDate, size: original!.size, folderId: trash.id });
    expect(copy!.sealedMeta.equals(original!.sealedMeta)).toBe(true);
    expect((await blobBytes(store, copy!.blobId))!.equals((await blobBytes(store, original!.blobId))!)).toBe(true);
    // Expunging the original keeps the body the copy still needs.
    await store.transaction((tx) => tx.expunge(inbox.id, [3]));
    expect((await blobBytes(store, copy!.blobId))?.toString()).toBe('sealed-3');
    await store.transaction((tx) => tx.expunge(trash.id, [3]));
    expect(await blobBytes(store, copy!.blobId)).toBeNull();
    expect((await store.getFolder(mailbox.id, 'Trash'))!.uidNext).toBe(4);

    const other = await createMailbox(store, keyring, { address: 'other@hopital.test', type: 'PER' });
    const foreign = (await store.getFolder(other.id, 'INBOX'))!;
    await expect(store.transaction((tx) => tx.copyMessages(inbox.id, [1], foreign.id))).rejects.toThrow(/one mailbox/);
  });

  it('renames, subscribes and deletes folders; deletion takes the messages and their blobs', async () => {
    const created = await store.transaction((tx) => tx.insertFolder({ mailboxId: mailbox.id, name: 'Dossiers', specialUse: null, subscribed: false }));
    expect(created.subscribed).toBe(false);
    await appendN(created.id, 2);
    const renamed = await store.transaction((tx) => tx.renameFolder(created.id, 'Patients/Dupont'));
    expect(renamed).toMatchObject({ id: created.id, name: 'Patients/Dupont', uidValidity: created.uidValidity, uidNext: 3 });
    expect(await store.getFolder(mailbox.id, 'Dossiers')).toBeNull();
    await expect(store.transaction((tx) => tx.renameFolder(created.id, 'Sent'))).rejects.toThrow();
    expect((await store.getFolderById(created.id))!.name).toBe('Patients/Dupont');

    await store.transaction((tx) => tx.setSubscribed(created.id, true));
    expect((await store.getFolderById(created.id))!.subscribed).toBe(true);
    await store.transaction((tx) => tx.setSubscribed(created.id, false));
    expect((await store.getFolderById(created.id))!.subscribed).toBe(false);

    const [row] = await store.getMessages(created.id, [1]);
    expect((await store.transaction((tx) => tx.deleteFolder(created.id))).map((r) => r.uid)).toEqual([1, 2]);
    expect(await store.getFolderById(created.id)).toBeNull();
    expect(await store.listMessages(created.id)).toEqual([]);
    expect(await blobBytes(store, row!.blobId)).toBeNull();
    // A folder re-created under the same name gets a new UIDVALIDITY.
    const again = await store.transaction((tx) => tx.insertFolder({ mailboxId: mailbox.id, name: 'Patients/Dupont', specialUse: null, subscribed: true }));
    expect(again.uidValidity).not.toBe(created.uidValidity);
    expect(again.uidNext).toBe(1);
  });

  it('counts login failures, locks out, and clears', async () => {
    const key = 'login:jean.dupont@hopital.test';
    const now = 1_000_000;
    for (let i = 1; i <= 2; i++) await store.transaction((tx) => tx.recordAuthFailure(key, now, 3, 60_000));
    expect(await store.getAuthFailures(key)).toEqual({ failures: 2, lockedUntil: 0 });
    const locked = await store.transaction((tx) => tx.recordAuthFailure(key, now, 3, 60_000));
    expect(locked).toEqual({ failures: 3, lockedUntil: now + 60_000 });
    // After the lockout expires, counting starts again.
    expect(await store.transaction((tx) => tx.recordAuthFailure(key, now + 61_000, 3, 60_000))).toEqual({ failures: 1, lockedUntil: 0 });
    await store.transaction((tx) => tx.clearAuthFailures(key));
    expect(await store.getAuthFailures(key)).toEqual({ failures: 0, lockedUntil: 0 });
  });

  // SQLite is the one-process engine: a second writer connection in the same process would block the event
  // loop on its busy timeout. Several processes on one database is what PostgreSQL is for.
  it.runIf(engine === 'postgres')('50 concurrent deliveries into one folder from two Store instances on one database: UIDs unique and increasing, MODSEQ increasing', async () => {
    const second = await t.openAnother();
    const inbox = (await store.getFolder(mailbox.id, 'INBOX'))!;
    const deliver = (s: Store, i: number) =>
      s.transaction(async (tx) => {
        const blobId = await tx.insertBlob(mailbox.id, blob(i));
        await new Promise((r) => setImmediate(r));
        return tx.appendMessage(inbox.id, { blobId, sealedMeta: blob(i), flags: [], internalDate: i, size: i });
      });
    // A reader polling "what is new above the last UID I saw" (as an IMAP session does) must miss nothing:
    // a UID never becomes visible below one already seen.
    const seen: number[] = [];
    let done = false;
    const poller = (async () => {
      while (!done) {
        for (const m of await second.listMessagesSince(inbox.id, seen.at(-1) ?? 0)) seen.push(m.uid);
        await new Promise((r) => setTimeout(r, 2));
      }
      for (const m of await second.listMessagesSince(inbox.id, seen.at(-1) ?? 0)) seen.push(m.uid);
    })();
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => deliver(i % 2 === 0 ? store : second, i)));
    done = true;
    await poller;
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    const uids = results.map((r) => r.uid).sort((a, b) => a - b);
    expect(uids).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    // In UID order, MODSEQs strictly increase too: one folder row hands out both.
    const byUid = [...results].sort((a, b) => a.uid - b.uid);
    for (let i = 1; i < byUid.length; i++) expect(byUid[i]!.modseq).toBeGreaterThan(byUid[i - 1]!.modseq);
    const listed = await second.listMessages(inbox.id);
    expect(listed.map((m) => m.uid)).toEqual(uids);
    const folder = (await store.getFolder(mailbox.id, 'INBOX'))!;
    expect(folder.uidNext).toBe(51);
    expect(folder.highestModseq).toBe(byUid[49]!.modseq);
  });

  it.runIf(engine === 'postgres')('concurrent flag changes and expunges from two Store instances each get their own MODSEQ', async () => {
    const second = await t.openAnother();
    const inbox = (await store.getFolder(mailbox.id, 'INBOX'))!;
    await appendN(inbox.id, 20);
    const changes = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? store : second).transaction((tx) => tx.setFlags(inbox.id, i + 1, ['\\Seen']))),
    );
    const removed = await Promise.all([store, second].map((s, k) => s.transaction((tx) => tx.expunge(inbox.id, [1 + k, 3 + k]))));
    const modseqs = [...changes.map((c) => c!.modseq), ...removed.flat().map((r) => r.modseq)];
    expect(new Set(modseqs).size).toBe(modseqs.length);
    expect((await store.getFolder(mailbox.id, 'INBOX'))!.highestModseq).toBe(Math.max(...modseqs));
  });

  it.runIf(engine === 'postgres')('counts concurrent login failures from two Store instances without losing one', async () => {
    const second = await t.openAnother();
    const key = 'login:race@hopital.test';
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? store : second).transaction((tx) => tx.recordAuthFailure(key, 1_000, 100, 60_000))),
    );
    expect(await store.getAuthFailures(key)).toEqual({ failures: 20, lockedUntil: 0 });
  });

  it('refuses work after close', async () => {
    await store.close();
    await expect(store.transaction(async () => 1)).rejects.toThrow(/closed/);
    store = await t.reopen();
  });
});
