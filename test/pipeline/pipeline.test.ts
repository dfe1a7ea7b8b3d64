import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMailbox } from '../../src/accounts/mailboxes.js';
import { verifyJournal } from '../../src/audit/journal.js';
import { Keyring } from '../../src/crypto/seal.js';
import { Pipeline } from '../../src/pipeline/index.js';
import { Refusal } from '../../src/pipeline/refusal.js';
import { routeRecipient } from '../../src/pipeline/route.js';
import type { Submission } from '../../src/pipeline/types.js';
import { LocalNotifier } from '../../src/store/notifier.js';
import { SealedMail } from '../../src/store/sealed-mail.js';
import type { MailboxEvent, MailboxRow, Store } from '../../src/store/types.js';
import { ENGINES, openTestStore, type TestStore } from '../helpers/engines.js';

describe.each(ENGINES)('pipeline with a real store (%s)', (engine) => {
  let t: TestStore;
  let store: Store;
  let mail: SealedMail;
  let notifier: LocalNotifier;
  let pipeline: Pipeline;
  let jean: MailboxRow;
  let claire: MailboxRow;

  beforeEach(async () => {
    t = await openTestStore(engine);
    store = t.store;
    const keyring = new Keyring(randomBytes(32));
    mail = new SealedMail(store, keyring);
    notifier = new LocalNotifier();
    pipeline = new Pipeline({
      mail,
      notifier,
      hostname: 'mx.h.test',
      localDomains: ['h.test'],
      limits: { maxMessageSize: 10_000, maxRecipients: 5 },
      log: pino({ level: 'silent' }),
    });
    jean = await createMailbox(store, keyring, { address: 'jean@h.test', type: 'PER' });
    claire = await createMailbox(store, keyring, { address: 'claire@h.test', type: 'PER' });
  });
  afterEach(() => t.dispose());

  const submission = (raw: string, rcptTo = ['claire@h.test'], sender = jean): Submission => ({
    channel: 'submission',
    sessionId: 's1',
    remoteAddress: '127.0.0.1',
    clientName: 'client.test',
    protocol: 'ESMTPSA',
    tls: null,
    sender,
    envelope: { mailFrom: sender.address, rcptTo },
    raw: Buffer.from(raw),
    receivedAt: new Date(),
  });
  const ok = 'From: jean@h.test\r\nTo: claire@h.test\r\nSubject: Bilan\r\n\r\nTexte.\r\n';

  it('routes recipients: local, unknown, remote, malformed', async () => {
    expect((await routeRecipient(store, ['h.test'], 'Claire@H.test')).mailbox.id).toBe(claire.id);
    for (const [rcpt, code] of [
      ['nobody@h.test', 'unknown-recipient'],
      ['x@elsewhere.test', 'remote-domain-not-allowed'],
      ['no-at-sign', 'bad-address'],
      ['a@b@h.test', 'bad-address'],
    ] as const) {
      await expect(routeRecipient(store, ['h.test'], rcpt)).rejects.toMatchObject({ code });
    }
  });

  it('delivers to every recipient once, publishes after commit, and audits', async () => {
    const events: MailboxEvent[] = [];
    notifier.subscribe(claire.id, (e) => events.push(e));
    const accepted = await pipeline.submit(submission(ok, ['claire@h.test', 'CLAIRE@h.test', 'jean@h.test']));
    expect(accepted.delivered.map((d) => [d.address, d.uid])).toEqual([
      ['claire@h.test', 1],
      ['jean@h.test', 1],
    ]);
    expect(events).toMatchObject([{ kind: 'exists', mailboxId: claire.id, uid: 1 }]);
    const inbox = (await store.getFolder(claire.id, 'INBOX'))!;
    const [row] = await store.getMessages(inbox.id, [1]);
    const body = await mail.openBody(claire, row!);
    expect(body.toString()).toMatch(/^Received: from client\.test \(\[127\.0\.0\.1\]\)\r\n\tby mx\.h\.test/);
    expect(body.subarray(body.length - ok.length).toString()).toBe(ok);
    expect(mail.openMeta(claire, row!).envelope.subject).toBe('Bilan');
    // The sealed meta cannot be opened as another mailbox's.
    expect(() => mail.openMeta(jean, row!)).toThrow();
    const audit = await store.readAudit(0, 100);
    expect(audit.filter((r) => r.action === 'deliver').map((r) => r.object)).toEqual(['claire@h.test', 'jean@h.test']);
    expect(audit.find((r) => r.action === 'submit')).toMatchObject({ actor: 'jean@h.test', outcome: 'accepted', object: accepted.queueId });
    expect(JSON.stringify(audit)).not.toContain('Bilan');
    expect((await verifyJournal(store)).ok).toBe(true);
  });

  it('removes Bcc before storing, so recipients never see blind copies', async () => {
    await pipeline.submit(submission('From: jean@h.test\r\nTo: claire@h.test\r\nBcc: jean@h.test\r\nSubject: s\r\n\r\nx\r\n', ['claire@h.test', 'jean@h.test']));
    const inbox = (await store.getFolder(claire.id, 'INBOX'))!;
    const [row] = await store.getMessages(inbox.id, [1]);
    const body = (await mail.openBody(claire, row!)).toString();
    expect(body).not.toMatch(/^Bcc:/im);
    expect(mail.openMeta(claire, row!).envelope.bcc).toBeNull();
  });

  it('refuses with a typed code, audits the refusal, and stores nothing', async () => {
    const cases: [Submission, string][] = [
      [submission(ok.replace('From: jean', 'From: claire')), 'sender-not-owned'],
      [submission(ok, ['nobody@h.test']), 'unknown-recipient'],
      [submission(ok, ['x@elsewhere.test']), 'remote-domain-not-allowed'],
      [submission(ok, ['claire@h.test', 'a@h.test', 'b@h.test', 'c@h.test', 'd@h.test', 'e@h.test']), 'too-many-recipients'],
      [submission(ok + 'x'.repeat(10_000)), 'message-too-large'],
      [submission('Subject: no from\r\n\r\nx'), 'malformed-message'],
    ];
    for (const [s, code] of cases) {
      await expect(pipeline.submit(s)).rejects.toSatisfy((e: unknown) => e instanceof Refusal && e.code === code);
    }
    const inbox = (await store.getFolder(claire.id, 'INBOX'))!;
    expect(await store.listMessages(inbox.id)).toEqual([]);
    const refusals = (await store.readAudit(0, 100)).filter((r) => r.action === 'refuse').map((r) => r.outcome);
    expect(refusals).toEqual(cases.map(([, code]) => code));
  });

  it('answers a temporary failure and commits nothing when the store fails mid-delivery', async () => {
    const realAppend = mail.append.bind(mail);
    let calls = 0;
    mail.append = async (...args) => {
      if (++calls === 2) throw new Error('disk full');
      return realAppend(...args);
    };
    await expect(pipeline.submit(submission(ok, ['claire@h.test', 'jean@h.test']))).rejects.toMatchObject({ code: 'temporary-failure' });
    for (const m of [claire, jean]) {
      const inbox = (await store.getFolder(m.id, 'INBOX'))!;
      expect(await store.listMessages(inbox.id)).toEqual([]);
      expect(inbox.uidNext).toBe(1);
    }
    expect((await store.readAudit(0, 100)).filter((r) => r.action === 'deliver')).toEqual([]);
  });
});
