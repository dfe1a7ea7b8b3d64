import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMailbox } from '../../src/accounts/mailboxes.js';
import { Keyring } from '../../src/crypto/seal.js';
import type { MailboxRow, Store } from '../../src/store/types.js';
import { ENGINES, openTestStore, type TestStore } from '../helpers/engines.js';

const blob = (n: number) => Buffer.from(`sealed-${n}`);

describe.each(ENGINES)('Store contract (%s)', (engine) => {
  let t: TestStore;
  let store: Store;
  let keyring: Keyring;
  let mailbox: MailboxRow;

  beforeEach(async () => {
    t = await openTestStore(engine);
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
    expect((await store.getBlob(row!.blobId))!.toString()).toBe('sealed-2');
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

  it('refuses work after close', async () => {
    await store.close();
    await expect(store.transaction(async () => 1)).rejects.toThrow(/closed/);
    store = await t.reopen();
  });
});
