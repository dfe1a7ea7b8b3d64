import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendAudit, verifyJournal } from '../../src/audit/journal.js';
import { importDirectoryFile } from '../../src/directory/import.js';
import {
  checkMailboxOwner,
  checkRelaySender,
  checkSubmissionSender,
  directoryWarningEvents,
  type DirectoryCheckMode,
} from '../../src/pipeline/check-directory.js';
import { Refusal, REFUSALS, type RefusalCode } from '../../src/pipeline/refusal.js';
import { openDirectoryStore } from '../../src/store/directory.js';
import type { DirectoryStore } from '../../src/store/directory-types.js';
import type { MailboxRow, MailboxType } from '../../src/store/types.js';
import { ENGINES, openTestStore, type TestStore } from '../helpers/engines.js';

const PS_FIXTURE = 'test/fixtures/directory/PS_LibreAcces_Personne_activite_small_rows01-14.txt';
const MSS_FIXTURE = 'test/fixtures/directory/Extraction_Correspondance_MSSante_synthetic.txt';

function account(address: string, type: MailboxType, ownerId: string | null): MailboxRow {
  return { id: 1, address, type, ownerId, displayName: null, passwordHash: null, state: 'active', wrappedKey: Buffer.alloc(0), createdAt: 0 };
}

/** The code of the Refusal a check throws, or 'ok' with its warnings' codes. */
async function outcome(check: Promise<{ warnings: Refusal[] }>): Promise<RefusalCode | `ok:${string}`> {
  try {
    const v = await check;
    return `ok:${v.warnings.map((w) => w.code).join(',')}`;
  } catch (err) {
    if (err instanceof Refusal) return err.code;
    throw err;
  }
}

describe.each(ENGINES)('check-directory stage (%s)', (engine) => {
  let t: TestStore;
  let dir: DirectoryStore;

  beforeEach(async () => {
    t = await openTestStore(engine);
    dir = openDirectoryStore(t.store);
    await importDirectoryFile(dir, PS_FIXTURE);
    await importDirectoryFile(dir, MSS_FIXTURE);
  });
  afterEach(() => t.dispose());

  const chepy = account('xavier.chepy@ch-bugey-sud.mssante.test', 'PER', '0019402726');
  const thomas = account('elsa.thomas@h.test', 'PER', '0019306919');
  const unknown = account('jeanne.rpps-seule@medecins.mssante.test', 'PER', '810000000421');

  /** THOMAS Elsa leaves the PS extraction: she becomes an inactive practitioner. */
  async function thomasLeaves(): Promise<void> {
    const rows = readFileSync(PS_FIXTURE, 'utf8').split('\n').filter((l) => !l.includes('|THOMAS|'));
    const file = path.join(t.dir, 'PS_without_thomas.txt');
    writeFileSync(file, rows.join('\n'));
    const report = await importDirectoryFile(dir, file);
    expect(report.diff.practitioner?.removed).toBe(1);
  }

  it('refuses a spoofed From with 550 5.7.1 in both modes', async () => {
    for (const mode of ['enforce', 'warn'] as DirectoryCheckMode[]) {
      const spoof = checkSubmissionSender(dir, { account: chepy, from: ['anais.lebrun-carpentier@arbelles.mssante.test'] }, mode);
      await expect(spoof).rejects.toThrow(Refusal);
      expect(await outcome(checkSubmissionSender(dir, { account: chepy, from: ['anais.lebrun-carpentier@arbelles.mssante.test'] }, mode))).toBe('sender-not-owned');
      expect(await outcome(checkSubmissionSender(dir, { account: chepy, from: [chepy.address, 'x@h.test'] }, mode))).toBe('sender-not-owned');
      expect(await outcome(checkSubmissionSender(dir, { account: chepy, from: [] }, mode))).toBe('sender-not-owned');
    }
    const refusal = new Refusal('sender-not-owned');
    expect([refusal.smtpCode, REFUSALS['sender-not-owned'].enhanced]).toEqual([550, '5.7.1']);
    expect(refusal.smtpText).toMatch(/^5\.7\.1 /);
  });

  it('accepts an active practitioner, refuses an unknown or inactive one (550 5.7.1)', async () => {
    expect(await outcome(checkSubmissionSender(dir, { account: chepy, from: ['Xavier.Chepy@CH-Bugey-Sud.mssante.test'] }, 'enforce'))).toBe('ok:');
    expect(await outcome(checkSubmissionSender(dir, { account: unknown, from: [unknown.address] }, 'enforce'))).toBe('sender-unknown-practitioner');
    const noOwner = account('interne.cardio@ch-bugey-sud.mssante.test', 'PER', null);
    expect(await outcome(checkSubmissionSender(dir, { account: noOwner, from: [noOwner.address] }, 'enforce'))).toBe('sender-unknown-practitioner');
    expect(await outcome(checkSubmissionSender(dir, { account: thomas, from: [thomas.address] }, 'enforce'))).toBe('ok:');
    await thomasLeaves();
    const inactive = checkSubmissionSender(dir, { account: thomas, from: [thomas.address] }, 'enforce');
    await expect(inactive).rejects.toMatchObject({ code: 'sender-inactive-practitioner', smtpCode: 550 });
    expect(REFUSALS['sender-inactive-practitioner'].enhanced).toBe('5.7.1');
    expect(REFUSALS['sender-unknown-practitioner'].enhanced).toBe('5.7.1');
    // Organisational and application mailboxes have no practitioner to check.
    const org = account('cardiologie@ch-bugey-sud.mssante.test', 'ORG', '1010000032');
    expect(await outcome(checkSubmissionSender(dir, { account: org, from: [org.address] }, 'enforce'))).toBe('ok:');
  });

  it('warn mode lets the message through and audits what it would have refused', async () => {
    await thomasLeaves();
    const inactive = await checkSubmissionSender(dir, { account: thomas, from: [thomas.address] }, 'warn');
    expect(inactive.warnings.map((w) => w.code)).toEqual(['sender-inactive-practitioner']);
    const unknownVerdict = await checkSubmissionSender(dir, { account: unknown, from: [unknown.address] }, 'warn');
    expect(unknownVerdict.warnings.map((w) => w.code)).toEqual(['sender-unknown-practitioner']);

    // The pipeline appends these with the unit of work that accepts the message.
    await t.store.transaction((tx) =>
      appendAudit(tx, [
        ...directoryWarningEvents(inactive, thomas.address, 'queue-1'),
        { actor: thomas.address, action: 'submit', object: 'queue-1', outcome: 'accepted' },
      ]),
    );
    const records = await t.store.readAudit(0, 100);
    const warning = records.find((r) => r.action === 'sender-warning');
    expect(warning).toMatchObject({ actor: thomas.address, object: 'queue-1', outcome: 'sender-inactive-practitioner' });
    expect(JSON.parse(warning!.detail)).toMatchObject({ mode: 'warn' });
    expect(records.find((r) => r.action === 'submit')).toMatchObject({ outcome: 'accepted' });
    expect((await verifyJournal(t.store)).ok).toBe(true);
    // Spoofing is never a warning.
    await expect(checkSubmissionSender(dir, { account: thomas, from: [chepy.address] }, 'warn')).rejects.toMatchObject({ code: 'sender-not-owned' });
  });

  it('checks relayed senders: in the directory, active, and signed by their directory owner', async () => {
    const relay = (from: string[], signer?: string | null, mode: DirectoryCheckMode = 'enforce') =>
      outcome(checkRelaySender(dir, { from, signerPractitionerId: signer }, mode));
    expect(await relay(['xavier.chepy@ch-bugey-sud.mssante.test'])).toBe('ok:');
    expect(await relay(['Xavier.Chepy@ch-bugey-sud.mssante.test'], '0019402726')).toBe('ok:');
    expect(await relay(['jeanne.rpps-seule@medecins.mssante.test'], '10000000421')).toBe('ok:');
    expect(await relay(['jeanne.rpps-seule@medecins.mssante.test'], '810000000421')).toBe('ok:');
    expect(await relay(['stranger@elsewhere.test'])).toBe('sender-not-in-directory');
    expect(await relay([])).toBe('sender-not-in-directory');
    expect(await relay(['xavier.chepy@ch-bugey-sud.mssante.test'], '0019402379')).toBe('signer-not-directory-owner');
    expect(await relay(['cardiologie@ch-bugey-sud.mssante.test'], '0019402726')).toBe('signer-not-directory-owner');
    expect(await relay(['stranger@elsewhere.test'], null, 'warn')).toBe('ok:sender-not-in-directory');
    expect(REFUSALS['signer-not-directory-owner']).toMatchObject({ smtp: 550, enhanced: '5.7.1' });

    // A mailbox that left the MSSanté extraction is no longer a valid sender.
    const rows = readFileSync(MSS_FIXTURE, 'utf8').split('\n').filter((l) => !l.includes('xavier.chepy@'));
    const file = path.join(t.dir, 'MSS_without_chepy.txt');
    writeFileSync(file, rows.join('\n'));
    await importDirectoryFile(dir, file);
    expect(await relay(['xavier.chepy@ch-bugey-sud.mssante.test'])).toBe('sender-not-in-directory');
  });

  it('checks the owner of a local mailbox the same way, identifiers always', async () => {
    const owner = (type: MailboxType, ownerId: string | null, mode: DirectoryCheckMode = 'enforce') =>
      outcome(checkMailboxOwner(dir, { address: 'new@h.test', type, ownerId }, mode));
    expect(await owner('PER', '0019402726')).toBe('ok:');
    expect(await owner('PER', '810000000421')).toBe('sender-unknown-practitioner');
    expect(await owner('PER', '810000000421', 'warn')).toBe('ok:sender-unknown-practitioner');
    expect(await owner('PER', null)).toBe('sender-unknown-practitioner');
    expect(await owner('PER', '810000000420')).toBe('invalid-owner-identifier');
    expect(await owner('PER', '810000000420', 'warn')).toBe('invalid-owner-identifier');
    expect(await owner('CAB', '0019402726')).toBe('ok:');
    expect(await owner('ORG', '1010000032')).toBe('ok:');
    expect(await owner('ORG', '1010000033')).toBe('invalid-owner-identifier');
    expect(await owner('APP', null)).toBe('ok:');
    expect(await owner('PATIENT', '279035121518989')).toBe('ok:');
    expect(await owner('PATIENT', '295109912611199')).toBe('invalid-owner-identifier');
    await thomasLeaves();
    expect(await owner('PER', '0019306919')).toBe('sender-inactive-practitioner');
  });
});
