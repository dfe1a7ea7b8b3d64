import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DevPkiOptions,
  DevPkiError,
  ensureDevPki,
  issueOrganisationCertificate,
  issuePractitionerCertificates,
  loadMailboxCredential,
  loadServerTls,
  practitionerIdFromCertificate,
  readCrlEntries,
  revokeCertificate,
  writeCrl,
} from '../src/crypto/devpki.js';
import { Keyring } from '../src/crypto/seal.js';

/** Runs the openssl CLI; returns its exit status and stdout+stderr. */
function openssl(args: string[], cwd: string): { status: number | null; out: string } {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function expectOk(args: string[], cwd: string): string {
  const r = openssl(args, cwd);
  expect(r.status, `openssl ${args.join(' ')}\n${r.out}`).toBe(0);
  return r.out;
}

function allFiles(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).map((f) => path.join(dir, f)).filter((f) => statSync(f).isFile());
}

function mtimes(dir: string): Record<string, number> {
  return Object.fromEntries(allFiles(dir).map((f) => [f, statSync(f).mtimeMs]));
}

/** A TLS handshake against a node:tls server using loadServerTls; resolves with the client's view. */
async function handshake(material: { key: string; cert: string; ca: string }, servername: string, host: string) {
  const server = tls.createServer({ key: material.key, cert: material.cert }, (s) => s.end('hello\n'));
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as { port: number };
  try {
    return await new Promise<{ authorized: boolean; error: string | null; data: string }>((resolve, reject) => {
      const sock = tls.connect({ host, port, servername, ca: material.ca, rejectUnauthorized: false });
      let data = '';
      sock.on('data', (d: Buffer) => (data += d.toString()));
      sock.on('end', () =>
        resolve({ authorized: sock.authorized, error: sock.authorizationError ? String(sock.authorizationError) : null, data }),
      );
      sock.on('error', reject);
    });
  } finally {
    server.close();
  }
}

const rootDir = mkdtempSync(path.join(tmpdir(), 'mss-devpki-'));
afterAll(() => rmSync(rootDir, { recursive: true, force: true }));

function options(name: string, over: Partial<DevPkiOptions> = {}): DevPkiOptions {
  return {
    certsDir: path.join(rootDir, name),
    keyring: new Keyring(randomBytes(32)),
    keyAlgorithm: 'RSA-2048',
    hash: 'SHA-256',
    caValidityDays: 3650,
    leafValidityDays: 825,
    serverNames: ['mss.hopital-demo.mssante.test'],
    ...over,
  };
}

const practitioner = {
  address: 'jean.dupont@hopital-demo.mssante.test',
  rpps: '10001234567',
  givenName: 'Hélène',
  surname: 'Dupont',
  organisation: 'Hôpital Démo',
};
const app = { address: 'labo@hopital-demo.mssante.test', idNatStruct: '1750000001', name: 'Hôpital Démo' };
const userDir = `users/${practitioner.address}`;
const appDir = `users/${app.address}`;

describe.each([
  { alg: 'RSA-2048', hash: 'SHA-256' },
  { alg: 'ECDSA-P256', hash: 'SHA-384' },
] as const)('dev PKI ($alg, $hash)', ({ alg, hash }) => {
  const opts = options(`${alg}-${hash}`, { keyAlgorithm: alg, hash });
  const dir = opts.certsDir;

  beforeAll(async () => {
    const first = await ensureDevPki(opts);
    expect(first.created).toBe(true);
    const p = await issuePractitionerCertificates(opts, practitioner);
    expect(p.created).toBe(true);
    const o = await issueOrganisationCertificate(opts, app);
    expect(o.created).toBe(true);
  }, 60_000);

  it('writes the expected layout', () => {
    const files = allFiles(dir).map((f) => path.relative(dir, f)).sort();
    expect(files).toEqual(
      [
        'ca/chain.pem',
        'ca/organisations.crl.pem',
        'ca/organisations.key.sealed',
        'ca/organisations.pem',
        'ca/persons.crl.pem',
        'ca/persons.key.sealed',
        'ca/persons.pem',
        'ca/root.crl.pem',
        'ca/root.key.sealed',
        'ca/root.pem',
        'server/server.key.sealed',
        'server/server.pem',
        `${appDir}/org.key.sealed`,
        `${appDir}/org.pem`,
        `${userDir}/auth.key.sealed`,
        `${userDir}/auth.pem`,
        `${userDir}/sign.key.sealed`,
        `${userDir}/sign.pem`,
      ].sort(),
    );
  });

  it('never writes a private key in clear, and sealed keys are 0600', () => {
    for (const f of allFiles(dir)) {
      expect(readFileSync(f).includes('PRIVATE KEY'), f).toBe(false);
      if (f.endsWith('.key.sealed')) expect(statSync(f).mode & 0o777, f).toBe(0o600);
    }
  });

  it('practitioner certificates chain to the root, with CRL checks, for the right purposes', () => {
    for (const kind of ['auth', 'sign']) {
      const out = expectOk(
        ['verify', '-crl_check_all', '-CAfile', 'ca/root.pem', '-untrusted', 'ca/persons.pem', '-CRLfile', 'ca/root.crl.pem', '-CRLfile', 'ca/persons.crl.pem', `${userDir}/${kind}.pem`],
        dir,
      );
      expect(out).toContain(': OK');
      expectOk(['verify', '-purpose', 'smimesign', '-CAfile', 'ca/root.pem', '-untrusted', 'ca/persons.pem', `${userDir}/${kind}.pem`], dir);
    }
    expectOk(['verify', '-purpose', 'sslclient', '-CAfile', 'ca/root.pem', '-untrusted', 'ca/persons.pem', `${userDir}/auth.pem`], dir);
    // The signature certificate is not a TLS client certificate.
    expect(openssl(['verify', '-purpose', 'sslclient', '-CAfile', 'ca/root.pem', '-untrusted', 'ca/persons.pem', `${userDir}/sign.pem`], dir).status).not.toBe(0);
    // A practitioner certificate does not chain through the organisations CA.
    expect(openssl(['verify', '-CAfile', 'ca/root.pem', '-untrusted', 'ca/organisations.pem', `${userDir}/auth.pem`], dir).status).not.toBe(0);
  });

  it('practitioner subject and SAN follow the documented naming', () => {
    const text = expectOk(['x509', '-in', `${userDir}/auth.pem`, '-noout', '-text', '-nameopt', 'RFC2253,-esc_msb,sname'], dir);
    expect(text).toContain(`email:${practitioner.address}`);
    expect(text).toContain('serialNumber=810001234567');
    expect(text).toContain('CN=810001234567/DUPONT Hélène');
    expect(text).toContain('SN=DUPONT');
    expect(text).toContain('GN=Hélène');
    expect(text).toContain('OU=Hôpital Démo');
    expect(text).toMatch(/Issuer: CN=DEV AC IGC-SANTE PERSONNES,OU=DEV IGC-SANTE,O=MSS DEV,C=FR/);
    expect(text).toMatch(/X509v3 Subject Key Identifier/);
    expect(text).toMatch(/X509v3 Authority Key Identifier/);
    expect(text).toMatch(alg === 'ECDSA-P256' ? /Digital Signature, Key Agreement/ : /Digital Signature, Key Encipherment/);
    const sign = expectOk(['x509', '-in', `${userDir}/sign.pem`, '-noout', '-ext', 'keyUsage,extendedKeyUsage'], dir);
    expect(sign).toContain('Digital Signature, Non Repudiation');
    expect(sign).toContain('E-mail Protection');
    expect(sign).not.toContain('Client Authentication');
    const serial = expectOk(['x509', '-in', `${userDir}/auth.pem`, '-noout', '-serial'], dir).trim();
    expect(serial).toMatch(/^serial=[0-7][0-9A-F]{31}$/); // 16 bytes, positive
  });

  it('practitionerIdFromCertificate reads idNat_PS and nothing else', () => {
    expect(practitionerIdFromCertificate(readFileSync(path.join(dir, userDir, 'auth.pem'), 'utf8'))).toBe('810001234567');
    expect(practitionerIdFromCertificate(readFileSync(path.join(dir, userDir, 'sign.pem'), 'utf8'))).toBe('810001234567');
    expect(practitionerIdFromCertificate(readFileSync(path.join(dir, appDir, 'org.pem'), 'utf8'))).toBeNull();
    expect(practitionerIdFromCertificate(readFileSync(path.join(dir, 'server/server.pem'), 'utf8'))).toBeNull();
    expect(practitionerIdFromCertificate('not a certificate')).toBeNull();
  });

  it('organisation certificate: subject, SAN, usages, chain', () => {
    expectOk(['verify', '-crl_check', '-CAfile', 'ca/root.pem', '-untrusted', 'ca/organisations.pem', '-CRLfile', 'ca/organisations.crl.pem', `${appDir}/org.pem`], dir);
    expectOk(['verify', '-purpose', 'sslclient', '-CAfile', 'ca/root.pem', '-untrusted', 'ca/organisations.pem', `${appDir}/org.pem`], dir);
    const text = expectOk(['x509', '-in', `${appDir}/org.pem`, '-noout', '-text', '-nameopt', 'RFC2253,-esc_msb,sname'], dir);
    expect(text).toContain(`email:${app.address}`);
    expect(text).toContain('serialNumber=1750000001');
    expect(text).toContain('OU=1750000001');
    expect(text).toContain('O=Hôpital Démo');
    expect(text).toContain('TLS Web Client Authentication, E-mail Protection');
  });

  it('server certificate verifies as an SSL server for localhost and the configured names', () => {
    expectOk(['verify', '-purpose', 'sslserver', '-CAfile', 'ca/root.pem', '-untrusted', 'server/server.pem', 'server/server.pem'], dir);
    expectOk(['verify', '-purpose', 'sslserver', '-verify_hostname', 'localhost', '-CAfile', 'ca/root.pem', '-untrusted', 'ca/organisations.pem', 'server/server.pem'], dir);
    expectOk(['verify', '-purpose', 'sslserver', '-verify_ip', '::1', '-CAfile', 'ca/root.pem', '-untrusted', 'ca/organisations.pem', 'server/server.pem'], dir);
    const san = expectOk(['x509', '-in', 'server/server.pem', '-noout', '-ext', 'subjectAltName'], dir);
    expect(san).toContain('DNS:localhost');
    expect(san).toContain('DNS:mss.hopital-demo.mssante.test');
    expect(san).toContain('IP Address:127.0.0.1');
    // server.pem is leaf + intermediate
    expect(readFileSync(path.join(dir, 'server/server.pem'), 'utf8').match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
  });

  it('CA certificates carry CA constraints; every CRL verifies against its CA', () => {
    const root = expectOk(['x509', '-in', 'ca/root.pem', '-noout', '-text'], dir);
    expect(root).toMatch(/Subject: C ?= ?FR, O ?= ?MSS DEV, OU ?= ?DEV IGC-SANTE, CN ?= ?DEV AC RACINE IGC-SANTE/);
    expect(root).toContain('CA:TRUE');
    expect(root).toContain('Certificate Sign, CRL Sign');
    for (const ca of ['persons', 'organisations']) {
      expect(expectOk(['x509', '-in', `ca/${ca}.pem`, '-noout', '-ext', 'basicConstraints'], dir)).toContain('CA:TRUE, pathlen:0');
      expectOk(['verify', '-CAfile', 'ca/root.pem', `ca/${ca}.pem`], dir);
    }
    for (const ca of ['root', 'persons', 'organisations']) {
      const pem = readFileSync(path.join(dir, `ca/${ca}.crl.pem`), 'utf8');
      expect(pem.startsWith('-----BEGIN X509 CRL-----\n')).toBe(true);
      expect(expectOk(['crl', '-in', `ca/${ca}.crl.pem`, '-noout', '-verify', '-CAfile', 'ca/chain.pem'], dir)).toContain('verify OK');
      const text = expectOk(['crl', '-in', `ca/${ca}.crl.pem`, '-noout', '-text'], dir);
      expect(text).toContain('No Revoked Certificates');
      expect(text).toContain('X509v3 CRL Number');
      expect(text).toContain('X509v3 Authority Key Identifier');
      const next = /Next Update: (.+)/.exec(text)?.[1];
      const days = (Date.parse(next ?? '') - Date.now()) / 86_400_000;
      expect(days).toBeGreaterThan(6.9);
      expect(days).toBeLessThan(7.1);
    }
  });

  it('loadServerTls gives a key that matches the certificate: a TLS handshake to localhost is authorised', async () => {
    const material = loadServerTls(dir, opts.keyring);
    expect(material.key).toContain('PRIVATE KEY');
    const r = await handshake(material, 'localhost', '127.0.0.1');
    expect(r).toEqual({ authorized: true, error: null, data: 'hello\n' });
  });

  it('mailbox keys work for S/MIME with openssl cms (sign, encrypt, decrypt)', () => {
    const work = mkdtempSync(path.join(rootDir, 'cms-'));
    const sign = loadMailboxCredential(dir, opts.keyring, practitioner.address, 'sign');
    const enc = loadMailboxCredential(dir, opts.keyring, practitioner.address, 'encrypt');
    expect([sign.kind, enc.kind]).toEqual(['sign', 'auth']);
    writeFileSync(path.join(work, 'sign.key'), sign.key, { mode: 0o600 });
    writeFileSync(path.join(work, 'enc.key'), enc.key, { mode: 0o600 });
    writeFileSync(path.join(work, 'msg.txt'), 'Compte rendu\r\n');
    const ca = path.join(dir, 'ca/root.pem');
    const inter = path.join(dir, 'ca/persons.pem');
    expectOk(['cms', '-sign', '-in', 'msg.txt', '-signer', path.join(dir, userDir, 'sign.pem'), '-inkey', 'sign.key', '-certfile', inter, '-out', 'signed.p7m', '-outform', 'DER', '-nodetach', '-md', hash.toLowerCase().replace('-', '')], work);
    expectOk(['cms', '-verify', '-in', 'signed.p7m', '-inform', 'DER', '-CAfile', ca, '-purpose', 'smimesign', '-out', 'verified.txt'], work);
    expect(readFileSync(path.join(work, 'verified.txt'), 'utf8')).toBe('Compte rendu\r\n');
    expectOk(['cms', '-encrypt', '-aes-256-cbc', '-in', 'msg.txt', '-out', 'enc.p7m', '-outform', 'DER', path.join(dir, userDir, 'auth.pem')], work);
    expectOk(['cms', '-decrypt', '-in', 'enc.p7m', '-inform', 'DER', '-recip', path.join(dir, userDir, 'auth.pem'), '-inkey', 'enc.key', '-out', 'dec.txt'], work);
    expect(readFileSync(path.join(work, 'dec.txt'), 'utf8')).toBe('Compte rendu\r\n');
    rmSync(work, { recursive: true, force: true });
  });

  it('is idempotent: a second run creates nothing and touches no file', async () => {
    const before = mtimes(dir);
    const again = await ensureDevPki(opts);
    expect(again.created).toBe(false);
    expect(again.written).toEqual([]);
    expect(again.files).toContain(path.join(dir, 'ca/root.pem'));
    expect((await issuePractitionerCertificates(opts, practitioner)).created).toBe(false);
    expect((await issueOrganisationCertificate(opts, app)).created).toBe(false);
    expect(mtimes(dir)).toEqual(before);
  });
});

describe('dev PKI lifecycle', () => {
  it('revocation lands in the issuer CRL and openssl then refuses the certificate', async () => {
    const opts = options('revoke');
    await ensureDevPki(opts);
    await issuePractitionerCertificates(opts, practitioner);
    const dir = opts.certsDir;
    const auth = readFileSync(path.join(dir, userDir, 'auth.pem'), 'utf8');
    const r = await revokeCertificate(opts, auth);
    expect(r).toMatchObject({ ca: 'persons', alreadyRevoked: false });
    expect((await revokeCertificate(opts, auth)).alreadyRevoked).toBe(true);
    expect(readCrlEntries(dir, 'persons')).toHaveLength(1);
    const args = (f: string) => ['verify', '-crl_check', '-CAfile', 'ca/root.pem', '-untrusted', 'ca/persons.pem', '-CRLfile', 'ca/persons.crl.pem', f];
    const v = openssl(args(`${userDir}/auth.pem`), dir);
    expect(v.status).not.toBe(0);
    expect(v.out).toContain('certificate revoked');
    expectOk(args(`${userDir}/sign.pem`), dir); // the other certificate is still good
    expectOk(['crl', '-in', 'ca/persons.crl.pem', '-noout', '-verify', '-CAfile', 'ca/chain.pem'], dir);
    // A later ensureDevPki keeps the revocation (it only re-signs CRLs near their nextUpdate).
    expect((await ensureDevPki(opts)).created).toBe(false);
    expect(readCrlEntries(dir, 'persons')).toHaveLength(1);
    // A CRL close to its nextUpdate is re-signed by ensureDevPki, keeping its entries, with a higher CRL number.
    const crlNumber = () => /CRL Number: \n\s*(\d+)/.exec(expectOk(['crl', '-in', 'ca/persons.crl.pem', '-noout', '-text'], dir))?.[1];
    const numberBefore = BigInt(crlNumber() ?? '0');
    await writeCrl(opts, 'persons', readCrlEntries(dir, 'persons'), 0.5);
    const refreshed = await ensureDevPki(opts);
    expect(refreshed.written).toEqual([path.join(dir, 'ca/persons.crl.pem')]);
    expect(readCrlEntries(dir, 'persons')).toHaveLength(1);
    expect(BigInt(crlNumber() ?? '0')).toBeGreaterThan(numberBefore + 1n);
    expect(openssl(args(`${userDir}/auth.pem`), dir).out).toContain('certificate revoked');
  }, 30_000);

  it('reissues only the server certificate when a configured name is added', async () => {
    const opts = options('rename');
    await ensureDevPki(opts);
    const rootBefore = readFileSync(path.join(opts.certsDir, 'ca/root.pem'), 'utf8');
    const r = await ensureDevPki({ ...opts, serverNames: [...opts.serverNames, 'mx.hopital-demo.mssante.test', '192.0.2.7'] });
    expect(r.created).toBe(true);
    expect(r.written.map((f) => path.relative(opts.certsDir, f)).sort()).toEqual(['server/server.key.sealed', 'server/server.pem']);
    expect(readFileSync(path.join(opts.certsDir, 'ca/root.pem'), 'utf8')).toBe(rootBefore);
    const san = expectOk(['x509', '-in', 'server/server.pem', '-noout', '-ext', 'subjectAltName'], opts.certsDir);
    expect(san).toContain('DNS:mx.hopital-demo.mssante.test');
    expect(san).toContain('IP Address:192.0.2.7');
  }, 30_000);

  it('stays idempotent with a short leaf validity', async () => {
    const opts = options('short', { leafValidityDays: 1 });
    expect((await ensureDevPki(opts)).created).toBe(true);
    expect((await ensureDevPki(opts)).created).toBe(false);
  }, 30_000);

  it('concurrent first runs produce one PKI', async () => {
    const opts = options('concurrent');
    const results = await Promise.all([ensureDevPki(opts), ensureDevPki(opts), ensureDevPki(opts)]);
    expect(results.map((r) => r.created).sort()).toEqual([false, false, true]);
    expectOk(['verify', '-purpose', 'sslserver', '-CAfile', 'ca/root.pem', '-untrusted', 'ca/organisations.pem', 'server/server.pem'], opts.certsDir);
  }, 30_000);

  it('refuses a wrong master key, bad input and someone else’s mailbox, with actionable errors', async () => {
    const opts = options('refusals');
    await ensureDevPki(opts);
    const wrong = { ...opts, keyring: new Keyring(randomBytes(32)) };
    await expect(ensureDevPki(wrong)).rejects.toThrow(/master key/);
    expect(() => loadServerTls(opts.certsDir, wrong.keyring)).toThrow(DevPkiError);
    await expect(issuePractitionerCertificates(opts, { ...practitioner, address: '../../etc@x.test' })).rejects.toThrow(DevPkiError);
    await expect(issuePractitionerCertificates(opts, { ...practitioner, rpps: '123' })).rejects.toThrow(/RPPS/);
    await expect(ensureDevPki({ ...opts, serverNames: ['bad name'] })).rejects.toThrow(/host name/);
    await issuePractitionerCertificates(opts, practitioner);
    await expect(issuePractitionerCertificates(opts, { ...practitioner, rpps: '10009999999' })).rejects.toThrow(/belongs to 810001234567/);
    const empty = options('empty');
    await expect(issueOrganisationCertificate(empty, app)).rejects.toThrow(/mss init/);
    expect(() => loadServerTls(empty.certsDir, empty.keyring)).toThrow(/mss init/);
  }, 30_000);
});
