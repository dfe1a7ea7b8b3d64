import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { importDirectoryFile } from '../../src/directory/import.js';
import { openDirectoryStore } from '../../src/store/directory.js';
import { DIRECTORY_DUMP_TABLES } from '../../src/store/column-dump.js';
import type { DirectoryStore } from '../../src/store/directory-types.js';
import { copyStore, openDumpSource, openDumpTarget, verifyCopy, type TableCounts } from '../../src/store/migrate.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { createTestDatabase, openTestStore, tempDir, type TestStore } from '../helpers/engines.js';

/**
 * `mss store migrate` copies the practitioner directory with the rest of the operator (docs/decisions/0007):
 * snapshots, the rows of the four entities (inactive ones included), change records and certificates, ids
 * kept, verified row by row; the copy's next import compares with the copied snapshot.
 */

const FIXTURES = 'test/fixtures/directory';
const PS_FIXTURE = path.join(FIXTURES, 'PS_LibreAcces_Personne_activite_small_rows01-14.txt');
const MSS_FIXTURE = path.join(FIXTURES, 'Extraction_Correspondance_MSSante_synthetic.txt');

const CERTIFICATE = {
  fingerprint: 'ab'.repeat(32),
  ownerId: '0019402726',
  serial: '01',
  subject: 'CN=Xavier CHEPY',
  issuer: 'CN=Test CA',
  notBefore: Date.UTC(2026, 0, 1),
  notAfter: Date.UTC(2028, 0, 1),
  der: Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]),
};

describe('mss store migrate: the practitioner directory', () => {
  let source: TestStore;
  let dir: DirectoryStore;
  let modifiedMss: string;

  beforeEach(async () => {
    source = await openTestStore('sqlite');
    dir = openDirectoryStore(source.store);
    await importDirectoryFile(dir, PS_FIXTURE);
    await importDirectoryFile(dir, MSS_FIXTURE);
    // A second MSSanté snapshot with a difference: one mailbox gone (inactive), one changed, one new.
    const rows = readFileSync(MSS_FIXTURE, 'utf8').replace(/\n$/, '').split('\n');
    const gone = rows.splice(3, 1)[0]!;
    expect(gone.split('|')[1]).toContain('@');
    const changed = rows[1]!.split('|');
    changed[7] = 'Service renommé';
    rows[1] = changed.join('|');
    const added = rows[2]!.split('|');
    added[1] = 'nouvelle.adresse@ch-bugey-sud.mssante.test';
    rows.push(added.join('|'));
    modifiedMss = path.join(source.dir, 'mss-modified.txt');
    writeFileSync(modifiedMss, rows.join('\n') + '\n');
    const second = await importDirectoryFile(dir, modifiedMss);
    expect(second.diff.mailbox).toMatchObject({ added: 1, removed: 1, changed: 1 });
    await dir.putCertificate(CERTIFICATE);
  });
  afterEach(() => source.dispose());

  it('copies snapshots, rows, change records and certificates (sqlite → postgres), verifies them, and the copy imports on from the same snapshot', async () => {
    const db = await createTestDatabase();
    try {
      const from = await openDumpSource({ engine: 'sqlite', path: path.join(source.dir, 'mss.sqlite') });
      const to = await openDumpTarget({ engine: 'postgres', url: db.url });
      let counts: TableCounts;
      try {
        counts = await copyStore(from, to, { batch: 4 });
        expect(counts).toMatchObject({
          dir_snapshots: 3,
          dir_practitioners: 14,
          dir_activities: 14,
          dir_organisations: 7,
          dir_mailboxes: 12,
          dir_changes: 3,
          dir_certificates: 1,
        });
        const outcome = await verifyCopy(from, to, { batch: 5 });
        expect(outcome).toMatchObject({ ok: true, counts });
      } finally {
        await Promise.all([from.close(), to.close()]);
      }

      const copy = await openPostgresStore(db.url, { poolSize: 2 });
      try {
        const copied = openDirectoryStore(copy);
        expect(await copied.countRows()).toEqual(await dir.countRows());
        expect(await copied.listSnapshots(10)).toEqual(await dir.listSnapshots(10));
        const latest = (await dir.latestSnapshot('mss'))!;
        expect(await copied.listChanges(latest.id, { limit: 10 })).toEqual(await dir.listChanges(latest.id, { limit: 10 }));
        expect(await copied.getMailbox('Xavier.Chepy@CH-Bugey-Sud.mssante.test')).toEqual(await dir.getMailbox('xavier.chepy@ch-bugey-sud.mssante.test'));
        expect(await copied.listCertificates(CERTIFICATE.ownerId)).toEqual(await dir.listCertificates(CERTIFICATE.ownerId));
        // The copy's next import is compared with the copied snapshot: the same file changes nothing.
        const again = await importDirectoryFile(copied, modifiedMss);
        expect(again.snapshot.baseId).toBe(latest.id);
        expect(again.snapshot.id).toBeGreaterThan(latest.id);
        expect(again.diff.mailbox).toEqual({ added: 0, removed: 0, changed: 0, unchanged: 11 });
      } finally {
        await copy.close();
      }

    } finally {
      await db.drop();
    }
  });

  it('refuses a target that already holds a directory, and copies between two SQLite files', async () => {
    const tmp = tempDir('mss-dir-migrate-');
    try {
      const occupied = await openSqliteStore(path.join(tmp.dir, 'occupied.sqlite'));
      await importDirectoryFile(openDirectoryStore(occupied), PS_FIXTURE);
      await occupied.close();
      const from = await openDumpSource({ engine: 'sqlite', path: path.join(source.dir, 'mss.sqlite') });
      const full = await openDumpTarget({ engine: 'sqlite', path: path.join(tmp.dir, 'occupied.sqlite') });
      await expect(copyStore(from, full)).rejects.toThrow(/not empty \(rows in dir_snapshots: 1, dir_practitioners: 14/);
      const empty = await openDumpTarget({ engine: 'sqlite', path: path.join(tmp.dir, 'copy.sqlite') });
      const counts = await copyStore(from, empty, { batch: 3 });
      for (const table of DIRECTORY_DUMP_TABLES) expect(counts[table]).toBeGreaterThan(0);
      expect(await verifyCopy(from, empty)).toMatchObject({ ok: true, counts });
      await Promise.all([from.close(), full.close(), empty.close()]);

      // A directory row that differs is the first mismatch reported.
      const raw = new Database(path.join(tmp.dir, 'copy.sqlite'));
      const { id } = raw.prepare("UPDATE dir_mailboxes SET city = 'AILLEURS' WHERE address = 'xavier.chepy@ch-bugey-sud.mssante.test' RETURNING id").get() as { id: number };
      raw.close();
      const [a, b] = [await openDumpSource({ engine: 'sqlite', path: path.join(source.dir, 'mss.sqlite') }), await openDumpSource({ engine: 'sqlite', path: path.join(tmp.dir, 'copy.sqlite') })];
      expect(await verifyCopy(a, b)).toEqual({ ok: false, mismatch: `dir_mailboxes ${id}: column city: "BELLEY" in the source, "AILLEURS" in the target` });
      await Promise.all([a.close(), b.close()]);
    } finally {
      tmp.dispose();
    }
  });
});
