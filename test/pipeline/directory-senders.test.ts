import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMailbox } from '../../src/accounts/mailboxes.js';
import { importDirectoryFile } from '../../src/directory/import.js';
import { openKeyring } from '../../src/init.js';
import { openDirectoryStore } from '../../src/store/directory.js';
import { openStore } from '../../src/store/open.js';
import { DEMO, passwordOf, startOperator, type TestOperator } from '../helpers/operator.js';

/**
 * The directory's sender checks through SMTP submission, on the demo operator whose directory `mss init` seeds:
 * demo practitioners pass; an unknown practitioner and one who left the directory are refused 550 5.7.1 in
 * `enforce` mode; `warn` mode delivers and audits.
 */

const UNKNOWN = 'paul.inconnu@hopital-demo.mssante.test';
const PASSWORD = 'un mot de passe assez long';

function message(from: string, to: string): string {
  return [`From: ${from}`, `To: ${to}`, 'Subject: annuaire', `Message-ID: <${Math.random().toString(36).slice(2)}@t>`, '', 'Bonjour.', ''].join('\r\n');
}

describe.each(['enforce', 'warn'] as const)('sender checks against the directory (%s)', (mode) => {
  let op: TestOperator;
  beforeAll(async () => {
    // cacheSeconds 0: a test below changes the directory under the running server and expects the next message to see it.
    op = await startOperator({ directory: { senderCheck: mode, cacheSeconds: 0 } });
    const store = await openStore(op.config);
    try {
      // A practitioner mailbox whose owner (a valid RPPS) is in no directory file.
      await createMailbox(store, openKeyring(op.config), { address: UNKNOWN, type: 'PER', ownerId: '810009999992', displayName: null, password: PASSWORD });
    } finally {
      await store.close();
    }
  });
  afterAll(() => op?.dispose());

  const send = (from: string, password: string) =>
    nodemailer
      .createTransport({ host: '127.0.0.1', port: op.ports.submission, requireTLS: true, auth: { user: from, pass: password }, tls: { ca: op.ca, servername: 'localhost' } })
      .sendMail({ envelope: { from, to: [DEMO.claire] }, raw: message(from, DEMO.claire) });

  async function auditOutcomes(action: string): Promise<string[]> {
    const store = await openStore(op.config);
    try {
      return (await store.readAudit(0, 100_000)).filter((r) => r.action === action).map((r) => r.outcome);
    } finally {
      await store.close();
    }
  }

  it('a demo practitioner, seeded by mss init, passes', async () => {
    expect((await send(DEMO.jean, passwordOf(op, DEMO.jean))).response).toMatch(/^250 /);
  });

  it('an unknown practitioner is refused (enforce) or delivered with an audited warning (warn)', async () => {
    if (mode === 'enforce') {
      await expect(send(UNKNOWN, PASSWORD)).rejects.toMatchObject({ responseCode: 550, response: expect.stringMatching(/5\.7\.1 .*\[sender-unknown-practitioner\]/) });
      expect(await auditOutcomes('refuse')).toContain('sender-unknown-practitioner');
    } else {
      expect((await send(UNKNOWN, PASSWORD)).response).toMatch(/^250 /);
      expect(await auditOutcomes('sender-warning')).toContain('sender-unknown-practitioner');
    }
  });

  it('a practitioner who left the directory (absent from the next snapshot) is refused as inactive', async () => {
    // Re-import the demo practitioner file without Jean's row.
    const file = path.join(op.config.dataDir, 'demo-directory', 'PS_LibreAcces_Personne_activite_demo.txt');
    const lines = readFileSync(file, 'utf8').split('\n');
    const without = path.join(op.dir, 'PS_LibreAcces_Personne_activite_next.txt');
    writeFileSync(without, lines.filter((l) => !l.includes('|10001234565|')).join('\n'));
    const store = await openStore(op.config);
    try {
      const report = await importDirectoryFile(openDirectoryStore(store), without);
      expect(report.initial).toBe(false);
    } finally {
      await store.close();
    }
    if (mode === 'enforce') {
      await expect(send(DEMO.jean, passwordOf(op, DEMO.jean))).rejects.toMatchObject({ responseCode: 550, response: expect.stringMatching(/\[sender-inactive-practitioner\]/) });
    } else {
      expect((await send(DEMO.jean, passwordOf(op, DEMO.jean))).response).toMatch(/^250 /);
      expect(await auditOutcomes('sender-warning')).toContain('sender-inactive-practitioner');
    }
  });
});
