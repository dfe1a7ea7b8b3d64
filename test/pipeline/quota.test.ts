import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMailbox } from '../../src/accounts/mailboxes.js';
import { Keyring } from '../../src/crypto/seal.js';
import { Pipeline } from '../../src/pipeline/index.js';
import { Refusal } from '../../src/pipeline/refusal.js';
import type { Submission } from '../../src/pipeline/types.js';
import { LocalNotifier } from '../../src/store/notifier.js';
import { SealedMail } from '../../src/store/sealed-mail.js';
import type { MailboxRow, Store } from '../../src/store/types.js';
import { ENGINES, openTestStore, type TestStore } from '../helpers/engines.js';

/**
 * The per-mailbox quota at delivery (src/pipeline/quota.ts): refused at RCPT TO once the mailbox has no room for
 * another message, and at DATA when this message would not fit; nothing is stored then, for any recipient.
 */
describe.each(ENGINES)('delivery under quota (%s)', (engine) => {
  let t: TestStore;
  let store: Store;
  let pipeline: Pipeline;
  let jean: MailboxRow;
  let claire: MailboxRow;

  beforeEach(async () => {
    t = await openTestStore(engine);
    store = t.store;
    const keyring = new Keyring(randomBytes(32));
    pipeline = new Pipeline({
      mail: new SealedMail(store, keyring),
      notifier: new LocalNotifier(),
      hostname: 'mx.h.test',
      localDomains: ['h.test'],
      limits: { maxMessageSize: 100_000, maxRecipients: 5 },
      log: pino({ level: 'silent' }),
      quota: { storageKiB: 2, messages: 2 },
    });
    jean = await createMailbox(store, keyring, { address: 'jean@h.test', type: 'PER' });
    claire = await createMailbox(store, keyring, { address: 'claire@h.test', type: 'PER' });
  });
  afterEach(() => t.dispose());

  const submission = (body: string, rcptTo: string[]): Submission => ({
    channel: 'submission',
    sessionId: 's1',
    remoteAddress: '127.0.0.1',
    clientName: 'client.test',
    protocol: 'ESMTPSA',
    tls: null,
    sender: jean,
    envelope: { mailFrom: jean.address, rcptTo },
    raw: Buffer.from(`From: jean@h.test\r\nTo: ${rcptTo.join(', ')}\r\nSubject: Bilan\r\n\r\n${body}\r\n`),
    receivedAt: new Date(),
  });
  const inboxCount = async (m: MailboxRow) => (await store.listMessages((await store.getFolder(m.id, 'INBOX'))!.id)).length;
  const refusedWith = (code: string) => (e: unknown) => e instanceof Refusal && e.code === code && e.smtpCode === 552;

  it('refuses a message that would not fit, for every recipient, and a recipient with no room left at RCPT TO', async () => {
    await pipeline.submit(submission('petit', ['claire@h.test']));
    // 2 KiB: too large for Claire's remaining room; Jean alone would take it, but nothing is stored.
    await expect(pipeline.submit(submission('x'.repeat(1900), ['jean@h.test', 'claire@h.test']))).rejects.toSatisfy(refusedWith('mailbox-full'));
    expect([await inboxCount(jean), await inboxCount(claire)]).toEqual([0, 1]);
    await pipeline.submit(submission('encore', ['claire@h.test']));
    // Two messages: no room for a third, whatever its size.
    await expect(pipeline.checkRecipient(jean, 'claire@h.test', { remote: '127.0.0.1' })).rejects.toSatisfy(refusedWith('mailbox-full'));
    await expect(pipeline.submit(submission('trop', ['claire@h.test']))).rejects.toSatisfy(refusedWith('mailbox-full'));
    expect(await pipeline.checkRecipient(jean, 'jean@h.test', { remote: '127.0.0.1' })).toMatchObject({ kind: 'local', mailbox: { id: jean.id } });
    const refusals = (await store.readAudit(0, 100)).filter((r) => r.action === 'refuse').map((r) => r.outcome);
    expect(refusals).toEqual(['mailbox-full', 'mailbox-full', 'mailbox-full']);
  });
});
