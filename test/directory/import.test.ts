import Database from 'better-sqlite3';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirectoryFileError, importDirectoryFile } from '../../src/directory/import.js';
import { openDirectoryStore } from '../../src/store/directory.js';
import type { DirectoryStore } from '../../src/store/directory-types.js';
import { ENGINES, openTestStore, type TestStore } from '../helpers/engines.js';
import { MSS_HEADER, mssRows, PS_HEADER, psRows, writeLines, writeMssFile, writePsFile } from '../helpers/directory-files.js';

const FIXTURES = 'test/fixtures/directory';
const PS_FIXTURE = path.join(FIXTURES, 'PS_LibreAcces_Personne_activite_small_rows01-14.txt');
const MSS_FIXTURE = path.join(FIXTURES, 'Extraction_Correspondance_MSSante_synthetic.txt');

const lines = (file: string) => readFileSync(file, 'utf8').replace(/\n$/, '').split('\n');

/** Every practitioner, activity and organisation of the PS fixture, without snapshot bookkeeping. */
async function psView(dir: DirectoryStore) {
  const strip = <T extends object>(row: T | null) => {
    if (!row) return null;
    const { addedSnapshot: _a, changedSnapshot: _c, removedSnapshot: _r, ...rest } = row as T & { addedSnapshot: unknown; changedSnapshot: unknown; removedSnapshot: unknown };
    return rest;
  };
  const ids = lines(PS_FIXTURE)
    .slice(1)
    .map((l) => l.split('|')[2]!);
  const out: unknown[] = [];
  for (const id of ids) {
    out.push(strip(await dir.getPractitioner(id)));
    out.push((await dir.activitiesOf(id)).map(strip));
  }
  for (const org of ['1010010288', '1010789956', '1010002129', '1010000032', '349940088500020', '341129997700065', '339806996300013']) {
    out.push(strip(await dir.getOrganisation(org)));
  }
  return out;
}

describe.each(ENGINES)('directory import (%s)', (engine) => {
  let t: TestStore;
  let dir: DirectoryStore;
  const file = (name: string) => path.join(t.dir, name);

  beforeEach(async () => {
    t = await openTestStore(engine);
    dir = openDirectoryStore(t.store);
  });
  afterEach(() => t.dispose());

  it('imports the fixtures of both formats, detected by their header', async () => {
    const ps = await importDirectoryFile(dir, PS_FIXTURE);
    expect(ps.format).toBe('ps');
    expect(ps.rows).toBe(14);
    expect(ps.badRows).toEqual([]);
    expect(ps.initial).toBe(true);
    expect(ps.diff).toEqual({
      practitioner: { added: 14, removed: 0, changed: 0, unchanged: 0 },
      activity: { added: 14, removed: 0, changed: 0, unchanged: 0 },
      organisation: { added: 7, removed: 0, changed: 0, unchanged: 0 },
    });
    const chepy = await dir.getPractitioner('0019402726');
    expect(chepy).toMatchObject({ lastName: 'CHEPY', firstName: 'Xavier', idType: '0', idPp: '019402726', civility: 'Monsieur', active: true });
    expect(await dir.activitiesOf('0019402726')).toMatchObject([
      { professionCode: '94', professionLabel: 'Ergothérapeute', modeCode: 'S', structureId: '1010000032', organisationName: 'CH BUGEY SUD', postalCode: '01300', city: 'Belley' },
    ]);
    expect(await dir.getOrganisation('1010000032')).toMatchObject({ name: 'CH BUGEY SUD', finessEj: '010780062', city: 'Belley', active: true });
    // A structure known by its SIRET only.
    expect(await dir.getOrganisation('349940088500020')).toMatchObject({ name: 'DOUBS OPTIC' });

    const mss = await importDirectoryFile(dir, MSS_FIXTURE);
    expect(mss.format).toBe('mss');
    expect(mss.rows).toBe(11);
    expect(mss.badRows).toEqual([]);
    expect(mss.diff).toEqual({ mailbox: { added: 11, removed: 0, changed: 0, unchanged: 0 } });
    expect(await dir.getMailbox('Xavier.Chepy@CH-Bugey-Sud.mssante.test')).toMatchObject({
      type: 'PER',
      ownerId: '0019402726',
      structureId: '1010000032',
      organisationName: 'CH BUGEY SUD',
      city: 'BELLEY',
      dematerialisation: true,
      listeRouge: false,
      active: true,
    });
    // The structure identifier without its type prefix becomes an idNat_Struct.
    expect(await dir.getMailbox('secretariat@arbelles.mssante.test')).toMatchObject({ type: 'ORG', ownerId: '1010002129', structureId: '1010002129', service: 'Secrétariat médical' });
    expect(await dir.getMailbox('interne.cardio@ch-bugey-sud.mssante.test')).toMatchObject({ type: 'PER', ownerId: null });
    expect((await dir.mailboxesOfOwner('0019402726')).map((m) => m.address)).toEqual(['xavier.chepy@ch-bugey-sud.mssante.test']);
    expect((await dir.mailboxesOfStructure('1010000032', 10)).map((m) => m.address)).toEqual([
      'cardiologie@ch-bugey-sud.mssante.test',
      'dpi@ch-bugey-sud.mssante.test',
      'interne.cardio@ch-bugey-sud.mssante.test',
      'xavier.chepy@ch-bugey-sud.mssante.test',
    ]);
    expect((await dir.activitiesAtStructure('1010000032', 10)).map((a) => a.idNatPs)).toEqual(['0019402726']);
    expect(await dir.countRows()).toEqual({
      mailbox: { active: 11, inactive: 0 },
      practitioner: { active: 14, inactive: 0 },
      activity: { active: 14, inactive: 0 },
      organisation: { active: 7, inactive: 0 },
    });
    const snapshots = await dir.listSnapshots(10);
    expect(snapshots.map((s) => [s.kind, s.status, s.rowsTotal])).toEqual([
      ['mss', 'complete', 11],
      ['ps', 'complete', 14],
    ]);
    expect(snapshots[1]!.sourceSha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('re-imports a modified copy: the exact difference, applied idempotently, and inactive rows told apart from unknown ones', async () => {
    const first = await importDirectoryFile(dir, PS_FIXTURE);
    const rows = lines(PS_FIXTURE);
    const edit = (i: number, column: number, value: string) => {
      const f = rows[i]!.split('|');
      f[column] = value;
      rows[i] = f.join('|');
    };
    // CHEPY (line 15): a practitioner renamed (person fields only).
    edit(14, 8, 'Xavier-Marie');
    // KRISTIAN: her activity's e-mail changes (an activity is its content: one removed, one added).
    edit(12, 43, 'accueil@adapei01.test');
    // THOMAS Elsa (line 12) leaves; a new practitioner arrives at a known structure.
    const thomas = rows.splice(11, 1)[0]!;
    expect(thomas).toContain('THOMAS');
    const newcomer = rows[13]!.split('|');
    newcomer[1] = '019499999';
    newcomer[2] = '0019499999';
    newcomer[7] = 'NOUVEAU';
    newcomer[8] = 'Noé';
    rows.push(newcomer.join('|'));
    const modified = file('PS_modified.txt');
    writeFileSync(modified, rows.join('\n') + '\n');

    const second = await importDirectoryFile(dir, modified);
    expect(second.initial).toBe(false);
    expect(second.snapshot.baseId).toBe(first.snapshot.id);
    expect(second.diff).toEqual({
      practitioner: { added: 1, removed: 1, changed: 1, unchanged: 12 },
      activity: { added: 2, removed: 2, changed: 0, unchanged: 12 },
      organisation: { added: 0, removed: 0, changed: 0, unchanged: 7 },
    });
    const changes = await dir.listChanges(second.snapshot.id, { limit: 100 });
    const practitionerChanges = changes.filter((c) => c.entity === 'practitioner').map((c) => [c.key, c.change]);
    expect(practitionerChanges).toEqual([
      ['0019306919', 'removed'],
      ['0019402726', 'changed'],
      ['0019499999', 'added'],
    ]);
    const activityChanges = changes.filter((c) => c.entity === 'activity');
    expect(activityChanges.map((c) => [c.key.split(':')[0], c.change]).sort()).toEqual([
      ['0019306919', 'removed'],
      ['0019401140', 'added'],
      ['0019401140', 'removed'],
      ['0019499999', 'added'],
    ]);
    expect(await dir.listChanges(second.snapshot.id, { entity: 'organisation', limit: 10 })).toEqual([]);

    expect(await dir.getPractitioner('0019402726')).toMatchObject({ firstName: 'Xavier-Marie', changedSnapshot: second.snapshot.id, addedSnapshot: first.snapshot.id });
    const gone = await dir.getPractitioner('0019306919');
    expect(gone).toMatchObject({ lastName: 'THOMAS', active: false, removedSnapshot: second.snapshot.id });
    expect(await dir.activitiesOf('0019306919')).toEqual([]);
    expect(await dir.getPractitioner('0019999999')).toBeNull();
    expect((await dir.activitiesOf('0019401140'))[0]!.email).toBe('accueil@adapei01.test');

    // The same file again: nothing to do.
    const third = await importDirectoryFile(dir, modified);
    expect(third.diff.practitioner).toEqual({ added: 0, removed: 0, changed: 0, unchanged: 14 });
    expect(third.diff.activity).toEqual({ added: 0, removed: 0, changed: 0, unchanged: 14 });
    expect(await dir.listChanges(third.snapshot.id, { limit: 10 })).toEqual([]);

    // The original again: THOMAS comes back (reactivated, counted as added).
    const fourth = await importDirectoryFile(dir, PS_FIXTURE);
    expect(fourth.diff.practitioner).toEqual({ added: 1, removed: 1, changed: 1, unchanged: 12 });
    expect(await dir.getPractitioner('0019306919')).toMatchObject({ active: true, removedSnapshot: null, addedSnapshot: fourth.snapshot.id });
    expect(await dir.getPractitioner('0019499999')).toMatchObject({ active: false });
  });

  it('reports each of 20 broken rows with its line and reason, and changes nothing else', async () => {
    for (const format of ['ps', 'mss'] as const) {
      const clean = file(`${format}-clean.txt`);
      const generate = format === 'ps' ? writePsFile : writeMssFile;
      await generate(clean, 300);
      const base = await importDirectoryFile(dir, clean);
      expect(base.badRows).toEqual([]);

      const body = lines(clean);
      const good = body[5]!.split('|');
      const broken: { row: string; reason: RegExp }[] = [];
      const variant = (column: number, value: string, ...more: [number, string][]) => {
        const f = [...good];
        f[column] = value;
        for (const [c, v] of more) f[c] = v;
        return f.join('|');
      };
      for (let k = 0; k < 20; k++) {
        if (format === 'ps') {
          const kinds = [
            { row: good.slice(0, 30).join('|'), reason: /wrong column count: 30 instead of 57/ },
            { row: variant(2, '81010027138'), reason: /invalid Identification nationale PP "81010027138"/ },
            { row: variant(2, '810100271384'), reason: /invalid Identification nationale PP/ },
            { row: variant(21, '010000033'), reason: /invalid Numéro FINESS site "010000033"/ },
            { row: variant(19, '12345678901234'), reason: /invalid Numéro SIRET site/ },
            { row: variant(7, ''), reason: /empty Nom d'exercice/ },
            { row: [...good, 'extra'].join('|'), reason: /wrong column count: 58 instead of 57/ },
          ];
          broken.push(kinds[k % kinds.length]!);
        } else {
          const kinds = [
            { row: good.slice(0, 12).join('|'), reason: /wrong column count: 12 instead of 31/ },
            { row: variant(1, 'not an address'), reason: /invalid Adresse BAL "not an address"/ },
            { row: variant(1, 'x@'), reason: /invalid Adresse BAL/ },
            { row: variant(0, 'XYZ'), reason: /unknown Type de BAL "XYZ"/ },
            { row: variant(4, '812345678901'), reason: /invalid Identification nationale PP/ },
            { row: variant(6, '1010000033', [5, '1']), reason: /invalid structure identifier "1\/1010000033"/ },
            // The same address as a row above: the first line wins.
            { row: body[3]!, reason: /duplicate Adresse BAL \(first at line 4\): ignored/ },
          ];
          broken.push(kinds[k % kinds.length]!);
        }
      }
      // Interleave: broken row k goes after good row 10 + 10k.
      const out = [body[0]!];
      const expected: { line: number; reason: RegExp }[] = [];
      body.slice(1).forEach((row, i) => {
        out.push(row);
        if (i % 10 === 9 && expected.length < 20) {
          const b = broken[expected.length]!;
          out.push(b.row);
          expected.push({ line: out.length, reason: b.reason });
        }
      });
      const dirty = file(`${format}-dirty.txt`);
      writeFileSync(dirty, out.join('\n') + '\n');
      const report = await importDirectoryFile(dir, dirty);
      expect(report.badRowCount).toBe(20);
      expect(report.badRows.map((b) => b.line)).toEqual(expected.map((e) => e.line));
      report.badRows.forEach((b, i) => expect(b.reason, `line ${b.line}`).toMatch(expected[i]!.reason));
      for (const diff of Object.values(report.diff)) expect(diff).toMatchObject({ added: 0, removed: 0, changed: 0 });
      expect(report.snapshot.rowsBad).toBe(20);
    }
  });

  it('refuses a file with a missing required column, cleanly', async () => {
    await importDirectoryFile(dir, PS_FIXTURE);
    const before = await dir.listSnapshots(10);
    const rows = lines(PS_FIXTURE).map((l) => l.split('|').filter((_, i) => i !== 7).join('|'));
    const broken = file('PS_no_name.txt');
    writeFileSync(broken, rows.join('\n') + '\n');
    await expect(importDirectoryFile(dir, broken)).rejects.toThrow(DirectoryFileError);
    await expect(importDirectoryFile(dir, broken)).rejects.toThrow(/lacks required column "Nom d'exercice": nothing was imported/);
    expect(await dir.listSnapshots(10)).toEqual(before);
    expect((await dir.countRows()).practitioner).toEqual({ active: 14, inactive: 0 });

    const noAddress = file('MSS_no_address.txt');
    writeFileSync(noAddress, lines(MSS_FIXTURE).map((l) => l.split('|').slice(0, 1).concat(l.split('|').slice(2)).join('|')).join('\n') + '\n');
    await expect(importDirectoryFile(dir, noAddress)).rejects.toThrow(/lacks required column "Adresse BAL"/);
    const unknown = file('other.txt');
    writeFileSync(unknown, 'a|b|c\n1|2|3\n');
    await expect(importDirectoryFile(dir, unknown)).rejects.toThrow(/unrecognised header/);
    const empty = file('empty.txt');
    writeFileSync(empty, '');
    await expect(importDirectoryFile(dir, empty)).rejects.toThrow(/empty/);
  });

  it('reads columns by name: reordered and extra columns give the same directory', async () => {
    await importDirectoryFile(dir, PS_FIXTURE);
    const original = await psView(dir);

    // Reverse the named columns (the trailing empty field stays last) and add two unknown ones.
    const reordered = lines(PS_FIXTURE).map((l, i) => {
      const f = l.split('|');
      const named = f.slice(0, -1).reverse();
      return [i === 0 ? 'Colonne future' : 'valeur ignorée', ...named, i === 0 ? 'Autre colonne' : '42', ''].join('|');
    });
    const other = file('PS_reordered.txt');
    writeFileSync(other, reordered.join('\r\n') + '\r\n');
    const again = await importDirectoryFile(dir, other);
    expect(again.badRows).toEqual([]);
    for (const diff of Object.values(again.diff)) expect(diff).toMatchObject({ added: 0, removed: 0, changed: 0 });

    const fresh = await openTestStore(engine);
    try {
      const freshDir = openDirectoryStore(fresh.store);
      await importDirectoryFile(freshDir, other);
      expect(await psView(freshDir)).toEqual(original);
    } finally {
      await fresh.dispose();
    }
  });

  it('leaves the previous snapshot intact when an import fails midway', async () => {
    await importDirectoryFile(dir, PS_FIXTURE);
    const before = await psView(dir);
    const latest = await dir.latestSnapshot('ps');
    const other = file('PS_other.txt');
    await writePsFile(other, 200, { seed: 3 });
    let batches = 0;
    await expect(
      importDirectoryFile(dir, other, {
        batchSize: 50,
        onProgress: () => {
          if (++batches === 3) throw new Error('interrupted');
        },
      }),
    ).rejects.toThrow('interrupted');
    expect(await psView(dir)).toEqual(before);
    expect(await dir.latestSnapshot('ps')).toEqual(latest);
    const [failed] = await dir.listSnapshots(1);
    expect(failed).toMatchObject({ kind: 'ps', status: 'failed', error: 'interrupted' });
    // The store is usable again: the next import goes through.
    const next = await importDirectoryFile(dir, other);
    expect(next.diff.practitioner?.added).toBeGreaterThan(100);
    expect(next.diff.practitioner?.removed).toBe(14);
  });

  it('refuses a file that changes between its two passes', async () => {
    await importDirectoryFile(dir, PS_FIXTURE);
    const copy = file('PS_moving.txt');
    writeFileSync(copy, readFileSync(PS_FIXTURE, 'utf8').replace('Xavier', 'Xavière'));
    await expect(
      importDirectoryFile(dir, copy, {
        onProgress: (p) => {
          // The first pass is over: someone rewrites the file before the changed rows are read again.
          if (p.phase === 'read' && p.bytesRead === p.bytesTotal) writeFileSync(copy, readFileSync(copy, 'utf8') + '\n');
        },
      }),
    ).rejects.toThrow(/changed while it was being imported: nothing changed/);
    expect(await dir.getPractitioner('0019402726')).toMatchObject({ firstName: 'Xavier' });
    expect((await dir.listSnapshots(1))[0]).toMatchObject({ status: 'failed' });
  });

  it('refuses a file whose rows are mostly bad, changing nothing', async () => {
    await importDirectoryFile(dir, PS_FIXTURE);
    const rows = lines(PS_FIXTURE).map((l, i) => (i === 0 ? l : l.replace(/\|00(\d{8})\|/, '|99$1|')));
    const broken = file('PS_bad_ids.txt');
    writeFileSync(broken, rows.join('\n') + '\n');
    await expect(importDirectoryFile(dir, broken)).rejects.toThrow(/14 of 14 rows are bad .* nothing changed/);
    expect((await dir.countRows()).practitioner).toEqual({ active: 14, inactive: 0 });
  });

  it('reports a line with a NUL character as a bad row, and stores text with COPY specials as it is', async () => {
    const rows = lines(MSS_FIXTURE);
    // A NUL (no text column of PostgreSQL can hold one) and, in other rows, characters COPY's text format escapes.
    rows[2] = rows[2]!.replace('Anaïs', 'Ana\u0000s');
    const tricky = rows[1]!.split('|');
    tricky[7] = 'Cardio\\logie\tde garde';
    rows[1] = tricky.join('|');
    const mixed = file('MSS_nul.txt');
    writeFileSync(mixed, rows.join('\n') + '\n');
    const report = await importDirectoryFile(dir, mixed);
    expect(report.badRows).toEqual([{ line: 3, reason: 'a NUL character in the line' }]);
    expect(report.diff.mailbox).toMatchObject({ added: 10 });
    expect(await dir.getMailbox('xavier.chepy@ch-bugey-sud.mssante.test')).toMatchObject({ service: 'Cardio\\logie\tde garde' });
    expect(await dir.getMailbox('anais.lebrun-carpentier@arbelles.mssante.test')).toBeNull();
  });

  it('keeps liste rouge mailboxes out of searches unless asked, and searches by name prefix without accents or case', async () => {
    // A private extraction may carry a "Liste rouge" column (unknown to the public file, read when present).
    const header = [...MSS_HEADER, 'Liste rouge'];
    const rows = [...mssRows(40)].map((r, i) => `${r}|${i === 3 ? 'True' : 'False'}`);
    const withListeRouge = file('MSS_liste_rouge.txt');
    await writeLines(withListeRouge, header, rows, false);
    await importDirectoryFile(dir, withListeRouge);
    const hidden = rows[3]!.split('|')[1]!;
    expect(await dir.getMailbox(hidden)).toMatchObject({ listeRouge: true });
    const all = await dir.searchMailboxes('', hidden.slice(0, 12), { limit: 50, includeListeRouge: true });
    expect(all.map((m) => m.address)).toContain(hidden);
    const published = await dir.searchMailboxes('', hidden.slice(0, 12), { limit: 50, includeListeRouge: false });
    expect(published.map((m) => m.address)).not.toContain(hidden);

    await importDirectoryFile(dir, PS_FIXTURE);
    expect((await dir.searchPractitioners('lebrun c', 10)).map((p) => p.idNatPs)).toEqual(['0019402379']);
    expect((await dir.searchPractitioners('anais', 10)).map((p) => p.idNatPs)).toEqual(['0019402379']);
    expect((await dir.searchOrganisations('ch bug', 10)).map((o) => o.idNatStruct)).toEqual(['1010000032']);
  });

  it('parses a re-imported file in parts on several threads with the same outcome as on one: lines, bad rows, duplicates, diff, digest', async () => {
    const second = await openTestStore(engine);
    try {
      const dirs = [dir, openDirectoryStore(second.store)];
      for (const format of ['ps', 'mss'] as const) {
        const generate = format === 'ps' ? writePsFile : writeMssFile;
        const clean = file(`${format}-parts.txt`);
        await generate(clean, 900, { seed: 11 });
        // Bad rows spread over the whole file (in every part), and a duplicate of an early line near the end.
        const body = lines(clean);
        const out = [body[0]!];
        body.slice(1).forEach((row, i) => {
          out.push(row);
          if (i % 97 === 50) out.push(row.split('|').slice(0, 9).join('|'));
        });
        out.splice(out.length - 5, 0, body[2]!);
        const dirty = file(`${format}-parts-dirty.txt`);
        writeFileSync(dirty, out.join('\n') + '\n');
        // Rows changed, added and removed in every part: the second pass reads the changed lines again.
        const changed = file(`${format}-parts-changed.txt`);
        await generate(changed, 950, { seed: 11, rename: (r) => r % 7 === 3, skip: (r) => r % 50 === 10 });

        const reports = [];
        for (const [i, threads] of [1, 3].entries()) {
          const options = { parsingThreads: threads, bytesPerParsingThread: 1, batchSize: 40, maxReportedBadRows: 6 };
          await importDirectoryFile(dirs[i]!, clean, options);
          reports.push([await importDirectoryFile(dirs[i]!, dirty, options), await importDirectoryFile(dirs[i]!, changed, options)]);
        }
        const comparable = ({ rows, badRowCount, badRows, diff, initial, snapshot }: Awaited<ReturnType<typeof importDirectoryFile>>) => ({
          rows,
          badRowCount,
          badRows,
          diff,
          initial,
          sha256: snapshot.sourceSha256,
        });
        const [one, three] = reports;
        // Nine short lines; in the MSSanté file the repeated address too.
        expect(one![0]!.badRowCount).toBe(format === 'mss' ? 10 : 9);
        expect(one![0]!.badRows).toHaveLength(6);
        expect(three!.map(comparable)).toEqual(one!.map(comparable));
        expect(Object.values(one![1]!.diff).some((d) => d.changed > 0 && d.added > 0 && d.removed > 0)).toBe(true);
        expect(await dirs[1]!.countRows()).toEqual(await dirs[0]!.countRows());
      }
      // The same records, field by field.
      for (const id of lines(file('ps-parts-changed.txt')).slice(1, 400).map((l) => l.split('|')[2]!)) {
        const [a, b] = await Promise.all(dirs.map((d) => d.getPractitioner(id)));
        expect(b).toEqual(a);
        expect(await dirs[1]!.activitiesOf(id)).toEqual(await dirs[0]!.activitiesOf(id));
      }
      for (const address of lines(file('mss-parts-changed.txt')).slice(1, 400).map((l) => l.split('|')[1]!)) {
        expect(await dirs[1]!.getMailbox(address)).toEqual(await dirs[0]!.getMailbox(address));
      }
    } finally {
      await second.dispose();
    }
  });

  it('keeps the first of repeated practitioners and structures and counts activities per practitioner', async () => {
    const ps = file('PS_generated.txt');
    await writePsFile(ps, 500);
    const rows = [...psRows(500)];
    const report = await importDirectoryFile(dir, ps, { batchSize: 64 });
    expect(report.rows).toBe(500);
    const practitioners = new Set(rows.map((r) => r.split('|')[2]));
    const structures = new Set(rows.map((r) => r.split('|')).filter((f) => f[19]).map((f) => (f[21] ? `1${f[21]}` : `3${f[19]}`)));
    expect(report.diff.practitioner?.added).toBe(practitioners.size);
    expect(report.diff.organisation?.added).toBe(structures.size);
    // Two identical rows of one practitioner are one activity.
    expect(report.diff.activity?.added).toBe(new Set(rows).size);
    expect(PS_HEADER.length).toBe(56);
    expect(MSS_HEADER.length).toBe(31);
  });
});

/**
 * SQLite loads an empty table into a table of its own (`dir_load_<entity>`), builds its indexes there, and renames
 * it in at commit (docs/decisions/0007-directory.md): what it leaves behind on every path.
 */
describe('a first load on SQLite', () => {
  let t: TestStore;
  let dir: DirectoryStore;
  let raw: Database.Database;
  const file = (name: string) => path.join(t.dir, name);
  const schema = () =>
    raw
      .prepare("SELECT type, name, tbl_name AS tbl FROM sqlite_master WHERE name LIKE 'dir\\_load\\_%' ESCAPE '\\' OR tbl_name LIKE 'dir\\_load\\_%' ESCAPE '\\' OR tbl_name = 'dir_mailboxes' ORDER BY type, name")
      .all();
  const MAILBOX_SCHEMA = [
    { type: 'index', name: 'dir_mailboxes_address_hash_active', tbl: 'dir_mailboxes' },
    { type: 'index', name: 'dir_mailboxes_alt_key', tbl: 'dir_mailboxes' },
    { type: 'index', name: 'dir_mailboxes_key', tbl: 'dir_mailboxes' },
    { type: 'index', name: 'dir_mailboxes_name_key', tbl: 'dir_mailboxes' },
    { type: 'index', name: 'dir_mailboxes_owner_id', tbl: 'dir_mailboxes' },
    { type: 'index', name: 'dir_mailboxes_structure_id', tbl: 'dir_mailboxes' },
    { type: 'table', name: 'dir_mailboxes', tbl: 'dir_mailboxes' },
  ];
  const tableSql = () => String(raw.prepare("SELECT sql FROM sqlite_master WHERE name = 'dir_mailboxes'").pluck().get());

  beforeEach(async () => {
    t = await openTestStore('sqlite');
    dir = openDirectoryStore(t.store);
    raw = new Database(path.join(t.dir, 'mss.sqlite'));
  });
  afterEach(() => {
    raw.close();
    t.dispose();
  });

  it('keeps the first line of a repeated address, reports the later ones, and leaves the table as its migrations made it', async () => {
    const sql = tableSql();
    const rows = [...mssRows(300)];
    const again = (i: number) => rows[i]!.replace(/\|[^|]*\|[^|]*\|C\|/, '|AUTRE-NOM|Autre|C|');
    expect(again(3)).not.toBe(rows[3]);
    const repeated = file('mss-repeated.txt');
    await writeLines(repeated, MSS_HEADER, [...rows, again(3), again(120)], false);
    const report = await importDirectoryFile(dir, repeated, { batchSize: 64 });
    expect(report.badRows).toEqual([
      { line: 302, reason: 'duplicate Adresse BAL (first at line 5): ignored' },
      { line: 303, reason: 'duplicate Adresse BAL (first at line 122): ignored' },
    ]);
    expect(report.diff.mailbox).toEqual({ added: 300, removed: 0, changed: 0, unchanged: 0 });
    const first = rows[3]!.split('|');
    expect(await dir.getMailbox(first[1]!)).toMatchObject({ address: first[1], lastName: first[9], firstName: first[10], active: true });
    expect(schema()).toEqual(MAILBOX_SCHEMA);
    // The same definition (SQLite quotes a renamed table's name).
    expect(tableSql()).toBe(sql.replace('CREATE TABLE dir_mailboxes', 'CREATE TABLE "dir_mailboxes"'));
    // A re-import compares with it as with any other: unchanged.
    const next = await importDirectoryFile(dir, repeated);
    expect(next.diff.mailbox).toEqual({ added: 0, removed: 0, changed: 0, unchanged: 300 });
    // Rows added later take ids after the first load's.
    await writeLines(repeated, MSS_HEADER, [...rows, ...[...mssRows(310)].slice(300)], false);
    expect((await importDirectoryFile(dir, repeated)).diff.mailbox).toEqual({ added: 10, removed: 0, changed: 0, unchanged: 300 });
    expect(raw.prepare('SELECT count(*) AS n, count(DISTINCT id) AS ids FROM dir_mailboxes').get()).toEqual({ n: 310, ids: 310 });
  });

  it('a PS first load keeps one activity of a repeated line and gives every table its migrations\' indexes', async () => {
    const indexes = () =>
      raw
        .prepare("SELECT name, tbl_name AS tbl FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ('dir_practitioners', 'dir_activities', 'dir_organisations') ORDER BY name")
        .all();
    const before = indexes();
    expect(before.length).toBe(11);
    const rows = [...psRows(200)];
    const ps = file('ps-repeated.txt');
    // Rows 10 and 150 twice, row 10 a third time at the end: the same activity each time.
    await writeLines(ps, PS_HEADER, [...rows.slice(0, 100), rows[10]!, ...rows.slice(100), rows[150]!, rows[10]!], true);
    const report = await importDirectoryFile(dir, ps, { batchSize: 32 });
    expect(report.rows).toBe(203);
    expect(report.diff.activity?.added).toBe(new Set(rows).size);
    expect(report.diff.practitioner?.added).toBe(new Set(rows.map((r) => r.split('|')[2])).size);
    expect(indexes()).toEqual(before);
    expect(raw.prepare("SELECT count(*) FROM sqlite_master WHERE name LIKE 'dir\\_load\\_%' ESCAPE '\\'").pluck().get()).toBe(0);
    // The activity of line 12 (row 10) is kept under the id of its first line.
    const id = rows[10]!.split('|')[2]!;
    const kept = raw.prepare('SELECT id FROM dir_activities WHERE id_nat_ps = ? ORDER BY id').pluck().all(id);
    expect(kept).toContain(12);
    expect(kept).not.toContain(102);
    expect(kept).not.toContain(204);
    expect((await importDirectoryFile(dir, ps)).diff.activity).toEqual({ added: 0, removed: 0, changed: 0, unchanged: new Set(rows).size });
  });

  it('a first load that fails, before or after the counting of its keys, leaves the table empty, indexed, alone', async () => {
    const good = file('mss-good.txt');
    await writeMssFile(good, 400);
    let batches = 0;
    const interrupted = importDirectoryFile(dir, good, { batchSize: 50, onProgress: () => { if (++batches === 3) throw new Error('interrupted'); } });
    await expect(interrupted).rejects.toThrow('interrupted');
    expect(schema()).toEqual(MAILBOX_SCHEMA);
    expect((await dir.countRows()).mailbox).toEqual({ active: 0, inactive: 0 });

    // Refused once its keys were counted (which builds the load table's unique index): mostly repeats.
    const rows = [...mssRows(10)];
    const repeats = file('mss-repeats.txt');
    await writeLines(repeats, MSS_HEADER, [...rows, ...rows, ...rows], false);
    await expect(importDirectoryFile(dir, repeats)).rejects.toThrow(/20 of 30 rows are bad/);
    expect(schema()).toEqual(MAILBOX_SCHEMA);
    expect((await dir.countRows()).mailbox).toEqual({ active: 0, inactive: 0 });
    expect((await dir.listSnapshots(2)).map((s) => s.status)).toEqual(['failed', 'failed']);

    expect((await importDirectoryFile(dir, good)).diff.mailbox?.added).toBe(400);
    expect(schema()).toEqual(MAILBOX_SCHEMA);
  });

  it('an import after one that stopped half-way (its load table left, indexes dropped) cleans up and loads', async () => {
    raw.exec("CREATE TABLE dir_load_mailbox (id INTEGER PRIMARY KEY, address TEXT); INSERT INTO dir_load_mailbox VALUES (1, 'x@y.test')");
    raw.exec('DROP INDEX dir_mailboxes_name_key; DROP INDEX dir_mailboxes_key');
    const good = file('mss-good.txt');
    await writeMssFile(good, 100);
    expect((await importDirectoryFile(dir, good)).diff.mailbox?.added).toBe(100);
    expect(schema()).toEqual(MAILBOX_SCHEMA);
    expect((await dir.searchMailboxes('', 'x@y', { limit: 5, includeListeRouge: true }))).toEqual([]);
  });
});
