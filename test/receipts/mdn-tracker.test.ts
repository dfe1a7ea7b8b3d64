import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMailbox } from '../../src/accounts/mailboxes.js';
import { Keyring } from '../../src/crypto/seal.js';
import { parseDsn } from '../../src/mime/dsn.js';
import { buildMdn, type DispositionType } from '../../src/mime/mdn.js';
import { MdnTracker } from '../../src/queue/mdn-tracker.js';
import { LocalNotifier } from '../../src/store/notifier.js';
import { SealedMail } from '../../src/store/sealed-mail.js';
import type { MailboxRow } from '../../src/store/types.js';
import { ENGINES, openTestStore, type TestStore } from '../helpers/engines.js';

/**
 * The sending side's MDN tracker on each engine, with an injected clock: an outbound message that asked for MDNs
 * gets exactly one failure notice once its deadline passes without one, none when its MDN came back, and a notice
 * about final delivery when only the processed MDN came while a dispatched one was asked for.
 */

const HOUR = 3_600_000;
const PAUL = 'paul.durand@clinique-paire.test';

describe.each(ENGINES)('MDN tracker (%s)', (engine) => {
  let t: TestStore;
  let keyring: Keyring;
  let mail: SealedMail;
  let jean: MailboxRow;
  let claire: MailboxRow;
  let clock = Date.parse('2026-11-25T10:00:00Z');
  let tracker: MdnTracker;

  beforeAll(async () => {
    t = await openTestStore(engine);
    keyring = new Keyring(randomBytes(32));
    mail = new SealedMail(t.store, keyring);
    jean = await createMailbox(t.store, keyring, { address: 'jean.dupont@hopital.test', type: 'PER' });
    claire = await createMailbox(t.store, keyring, { address: 'claire.martin@hopital.test', type: 'PER' });
    tracker = new MdnTracker({ mail, notifier: new LocalNotifier(), hostname: 'mss.hopital.test', deadlineMs: 24 * HOUR, now: () => clock, batch: 2 });
  });
  afterAll(async () => {
    await t?.dispose();
  });

  function message(o: { id?: string | null; notifyTo?: string; direct?: boolean; subject?: string } = {}): Buffer {
    const id = o.id === undefined ? `<${randomBytes(8).toString('hex')}@hopital.test>` : o.id;
    return Buffer.from(
      [
        `From: ${jean.address}`,
        `To: ${PAUL}`,
        `Subject: ${o.subject ?? 'Compte rendu'}`,
        ...(id ? [`Message-ID: ${id}`] : []),
        `Disposition-Notification-To: ${o.notifyTo ?? jean.address}`,
        ...(o.direct ? ['Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true'] : []),
        '',
        'Bonjour.',
        '',
      ].join('\r\n'),
    );
  }

  async function track(raw: Buffer, recipients = [PAUL]): Promise<number> {
    const entries = tracker.entries({ sender: jean, mailFrom: jean.address, message: raw, recipients, submissionId: `sub-${randomBytes(4).toString('hex')}` });
    await t.store.transaction((tx) => tracker.track(tx, entries));
    return entries.length;
  }

  function mdnFor(original: Buffer, disposition: DispositionType, from = PAUL): Buffer {
    return buildMdn({ original, from, to: jean.address, finalRecipient: from, reportingUa: { name: 'mss.clinique-paire.test' }, disposition, finalDestinationDelivery: disposition === 'dispatched' }).raw;
  }

  const receive = (mailbox: MailboxRow, raw: Buffer) => t.store.transaction((tx) => tracker.received(tx, mailbox, raw));

  async function inbox(mailbox: MailboxRow): Promise<Buffer[]> {
    const folder = (await t.store.getFolder(mailbox.id, 'INBOX'))!;
    const rows = await t.store.getMessages(folder.id, (await t.store.listMessages(folder.id)).map((m) => m.uid));
    return Promise.all(rows.map((r) => mail.openBody(mailbox, r)));
  }

  /** Sweeps at `at` (then restores nothing: the clock only moves forward). */
  async function sweepAt(at: number): Promise<number> {
    clock = at;
    return tracker.sweep();
  }

  it('tracks only a message asking for an automatic MDN, with a Message-ID', async () => {
    expect(await track(message({ notifyTo: claire.address }))).toBe(0);
    expect(await track(message({ id: null }))).toBe(0);
    expect(await track(Buffer.from(`From: ${jean.address}\r\nMessage-ID: <x@y>\r\n\r\nbody\r\n`))).toBe(0);
  });

  it('delivers one failure notice when no MDN came before the deadline, and only once', async () => {
    const before = (await inbox(jean)).length;
    const start = clock;
    expect(await track(message({ subject: 'Bilan sanguin' }))).toBe(1);
    expect(await sweepAt(start + 24 * HOUR - 1)).toBe(0);
    expect(await sweepAt(start + 24 * HOUR)).toBe(1);
    expect(await sweepAt(start + 48 * HOUR)).toBe(0);
    const notices = (await inbox(jean)).slice(before);
    expect(notices).toHaveLength(1);
    const dsn = parseDsn(notices[0]!);
    expect(dsn.message.subject).toBe('Accusé de traitement non reçu / No processed notification received : Bilan sanguin');
    expect(dsn.recipients).toMatchObject([{ finalRecipient: PAUL, action: 'failed', status: '4.4.7' }]);
    expect(notices[0]!.toString('utf8')).toMatch(/Aucun accus=C3=A9 de traitement|Aucun accusé de traitement/);
    const audit = await t.store.readAudit(0, 100_000);
    expect(audit.filter((r) => r.action === 'mdn-missing')).toEqual([expect.objectContaining({ actor: jean.address, outcome: 'notified' })]);
  });

  it('delivers none when the processed MDN came back (to the mailbox that sent the message)', async () => {
    const before = (await inbox(jean)).length;
    const start = clock;
    const raw = message();
    await track(raw);
    // The same MDN in another mailbox settles nothing.
    expect(await receive(claire, mdnFor(raw, 'processed'))).toMatchObject({ settled: null });
    expect(await receive(jean, mdnFor(raw, 'processed'))).toMatchObject({ settled: 'settled' });
    expect(await sweepAt(start + 25 * HOUR)).toBe(0);
    expect((await inbox(jean)).length).toBe(before);
    const audit = await t.store.readAudit(0, 100_000);
    expect(audit.filter((r) => r.action === 'mdn' && r.outcome === 'received').length).toBeGreaterThanOrEqual(2);
  });

  it('waits for the dispatched MDN when final delivery was asked for', async () => {
    const before = (await inbox(jean)).length;
    const start = clock;
    const onlyProcessed = message({ direct: true, subject: 'Sans remise finale' });
    const both = message({ direct: true, subject: 'Remis' });
    await track(onlyProcessed);
    await track(both);
    expect(await receive(jean, mdnFor(onlyProcessed, 'processed'))).toMatchObject({ settled: 'waiting' });
    expect(await receive(jean, mdnFor(both, 'processed'))).toMatchObject({ settled: 'waiting' });
    expect(await receive(jean, mdnFor(both, 'dispatched'))).toMatchObject({ settled: 'settled' });
    expect(await sweepAt(start + 25 * HOUR)).toBe(1);
    const notices = (await inbox(jean)).slice(before);
    expect(notices.map((n) => parseDsn(n).message.subject)).toEqual(['Remise finale non confirmée / Final delivery not confirmed : Sans remise finale']);
  });

  it('tracks each recipient and sweeps in batches', async () => {
    const before = (await inbox(jean)).length;
    const start = clock;
    const raw = message({ subject: 'Trois destinataires' });
    expect(await track(raw, [PAUL, 'anne@clinique-paire.test', 'luc@autre.test'])).toBe(3);
    expect(await receive(jean, mdnFor(raw, 'processed', 'anne@clinique-paire.test'))).toMatchObject({ settled: 'settled' });
    expect(await sweepAt(start + 25 * HOUR)).toBe(2);
    const notices = (await inbox(jean)).slice(before).map((n) => parseDsn(n).recipients[0]!.finalRecipient);
    expect(notices.sort()).toEqual(['luc@autre.test', PAUL]);
  });
});
