/**
 * `mss pki …` end to end, in process: a commander program with `registerPkiCommands`, a temp data dir
 * initialised by `initOperator` (demo operator, dev PKI), on both engines.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { devPkiPaths } from '../../src/crypto/devpki.js';
import { issueDemoCredentials } from '../../src/crypto/keystore.js';
import { PkiCommandError, registerPkiCommands } from '../../src/crypto/pki-cli.js';
import { initOperator, openKeyring, pkiOptions } from '../../src/init.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/types.js';
import { createTestDatabase, ENGINES, tempDir } from '../helpers/engines.js';
import { command, makeLeaf, makeP12, makeTestCa, openssl } from '../helpers/openssl-certs.js';

const DOMAIN = 'hopital-demo.mssante.test';
const JEAN = `jean.dupont@${DOMAIN}`;
const CLAIRE = `claire.martin@${DOMAIN}`;
const DPI = `dpi@${DOMAIN}`;
const PATIENT = '279035121518989@patient.mssante.test';

async function withStore<T>(config: Config, work: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(config);
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

describe.each(ENGINES)('mss pki (%s, in process)', (engine) => {
  const tmp = tempDir('mss-pki-cli-');
  const configFile = path.join(tmp.dir, 'config.json');
  let dropDb: (() => Promise<void>) | null = null;
  let config: Config;

  /** Runs `mss pki …` on a fresh program; resolves with the printed lines, rejects with the command's error. */
  async function mss(...args: string[]): Promise<string[]> {
    const out: string[] = [];
    const program = new Command('mss').exitOverride().configureOutput({ writeOut: (s) => out.push(s), writeErr: (s) => out.push(s) });
    registerPkiCommands(program, {
      configOf: (cmd) => loadConfig(cmd.optsWithGlobals<{ config?: string }>().config),
      withStore,
      print: (line) => out.push(line),
    });
    await program.parseAsync([...args, '--config', configFile], { from: 'user' });
    return out;
  }

  async function refused(args: string[], message: RegExp): Promise<void> {
    const err = await mss(...args).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PkiCommandError);
    expect((err as Error).message).toMatch(message);
  }

  beforeAll(async () => {
    const store: Record<string, unknown> = { engine };
    if (engine === 'postgres') {
      const db = await createTestDatabase();
      store.url = db.url;
      dropDb = db.drop;
    }
    writeFileSync(configFile, JSON.stringify({ dataDir: './data', certsDir: './certs', store }));
    config = loadConfig(configFile);
    // The demo mailboxes without their keystore credentials, so the commands start from an empty keystore.
    const report = await initOperator(config, { demoCredentials: false });
    expect(report.accounts.map((a) => a.address).sort()).toEqual([CLAIRE, DPI, JEAN].sort());
    // The demo patient is pending: an activation code instead of a password.
    expect(report.activations.map((a) => a.address)).toEqual([PATIENT]);
  });
  afterAll(async () => {
    await dropDb?.();
    tmp.dispose();
  });

  it('list on a fresh operator: no credentials', async () => {
    expect(await mss('pki', 'list')).toEqual(['no credentials']);
  });

  it('issue gives a practitioner auth, sign and OpenPGP credentials, once', async () => {
    const out = await mss('pki', 'issue', JEAN);
    expect(out.slice(0, 3).map((l) => l.split(/\s+/).slice(0, 2).join(' '))).toEqual(['issued auth', 'issued sign', 'issued openpgp']);
    expect(out[3]).toBe(`${JEAN}: 3 credentials issued`);
    const again = await mss('pki', 'issue', JEAN);
    expect(again.slice(0, 3).every((l) => l.startsWith('present'))).toBe(true);
    expect(again[3]).toBe(`${JEAN}: nothing to issue`);
  });

  it('issue --no-openpgp for an application mailbox; a patient mailbox is refused', async () => {
    const out = await mss('pki', 'issue', DPI, '--no-openpgp');
    expect(out).toHaveLength(2);
    expect(out[0]).toMatch(/^issued +auth +serial [0-9a-f]+ +fingerprint [0-9a-f]{16}$/);
    await refused(['pki', 'issue', PATIENT], /PATIENT mailbox/);
    await refused(['pki', 'issue', `nobody@${DOMAIN}`], /no mailbox nobody@/);
  });

  it('import: PEM with --usage, PKCS#12 with a password file; bad combinations and mismatched keys are refused', async () => {
    const ca = await makeTestCa(tmp.dir, 'Import');
    const leaf = await makeLeaf(tmp.dir, ca, 'claire-enc', { email: CLAIRE });
    const signLeaf = await makeLeaf(tmp.dir, ca, 'claire-sign', { email: CLAIRE, keyUsage: 'digitalSignature, nonRepudiation', extKeyUsage: 'emailProtection' });
    const other = await makeLeaf(tmp.dir, ca, 'claire-other', { email: CLAIRE });
    const p12 = await makeP12(tmp.dir, signLeaf, ca, 'un mot de passe', 'claire-sign');
    const passwordFile = path.join(tmp.dir, 'p12.pass');
    writeFileSync(passwordFile, 'un mot de passe\n');

    const pem = await mss('pki', 'import', CLAIRE, '--cert', leaf.certFile, '--key', leaf.keyFile, '--chain', ca.certFile, '--usage', 'encrypt');
    expect(pem).toEqual([expect.stringMatching(new RegExp(`^imported: ${CLAIRE} encrypt claire-enc serial [0-9a-f]+ fingerprint [0-9a-f]{16}$`))]);
    const same = await mss('pki', 'import', CLAIRE, '--cert', leaf.certFile, '--key', leaf.keyFile, '--usage', 'encrypt');
    expect(same[0]).toMatch(/^already present: /);
    const fromP12 = await mss('pki', 'import', CLAIRE, '--p12', p12, '--password-file', passwordFile);
    expect(fromP12[0]).toMatch(new RegExp(`^imported: ${CLAIRE} sign claire-sign `));

    await refused(['pki', 'import', CLAIRE, '--cert', leaf.certFile, '--key', other.keyFile, '--usage', 'auth'], /private key does not match the certificate/);
    await refused(['pki', 'import', CLAIRE, '--cert', leaf.certFile, '--key', leaf.keyFile], /--usage is required/);
    await refused(['pki', 'import', CLAIRE, '--p12', p12], /--password-file/);
    await refused(['pki', 'import', CLAIRE, '--p12', p12, '--cert', leaf.certFile, '--password-file', passwordFile], /used alone/);
    await refused(['pki', 'import', CLAIRE, '--cert', path.join(tmp.dir, 'absent.pem'), '--key', leaf.keyFile, '--usage', 'auth'], /cannot read the certificate file .*ENOENT/);
    writeFileSync(passwordFile, 'wrong\n');
    await refused(['pki', 'import', CLAIRE, '--p12', p12, '--password-file', passwordFile], /wrong password/);
    // commander itself refuses a usage that does not exist
    await expect(mss('pki', 'import', CLAIRE, '--cert', leaf.certFile, '--key', leaf.keyFile, '--usage', 'everything')).rejects.toThrow(/Allowed choices are auth, sign, encrypt, openpgp/);
  });

  it('list prints a table, for one mailbox or all', async () => {
    const all = await mss('pki', 'list');
    expect(all[0]).toMatch(/^ADDRESS +USAGE +SUBJECT +SERIAL +NOT AFTER +FINGERPRINT +REVOKED$/);
    expect(all.at(-1)).toBe('6 credentials');
    const one = await mss('pki', 'list', JEAN);
    expect(one[0]).toMatch(/^USAGE +SUBJECT +SERIAL +NOT AFTER +FINGERPRINT +REVOKED$/);
    expect(one.slice(1, -1).map((l) => l.split(/ {2,}/)[0])).toEqual(['auth', 'sign', 'openpgp']);
    expect(one[2]).toMatch(/^sign +810001234565\/DUPONT Jean +[0-9a-f]+ +\d{4}-\d\d-\d\d +[0-9a-f]{16} +no$/);
    expect(one[3]).toMatch(new RegExp(`^openpgp +Dr Jean DUPONT \\(cardiologie\\) <${JEAN.replace(/\./g, '\\.')}>`));
  });

  it('revoke puts a dev certificate on the CRL; list shows it; issue then replaces it', async () => {
    const signLine = (await mss('pki', 'list', JEAN))[2]!;
    const serial = signLine.split(/ {2,}/)[2]!;
    const out = await mss('pki', 'revoke', JEAN, serial, '--reason', 'keyCompromise');
    expect(out[0]).toMatch(new RegExp(`^revoked: ${JEAN} sign serial ${serial} \\(fingerprint [0-9a-f]{16}\\), reason keyCompromise$`));
    const crlFile = devPkiPaths(config.certsDir).caCrl('persons');
    expect(out[1]).toBe(`CRL updated: ${crlFile}`);
    const crl = await openssl(['crl', '-in', crlFile, '-noout', '-text'], tmp.dir);
    expect(crl).toContain(`Serial Number: ${serial.toUpperCase()}`);

    const listed = await mss('pki', 'list', JEAN);
    expect(listed[2]).toMatch(/ \d{4}-\d\d-\d\d keyCompromise$/);
    expect((await mss('pki', 'revoke', JEAN, serial))[0]).toMatch(/^already revoked: /);
    await refused(['pki', 'revoke', JEAN, 'ffffffffffffffff'], /no certificate or key with serial or fingerprint/);
    await expect(mss('pki', 'revoke', JEAN, serial, '--reason', 'boredom')).rejects.toThrow(/Allowed choices/);

    const reissued = await mss('pki', 'issue', JEAN);
    expect(reissued.map((l) => l.split(/\s+/).slice(0, 2).join(' ')).slice(0, 3)).toEqual(['present auth', 'issued sign', 'present openpgp']);
    // The new signature certificate verifies against the CRL (the revoked one is another serial).
    const newSerial = (await mss('pki', 'list', JEAN))[4]!.split(/ {2,}/)[2]!;
    expect(newSerial).not.toBe(serial);
    const paths = devPkiPaths(config.certsDir);
    const verify = await command(
      'openssl',
      ['verify', '-crl_check', '-CAfile', paths.caCert('root'), '-untrusted', paths.caCert('persons'), '-CRLfile', paths.caCrl('persons'), paths.mailboxCert(JEAN, 'sign')],
      tmp.dir,
    );
    expect(verify.code, verify.out).toBe(0);
  });

  it('issueDemoCredentials (for mss init) fills in the demo mailboxes, idempotently', async () => {
    const keyring = openKeyring(config);
    const run = () => withStore(config, (store) => issueDemoCredentials(store, keyring, pkiOptions(config, keyring)));
    const first = await run();
    // Claire had imported encrypt and sign credentials but no auth one; the application mailbox had no OpenPGP key.
    expect(first.lines).toEqual([`issued keystore credentials for ${CLAIRE}: auth, openpgp`, `issued keystore credentials for ${DPI}: openpgp`]);
    expect(await run()).toEqual({ created: 0, lines: [] });
  });

  it.runIf(engine === 'sqlite')('no private key in clear in the data directory after all this', () => {
    const files = readdirSync(config.dataDir).filter((f) => f.startsWith('mss.sqlite'));
    expect(files).toContain('mss.sqlite');
    for (const f of files) expect(readFileSync(path.join(config.dataDir, f)).includes('PRIVATE KEY'), f).toBe(false);
  });
});
