import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { registerDirectoryCommands } from '../../src/directory/cli.js';
import { ENGINES, openTestStore, type TestStore } from '../helpers/engines.js';

const PS_FIXTURE = 'test/fixtures/directory/PS_LibreAcces_Personne_activite_small_rows01-14.txt';
const MSS_FIXTURE = 'test/fixtures/directory/Extraction_Correspondance_MSSante_synthetic.txt';
const CERT = 'test/fixtures/directory/dualUse.der';

describe.each(ENGINES)('mss directory commands (%s)', (engine) => {
  let t: TestStore;
  let out: string[];
  let err: string[];
  let progress: string;

  /** Runs `mss directory …` on a program of its own, against the test store. */
  async function mss(...args: string[]): Promise<{ out: string[]; err: string[]; exitCode: number }> {
    out = [];
    err = [];
    progress = '';
    const stream = new PassThrough();
    stream.on('data', (c: Buffer) => (progress += c.toString('utf8')));
    const program = new Command('mss').exitOverride();
    registerDirectoryCommands(program, {
      withStore: (_cmd, work) => work(t.store),
      out: (line) => out.push(line),
      err: (line) => err.push(line),
      progressStream: stream,
    });
    process.exitCode = 0;
    await program.parseAsync(['node', 'mss', 'directory', ...args]);
    const exitCode = Number(process.exitCode ?? 0);
    process.exitCode = 0;
    return { out, err, exitCode };
  }

  beforeEach(async () => {
    t = await openTestStore(engine);
  });
  afterEach(() => t.dispose());

  it('imports with progress and a summary, audits it, then searches and shows entries', async () => {
    const ps = await mss('import', PS_FIXTURE);
    expect(ps.exitCode).toBe(0);
    expect(ps.out[0]).toMatch(/^imported PS_LibreAcces_Personne_activite_small_rows01-14\.txt \(PS_LibreAcces_Personne_activite\) as snapshot 1 \(first of its kind\): 14 rows, 0 bad, /);
    expect(ps.out).toContain('  practitioner  +14 added  -0 removed  ~0 changed  0 unchanged');
    expect(progress).toMatch(/reading: 100% \(14 rows, \d+ rows\/s, 0 bad\)\ncomparing with the directory\.\.\.\nwriting the directory\.\.\.\n$/);
    await mss('import', MSS_FIXTURE);
    const journal = await t.store.readAudit(0, 100);
    expect(journal.filter((r) => r.action === 'directory-import').map((r) => [r.object, r.outcome])).toEqual([
      ['PS_LibreAcces_Personne_activite_small_rows01-14.txt', 'ok'],
      ['Extraction_Correspondance_MSSante_synthetic.txt', 'ok'],
    ]);
    expect(JSON.parse(journal.find((r) => r.action === 'directory-import')!.detail)).toMatchObject({ rows: 14, 'practitioner.added': 14 });

    const search = await mss('search', 'lebrun');
    expect(search.out).toEqual([
      'mailboxes (1)',
      '  anais.lebrun-carpentier@arbelles.mssante.test  PER  Anaïs LEBRUN-CARPENTIER  (Ergothérapeute, CLINIQUE DE READAPTATION LES ARBELLES, BOURG EN BRESSE)',
      'practitioners (1)',
      '  0019402379  Madame Anaïs LEBRUN-CARPENTIER',
      'structures (0)',
    ]);
    expect((await mss('search', 'Clinique', 'de')).out).toContain('  1010002129  CLINIQUE DE READAPTATION LES ARBELLES  (01000 Bourg-en-Bresse)');

    const byAddress = await mss('show', 'Xavier.Chepy@ch-bugey-sud.mssante.test');
    expect(byAddress.out[0]).toBe('xavier.chepy@ch-bugey-sud.mssante.test  PER  Xavier CHEPY  (Ergothérapeute, CH BUGEY SUD, BELLEY)');
    expect(byAddress.out).toContain('  owner: 0019402726');
    expect(byAddress.out).toContain('  practitioner: Xavier CHEPY');
    const byId = await mss('show', '0019402726');
    expect(byId.out[0]).toBe('0019402726  Monsieur Xavier CHEPY');
    expect(byId.out).toContain('  activity: Ergothérapeute, Salarié, CH BUGEY SUD, 01300 Belley  (1010000032)');
    expect(byId.out.some((l) => l.startsWith('  mailbox: xavier.chepy@'))).toBe(true);
    const byStructure = await mss('show', '1010000032');
    expect(byStructure.out[0]).toBe('1010000032  CH BUGEY SUD  (01300 Belley)');
    expect(byStructure.out.filter((l) => l.startsWith('  mailbox: '))).toHaveLength(4);
    expect(byStructure.out).toContain('  practitioner: 0019402726  Ergothérapeute');
    const unknownRpps = await mss('show', '10000000421');
    expect(unknownRpps.out[0]).toBe('810000000421  (not in the PS_LibreAcces snapshot)');

    const status = await mss('status');
    expect(status.out.slice(0, 4)).toEqual([
      'mailbox       11 active, 0 inactive',
      'practitioner  14 active, 0 inactive',
      'activity      14 active, 0 inactive',
      'organisation  7 active, 0 inactive',
    ]);
    expect(status.out[5]).toMatch(/^ {2}#2 {2}mss {2}complete/);
  });

  it('lists bad rows with their lines, the changes of a re-import, and refuses a broken file cleanly', async () => {
    await mss('import', PS_FIXTURE);
    const rows = readFileSync(PS_FIXTURE, 'utf8').split('\n');
    rows[3] = rows[3]!.replace('|0012600631|', '|810100271384|');
    rows.splice(6, 1);
    const file = path.join(t.dir, 'PS_changed.txt');
    writeFileSync(file, rows.join('\n').replace('Xavier', 'Xavière'));
    const again = await mss('import', file);
    expect(again.exitCode).toBe(0);
    expect(again.out).toContain('bad rows (ignored; the first 1 of 1):');
    expect(again.out).toContain('  line 4: invalid Identification nationale PP "810100271384"');
    expect(again.out).toContain('  practitioner  +0 added  -2 removed  ~1 changed  11 unchanged');
    // Each step of a re-import, in order: the changed line is read again.
    expect(progress).toMatch(/^reading: 100% .*\ncomparing with the directory\.\.\.\n(changed rows: \d+% .*\n)*changed rows: 100% .*\nwriting the directory\.\.\.\n$/);
    const changes = await mss('changes', '2');
    expect(changes.out.slice(1)).toEqual(
      expect.arrayContaining(['  removed  practitioner  0012600631', '  removed  practitioner  0013102413']),
    );

    const noName = path.join(t.dir, 'PS_no_name.txt');
    writeFileSync(noName, readFileSync(PS_FIXTURE, 'utf8').replace("Nom d'exercice", 'Nom'));
    const refused = await mss('import', noName);
    expect(refused.exitCode).toBe(2);
    expect(refused.err).toEqual([
      `mss: the header of this PS_LibreAcces_Personne_activite file lacks required column "Nom d'exercice": nothing was imported`,
    ]);
    const journal = await t.store.readAudit(0, 100);
    expect(journal.filter((r) => r.action === 'directory-import').map((r) => r.outcome)).toEqual(['ok', 'ok', 'refused']);
    expect((await mss('search', 'x')).err[0]).toMatch(/^mss: search for at least 2 letters/);
    expect((await mss('show', 'nobody')).err[0]).toMatch(/is neither an address nor a national identifier/);
    expect((await mss('show', '279035121518989')).err[0]).toMatch(/patients are not in the directory/);
  });

  it('attaches certificates to owners', async () => {
    await mss('import', PS_FIXTURE);
    const added = await mss('cert', 'add', '0019402726', CERT);
    expect(added.out[0]).toMatch(/^certificate [0-9a-f]{64} \(.*\) attached to 0019402726$/);
    const fingerprint = added.out[0]!.split(' ')[1]!;
    expect((await mss('cert', 'list', '0019402726')).out).toEqual([expect.stringMatching(new RegExp(`^${fingerprint}  `)), '1 certificate']);
    expect((await mss('show', '0019402726')).out.some((l) => l.startsWith(`  certificate ${fingerprint}`))).toBe(true);
    expect((await mss('cert', 'add', 'nobody', CERT)).exitCode).toBe(2);
    expect((await mss('cert', 'add', '0019402726', PS_FIXTURE)).err[0]).toMatch(/^mss: not an X\.509 certificate/);
    expect((await mss('cert', 'remove', fingerprint)).out).toEqual([`certificate ${fingerprint} removed`]);
    expect((await mss('cert', 'list', '0019402726')).out).toEqual(['0 certificates']);
  });
});
