import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMailbox } from '../../src/accounts/mailboxes.js';
import { Keyring } from '../../src/crypto/seal.js';
import { parseDsn } from '../../src/mime/dsn.js';
import { QueueSealer } from '../../src/queue/envelope.js';
import { queueNotices } from '../../src/queue/notices.js';
import { QueueWorker, type DeliveryOutcome } from '../../src/queue/worker.js';
import { LocalNotifier } from '../../src/store/notifier.js';
import { SealedMail } from '../../src/store/sealed-mail.js';
import type { MailboxEvent, MailboxRow, Store } from '../../src/store/types.js';
import { ENGINES, openTestStore, type TestStore } from '../helpers/engines.js';

/**
 * The queue's notices on a real store (both engines), with the worker's clock in the test's hands: the reason
 * of each temporary failure kept in the sealed envelope, one delay DSN, the failure DSN when the item is too old
 * (each in the unit of work that settles the item, published after its commit), a partial handoff, and the
 * operator's queue operations.
 */

const SENDER = 'jean.dupont@h.test';
const MESSAGE = Buffer.from(
  'From: jean.dupont@h.test\r\nTo: alice@peer.test\r\nSubject: Compte rendu\r\nMessage-ID: <cr-1@h.test>\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n\r\nsecret body\r\n',
);

describe.each(ENGINES)('queue notices and administration (%s)', (engine) => {
  let t: TestStore;
  let store: Store;
  let keyring: Keyring;
  let sealer: QueueSealer;
  let mail: SealedMail;
  let notifier: LocalNotifier;
  let sender: MailboxRow;
  let events: MailboxEvent[];

  beforeEach(async () => {
    t = await openTestStore(engine);
    store = t.store;
    keyring = new Keyring(randomBytes(32));
    sealer = new QueueSealer(keyring);
    mail = new SealedMail(store, keyring);
    notifier = new LocalNotifier();
    sender = await createMailbox(store, keyring, { address: SENDER, type: 'PER', ownerId: null, displayName: null, password: null });
    events = [];
    notifier.subscribe(sender.id, (e) => events.push(e));
  });
  afterEach(() => t.dispose());

  async function enqueue(recipients: string[]): Promise<string> {
    const item = sealer.item(
      'peer.test',
      { submissionId: 'sub-1', sender: SENDER, mailFrom: SENDER, recipients, receivedAt: Date.now(), protection: 'signed+encrypted' },
      MESSAGE,
    );
    await store.transaction((tx) => tx.enqueue(item));
    return item.id;
  }

  async function inbox(): Promise<Buffer[]> {
    const folder = (await store.getFolder(sender.id, 'INBOX'))!;
    const rows = await store.getMessages(folder.id, (await store.listMessages(folder.id)).map((m) => m.uid));
    return Promise.all(rows.map((r) => mail.openBody(sender, r)));
  }

  function worker(clock: { now: number }, outcome: () => DeliveryOutcome): QueueWorker {
    return new QueueWorker({
      store,
      now: () => clock.now,
      retryDelayMs: () => 0,
      maxAgeMs: 10_000,
      transport: { deliver: async () => outcome() },
      ...queueNotices({ mail, sealer, notifier, hostname: 'mx.h.test', delayNoticeAfterMs: 1000, maxAgeMs: 10_000, now: () => clock.now }),
    });
  }

  it('keeps the last error sealed, sends one delay DSN, then a failure DSN when the item is too old', async () => {
    const id = await enqueue(['alice@peer.test']);
    const created = (await store.getQueueItem(id))!.createdAt;
    const clock = { now: created + 10 };
    let n = 0;
    const w = worker(clock, () => ({ kind: 'retry', reason: `127.0.0.1:2525 answered 421 4.3.2 busy (${++n})` }));

    expect(await w.runOnce()).toBe(1);
    let envelope = sealer.openEnvelope((await store.getQueueItem(id))!);
    expect(envelope.lastError).toEqual({ at: clock.now, reason: '127.0.0.1:2525 answered 421 4.3.2 busy (1)' });
    expect(envelope.delayNoticeAt).toBeNull();
    expect(await inbox()).toHaveLength(0);
    // Only sealed bytes in the row.
    expect((await store.getQueueItem(id))!.sealedEnvelope.includes(Buffer.from('alice@peer.test'))).toBe(false);

    clock.now = created + 2000;
    await w.runOnce();
    clock.now = created + 3000;
    await w.runOnce();
    envelope = sealer.openEnvelope((await store.getQueueItem(id))!);
    expect(envelope.delayNoticeAt).toBe(created + 2000);
    expect(envelope.lastError?.reason).toMatch(/\(3\)$/);
    const delayed = await inbox();
    expect(delayed).toHaveLength(1);
    const notice = parseDsn(delayed[0]!);
    expect(notice.recipients[0]).toMatchObject({ finalRecipient: 'alice@peer.test', action: 'delayed', status: '4.3.2' });
    expect(notice.recipients[0]!.willRetryUntil).not.toBeNull();
    expect(notice.originalSubject).toBe('Compte rendu');
    expect(events.filter((e) => e.kind === 'exists')).toHaveLength(1);

    clock.now = created + 20_000;
    await w.runOnce();
    expect(await store.getQueueItem(id)).toBeNull();
    const all = await inbox();
    expect(all).toHaveLength(2);
    const failure = parseDsn(all[1]!);
    expect(failure.recipients[0]).toMatchObject({ finalRecipient: 'alice@peer.test', action: 'failed', status: '4.4.7' });
    expect(failure.recipients[0]!.diagnostic).toContain('gave up after 4 attempts');
    expect(all[1]!.toString()).not.toContain('secret body'); // headers only are returned
    expect(events.filter((e) => e.kind === 'exists')).toHaveLength(2);
    const bounces = (await store.readAudit(0, 100)).filter((r) => r.action === 'bounce').map((r) => r.outcome);
    expect(bounces).toEqual(['delayed', 'failed']);
  });

  it('a permanent refusal fails at once with the peer\'s status', async () => {
    const id = await enqueue(['alice@peer.test']);
    const clock = { now: Date.now() };
    await worker(clock, () => ({ kind: 'failed', reason: '127.0.0.1:2525 answered 550 5.7.1 relaying denied' })).runOnce();
    expect(await store.getQueueItem(id)).toBeNull();
    const [dsn] = await inbox();
    expect(parseDsn(dsn!).recipients[0]).toMatchObject({ action: 'failed', status: '5.7.1' });
  });

  it('a partial handoff: refused recipients get a failure DSN, deferred ones go back to the queue as a new item', async () => {
    const id = await enqueue(['alice@peer.test', 'bob@peer.test', 'carol@peer.test']);
    const clock = { now: Date.now() };
    await worker(clock, () => ({
      kind: 'delivered',
      report: {
        remoteMta: 'mx.peer.test',
        rejected: [
          { recipient: 'bob@peer.test', response: '550 5.1.1 no such user', permanent: true },
          { recipient: 'carol@peer.test', response: '452 4.2.2 mailbox full', permanent: false },
        ],
      },
    })).runOnce();
    expect(await store.getQueueItem(id)).toBeNull();
    const left = await store.listQueue(10);
    expect(left).toHaveLength(1);
    expect(sealer.openEnvelope(left[0]!).recipients).toEqual(['carol@peer.test']);
    expect(sealer.openMessage(left[0]!)).toEqual(MESSAGE);
    const [dsn] = await inbox();
    expect(parseDsn(dsn!).recipients.map((r) => [r.finalRecipient, r.action, r.status])).toEqual([['bob@peer.test', 'failed', '5.1.1']]);
    const relay = (await store.readAudit(0, 100)).find((r) => r.action === 'relay')!;
    expect(relay.outcome).toBe('partial');
    expect(JSON.parse(relay.detail)).toMatchObject({ recipients: 1, refused: 1, deferred: 1, remoteMta: 'mx.peer.test' });
  });

  it('lists, reschedules, rewrites and deletes items (mss queue)', async () => {
    const a = await enqueue(['alice@peer.test']);
    const b = await enqueue(['bob@peer.test']);
    expect((await store.listQueue(10)).map((i) => i.id).sort()).toEqual([a, b].sort());
    expect(await store.listQueue(1)).toHaveLength(1);
    const later = Date.now() + 3_600_000;
    expect(await store.transaction((tx) => tx.rescheduleQueueItem(a, later))).toBe(true);
    expect((await store.getQueueItem(a))!.nextAttemptAt).toBe(later);
    const envelope = sealer.openEnvelope((await store.getQueueItem(b))!);
    envelope.lastError = { at: 1, reason: 'x' };
    expect(await store.transaction((tx) => tx.updateQueueEnvelope(b, sealer.sealEnvelope(b, envelope)))).toBe(true);
    expect(sealer.openEnvelope((await store.getQueueItem(b))!).lastError).toEqual({ at: 1, reason: 'x' });
    // Sealed to its own row: another item's envelope does not open there.
    const moved = sealer.sealEnvelope(b, envelope);
    expect(() => sealer.openEnvelope({ id: a, sealedEnvelope: moved })).toThrow();
    expect(await store.transaction((tx) => tx.deleteQueueItem(a))).toBe(true);
    expect(await store.transaction((tx) => tx.deleteQueueItem(a))).toBe(false);
    expect(await store.transaction((tx) => tx.rescheduleQueueItem(a, 0))).toBe(false);
    expect(await store.queueLength()).toBe(1);
  });
});
