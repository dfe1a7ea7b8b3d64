import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ClusterNotifier, type WorkerChannel } from '../../src/store/cluster-notifier.js';
import type { MailboxEvent } from '../../src/store/types.js';

/** A worker's channel to its primary, recording what is sent. */
function fakeChannel(): WorkerChannel & { sent: unknown[]; deliver(message: unknown): void } {
  const emitter = new EventEmitter();
  const sent: unknown[] = [];
  return {
    sent,
    connected: true,
    send: (message, callback) => {
      sent.push(message);
      callback(null);
      return true;
    },
    on: (event, listener) => emitter.on(event, listener),
    off: (event, listener) => emitter.off(event, listener),
    deliver: (message) => emitter.emit('message', message),
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('ClusterNotifier', () => {
  it('tells its own sessions at once and the primary once per event-loop turn', async () => {
    const channel = fakeChannel();
    const notifier = new ClusterNotifier(channel);
    const heard: MailboxEvent[] = [];
    notifier.subscribe(7, (e) => heard.push(e));
    const a: MailboxEvent = { kind: 'exists', mailboxId: 7, folderId: 3, uid: 10, modseq: 41 };
    const b: MailboxEvent = { kind: 'flags', mailboxId: 7, folderId: 3, uid: 10, modseq: 42, flags: ['\\Seen'], origin: 's1' };
    notifier.publish(a);
    notifier.publish(b);
    expect(heard).toEqual([a, b]);
    expect(channel.sent).toEqual([]);
    await tick();
    expect(channel.sent).toEqual([{ mss: 'events', events: [a, b] }]);
    await notifier.close();
  });

  it('passes on what the primary relays, and ignores anything malformed', async () => {
    const channel = fakeChannel();
    const notifier = new ClusterNotifier(channel);
    const heard: MailboxEvent[] = [];
    notifier.subscribe(7, (e) => heard.push(e));
    const expunge: MailboxEvent = { kind: 'expunge', mailboxId: 7, folderId: 3, uid: 9, modseq: 50 };
    channel.deliver({ mss: 'events', events: [expunge, { kind: 'resync', mailboxId: 7 }] });
    for (const bad of [
      null,
      'events',
      { mss: 'ready', listeners: [] },
      { mss: 'events', events: [{ ...expunge, uid: -1 }] },
      { mss: 'events', events: [{ ...expunge, extra: true }] },
      { mss: 'events', events: [{ kind: 'flags', mailboxId: 7, folderId: 3, uid: 9, modseq: 51 }] },
      { mss: 'events', events: [{ kind: 'rename', mailboxId: 7 }] },
    ]) {
      channel.deliver(bad);
    }
    expect(heard).toEqual([expunge, { kind: 'resync', mailboxId: 7 }]);
    // What came from the primary is not sent back to it.
    await tick();
    expect(channel.sent).toEqual([]);
    await notifier.close();
    channel.deliver({ mss: 'events', events: [expunge] });
    expect(heard).toHaveLength(2);
  });
});
