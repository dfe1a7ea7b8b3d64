import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { registerTrustCommands, type TrustCliConfig } from '../../src/policy/trust-cli.js';
import { parseTrustList } from '../../src/policy/trust-list.js';
import { importTrustList, TrustSpace } from '../../src/policy/trust-store.js';
import { openTrustStore } from '../../src/store/trust.js';
import { ENGINES, openTestStore, tempDir, type TestStore } from '../helpers/engines.js';
import { makeCa, makeServerLeaf, type MadeCert } from './certs.js';

const FIXTURE = 'test/fixtures/whitelist/listeblanchemssante_excerpt_domaines-001-020.xml';
const repo = path.resolve(__dirname, '../..');

let dir: { dir: string; dispose(): void };
let ca: MadeCert;
let server: MadeCert;
let certsDir: string;

beforeAll(async () => {
  dir = tempDir('mss-trust-cli-');
  ca = await makeCa(dir.dir, 'root', '/C=FR/O=MSS TEST/CN=MSS TEST ROOT');
  server = await makeServerLeaf(dir.dir, ca, 'server', '/C=FR/ST=Rhône (69)/O=CLINIQUE B/OU=123456789/CN=mss.clinique-b.mssante.test');
  // The dev PKI layout `mss trust export` reads: server/server.pem and ca/root.pem.
  certsDir = path.join(dir.dir, 'certs');
  mkdirSync(path.join(certsDir, 'server'), { recursive: true });
  mkdirSync(path.join(certsDir, 'ca'), { recursive: true });
  writeFileSync(path.join(certsDir, 'server', 'server.pem'), server.pem);
  writeFileSync(path.join(certsDir, 'ca', 'root.pem'), ca.pem);
});
afterAll(() => dir.dispose());

describe.each(ENGINES)('mss trust commands (%s)', (engine) => {
  let t: TestStore;
  let config: TrustCliConfig;

  async function mss(...args: string[]): Promise<{ out: string[]; err: string[]; exitCode: number }> {
    const out: string[] = [];
    const err: string[] = [];
    const program = new Command('mss').exitOverride();
    registerTrustCommands(program, { withStore: (_cmd, work) => work(t.store), configOf: () => config, out: (l) => out.push(l), err: (l) => err.push(l) });
    process.exitCode = 0;
    await program.parseAsync(['node', 'mss', 'trust', ...args]);
    const exitCode = Number(process.exitCode ?? 0);
    process.exitCode = 0;
    return { out, err, exitCode };
  }

  beforeEach(async () => {
    t = await openTestStore(engine);
    config = { certsDir, hostname: 'mss.clinique-b.mssante.test', localDomains: ['clinique-b.mssante.test', 'patients-b.mssante.test'] };
  });
  afterEach(() => t.dispose());

  it('imports with a CA bundle, audits, lists; a refused list changes nothing', async () => {
    const imported = await mss('import', FIXTURE, '--ca', ca.certFile);
    expect(imported.exitCode).toBe(0);
    expect(imported.out[0]).toMatch(
      /^imported listeblanchemssante_excerpt_domaines-001-020\.xml as list #1: generated 2025-03-13T14:54:10Z, imported \S+ from listeblanchemssante_excerpt_domaines-001-020\.xml, 20 entries, 1 CA certificates, sha256 4feaf6d3c43b7977…$/,
    );
    const again = await mss('import', FIXTURE);
    expect(again.out[0]).toMatch(/^unchanged: listeblanchemssante_excerpt_domaines-001-020\.xml is the list in force/);

    const list = await mss('list');
    expect(list.out[1]).toMatch(/^ {2}CA: CN=MSS TEST ROOT,O=MSS TEST,C=FR {2}\(until \d{4}-\d\d-\d\d\)$/);
    expect(list.out).toHaveLength(22);
    expect(list.out[2]).toBe(
      '  adsea29.mssante.fr  CN=medimail-asip.mipih.fr,OU=318310021300028,O=GIP MIPIH,ST=Haute-Garonne (31),C=FR  (BREST LA SAUVEGARDE)  updated 2025-03-13T14:54:10Z',
    );
    expect((await mss('list', '3C-CCCONCORDE.mssante.fr')).out.slice(2)).toHaveLength(2);
    const missing = await mss('list', 'nowhere.test');
    expect(missing).toMatchObject({ exitCode: 1, out: [expect.any(String), expect.any(String), 'nowhere.test is not in the trust space'] });

    const bad = path.join(dir.dir, 'bad.xml');
    writeFileSync(bad, '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><ListeBlancheMSSante/>');
    const refused = await mss('import', bad);
    expect(refused.exitCode).toBe(2);
    expect(refused.err[0]).toMatch(/^the trust space stays as it was: list #1: /);
    expect(refused.err[1]).toBe('mss: DOCTYPE and entity declarations are refused in a trust list');
    expect((await mss('import', path.join(dir.dir, 'absent.xml'))).err[0]).toMatch(/^mss: cannot read the trust list .*absent\.xml/);
    expect((await mss('import', FIXTURE, '--ca', server.certFile)).err[1]).toMatch(/^mss: CN=mss\.clinique-b.* is not a CA certificate/);
    expect((await mss('list', '--history')).out.filter((l) => l.startsWith('  list #'))).toEqual([]);

    const journal = (await t.store.readAudit(0, 100)).filter((r) => r.action === 'trust-import');
    expect(journal.map((r) => [r.object, r.outcome])).toEqual([
      ['listeblanchemssante_excerpt_domaines-001-020.xml', 'ok'],
      ['listeblanchemssante_excerpt_domaines-001-020.xml', 'unchanged'],
      ['bad.xml', 'refused'],
      ['listeblanchemssante_excerpt_domaines-001-020.xml', 'refused'],
    ]);
    expect(JSON.parse(journal[0]!.detail)).toMatchObject({ list: 1, entries: 20, skipped: 0, ca: true });
  });

  it('says what to do before the first import', async () => {
    expect(await mss('list')).toMatchObject({ exitCode: 2, err: ['mss: no trust list imported yet: run "mss trust import <xml> --ca <pem>" or set trust.source'] });
  });

  it('exports our entries, which another store imports and trusts our server certificate with', async () => {
    const file = path.join(dir.dir, `ours-${engine}.xml`);
    const caFile = path.join(dir.dir, `ours-ca-${engine}.pem`);
    const exported = await mss('export', '--out', file, '--ca-out', caFile);
    expect(exported).toMatchObject({ exitCode: 0, err: [`wrote 2 entries to ${file} and the CA bundle to ${caFile}`] });
    const parsed = parseTrustList(readFileSync(file));
    expect(parsed.domains.map((d) => [d.name, d.operatorDn, d.description])).toEqual([
      ['clinique-b.mssante.test', 'CN=mss.clinique-b.mssante.test,OU=123456789,O=CLINIQUE B,ST=Rhône (69),C=FR', 'Opérateur mss.clinique-b.mssante.test'],
      ['patients-b.mssante.test', 'CN=mss.clinique-b.mssante.test,OU=123456789,O=CLINIQUE B,ST=Rhône (69),C=FR', 'Opérateur mss.clinique-b.mssante.test'],
    ]);

    const peer = await openTestStore(engine);
    try {
      const peerTrust = openTrustStore(peer.store);
      await importTrustList(peerTrust, readFileSync(file), { source: path.basename(file), caBundle: readFileSync(caFile) });
      const space = new TrustSpace(peerTrust);
      expect(await space.checkPeer('clinique-b.mssante.test', server.pem)).toMatchObject({ ok: true });
      expect((await space.anchors()).map((c) => c.subject)).toEqual(['CN=MSS TEST ROOT,O=MSS TEST,C=FR']);
    } finally {
      await peer.dispose();
    }

    // With --all, the entries of the list in force follow ours; to standard output without --out.
    config = { ...config, localDomains: ['clinique-b.mssante.test'], trust: { export: { description: 'Clinique B', supportContact: 'support@clinique-b.test' } } };
    await mss('import', FIXTURE);
    const all = await mss('export', '--all');
    const back = parseTrustList(all.out.join('\n'));
    expect(back.domains).toHaveLength(21);
    expect(back.domains[0]).toMatchObject({ name: 'clinique-b.mssante.test', description: 'Clinique B', supportContact: 'support@clinique-b.test' });
    expect(back.domains[1]!.name).toBe('adsea29.mssante.fr');
  });
});

describe('mss trust through the built CLI, between two operators', () => {
  const cli = path.join(repo, 'dist/src/cli.js');

  function mss(cwd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
    return new Promise((resolve) => {
      execFile(process.execPath, [cli, ...args], { cwd, encoding: 'utf8' }, (error, out, err) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out, err });
      });
    });
  }

  function operator(name: string, domain: string): string {
    const cwd = path.join(dir.dir, name);
    mkdirSync(cwd, { recursive: true });
    writeFileSync(path.join(cwd, 'config.json'), JSON.stringify({ hostname: `mss.${domain}`, localDomains: [domain], demo: { enabled: false } }));
    return cwd;
  }

  it('A exports its entry and CA bundle, B imports them and lists A', async () => {
    const a = operator('a', 'operateur-a.mssante.test');
    const b = operator('b', 'operateur-b.mssante.test');
    const inits = await Promise.all([mss(a, ['init']), mss(b, ['init'])]);
    for (const init of inits) expect(init.code, init.err).toBe(0);
    const exported = await mss(a, ['trust', 'export', '--out', 'a.xml', '--ca-out', 'a-ca.pem']);
    expect(exported.code, exported.err).toBe(0);
    const imported = await mss(b, ['trust', 'import', path.join(a, 'a.xml'), '--ca', path.join(a, 'a-ca.pem')]);
    expect(imported.code, imported.err).toBe(0);
    expect(imported.out).toMatch(/^imported a\.xml as list #1: .* 1 entries, \d CA certificates/);
    const listed = await mss(b, ['trust', 'list', 'operateur-a.mssante.test']);
    expect(listed.code).toBe(0);
    expect(listed.out).toMatch(/\n {2}operateur-a\.mssante\.test {2}CN=mss\.operateur-a\.mssante\.test,.* {2}\(Opérateur mss\.operateur-a\.mssante\.test\)/);
  }, 120_000);
});
