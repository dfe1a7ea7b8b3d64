/**
 * The CRL provider: files and http URLs (a local server), cache, reload on file change and after nextUpdate,
 * the certificate's distribution point, signature and freshness checks, download limits.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CrlProvider, parseCrls, validateCertificate } from '../../src/crypto/smime/index.js';
import { crlPem, DAY_MS, generatePair, type Issued, TestPki } from './helpers/pki.js';

let dir: string;
let pki: TestPki;
let alice: Issued;
let bob: Issued;
let server: http.Server;
let base: string;
/** What the server answers, by path: body and status. */
const routes = new Map<string, { status: number; body: Buffer }>();
const hits = new Map<string, number>();

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'mss-smime-crl-'));
  server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    hits.set(url, (hits.get(url) ?? 0) + 1);
    const r = routes.get(url);
    res.writeHead(r?.status ?? 404, { 'content-type': 'application/pkix-crl' });
    res.end(r?.body ?? '');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const [rootP, interP, aliceP, bobP] = await Promise.all([generatePair('rsa2048'), generatePair('rsa2048'), generatePair('ec256'), generatePair('ec256')]);
  pki = await TestPki.create('CRL', { root: rootP, intermediate: interP });
  alice = await pki.leaf({ pair: aliceP, issuer: pki.intermediate, email: 'alice@hopital.test', keyUsage: 0x3, crlUrls: [`${base}/dp/persons.crl`] });
  bob = await pki.leaf({ pair: bobP, issuer: pki.intermediate, email: 'bob@hopital.test', keyUsage: 0x3 });
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

describe('parseCrls', () => {
  it('reads PEM (several CRLs) and DER, with entries and dates', async () => {
    const a = await TestPki.crl(pki.intermediate, [alice, bob]);
    const b = await TestPki.crl(pki.root, []);
    const both = parseCrls(Buffer.from(crlPem(a) + crlPem(b)));
    expect(both).toHaveLength(2);
    expect([...both[0]!.revoked.keys()].sort()).toEqual([alice.cert.serialNumber, bob.cert.serialNumber].sort());
    expect(both[1]!.revoked.size).toBe(0);
    expect(parseCrls(a)[0]!.nextUpdate!.getTime()).toBeGreaterThan(Date.now() + 6 * DAY_MS);
    expect(() => parseCrls(Buffer.from('3003020100', 'hex'))).toThrow();
  });
});

describe('CrlProvider over http', () => {
  it('fetches once, caches, and refetches after nextUpdate; a new CRL listing the certificate then revokes it', async () => {
    const now = new Date();
    routes.set('/persons.crl', { status: 200, body: await TestPki.crl(pki.intermediate, [], { nextUpdate: new Date(now.getTime() + DAY_MS) }) });
    const provider = new CrlProvider({ urls: [`${base}/persons.crl`], distributionPoints: false });
    hits.clear();
    expect(await provider.check(bob.cert, pki.intermediate.cert, now)).toEqual({ status: 'good' });
    expect(await provider.check(bob.cert, pki.intermediate.cert, new Date(now.getTime() + 60_000))).toEqual({ status: 'good' });
    expect(hits.get('/persons.crl')).toBe(1);
    // The CA publishes a new CRL; ours is still fresh, so nothing changes until its nextUpdate.
    routes.set('/persons.crl', { status: 200, body: await TestPki.crl(pki.intermediate, [bob], { nextUpdate: new Date(now.getTime() + 8 * DAY_MS) }) });
    expect((await provider.check(bob.cert, pki.intermediate.cert, new Date(now.getTime() + 3_600_000 - 1))).status).toBe('good');
    const later = new Date(now.getTime() + DAY_MS + 1000);
    const r = await provider.check(bob.cert, pki.intermediate.cert, later);
    expect(r.status).toBe('revoked');
    expect(hits.get('/persons.crl')).toBe(2);
  });

  it('follows the distribution point of a certificate', async () => {
    routes.set('/dp/persons.crl', { status: 200, body: await TestPki.crl(pki.intermediate, [alice]) });
    hits.clear();
    const provider = new CrlProvider();
    expect((await provider.check(alice.cert, pki.intermediate.cert, new Date())).status).toBe('revoked');
    expect(hits.get('/dp/persons.crl')).toBe(1);
    expect(provider.loads.get(`${base}/dp/persons.crl`)).toBe(1);
  });

  it('an unreachable or failing source gives unknown, an oversized one is refused, an older good CRL stays usable until its nextUpdate', async () => {
    routes.set('/broken.crl', { status: 500, body: Buffer.from('oops') });
    const failing = new CrlProvider({ urls: [`${base}/broken.crl`], distributionPoints: false });
    const r = await failing.check(bob.cert, pki.intermediate.cert, new Date());
    expect(r).toMatchObject({ status: 'unknown' });
    if (r.status === 'unknown') expect(r.detail).toMatch(/HTTP 500/);

    routes.set('/big.crl', { status: 200, body: Buffer.alloc(5000, 0x30) });
    const big = await new CrlProvider({ urls: [`${base}/big.crl`], distributionPoints: false, maxBytes: 1000 }).check(bob.cert, pki.intermediate.cert, new Date());
    expect(big).toMatchObject({ status: 'unknown' });
    if (big.status === 'unknown') expect(big.detail).toMatch(/larger than 1000 bytes/);

    const now = new Date();
    routes.set('/flaky.crl', { status: 200, body: await TestPki.crl(pki.intermediate, [], { nextUpdate: new Date(now.getTime() + 3 * DAY_MS) }) });
    const flaky = new CrlProvider({ urls: [`${base}/flaky.crl`], distributionPoints: false, refreshMs: 60_000, retryMs: 1000 });
    expect((await flaky.check(bob.cert, pki.intermediate.cert, now)).status).toBe('good');
    routes.set('/flaky.crl', { status: 503, body: Buffer.alloc(0) });
    expect((await flaky.check(bob.cert, pki.intermediate.cert, new Date(now.getTime() + 2 * DAY_MS))).status).toBe('good');
    expect((await flaky.check(bob.cert, pki.intermediate.cert, new Date(now.getTime() + 4 * DAY_MS))).status).toBe('unknown');
  });
});

describe('CrlProvider over files, inside path validation', () => {
  it('reloads a file when it changes; checks the intermediate against the root CRL too', async () => {
    const inter = path.join(dir, 'persons.crl');
    const root = path.join(dir, 'root.crl');
    writeFileSync(inter, crlPem(await TestPki.crl(pki.intermediate, [])));
    writeFileSync(root, await TestPki.crl(pki.root, []));
    const trust = { anchors: [pki.root.cert], intermediates: [pki.intermediate.cert], revocation: new CrlProvider({ files: [inter, root], distributionPoints: false }) };
    const ok = await validateCertificate(bob.cert, 'sign', 'signer', trust);
    expect(ok.path.map((c) => c.subject)).toEqual([bob.cert.subject, pki.intermediate.cert.subject, pki.root.cert.subject]);
    await new Promise((r) => setTimeout(r, 20)); // a different mtime
    writeFileSync(inter, crlPem(await TestPki.crl(pki.intermediate, [bob])));
    await expect(validateCertificate(bob.cert, 'sign', 'signer', trust)).rejects.toMatchObject({ code: 'cert-revoked', party: 'signer' });
    // The intermediate itself revoked by the root.
    writeFileSync(inter, crlPem(await TestPki.crl(pki.intermediate, [])));
    writeFileSync(root, await TestPki.crl(pki.root, [pki.intermediate]));
    await new Promise((r) => setTimeout(r, 20));
    await expect(validateCertificate(alice.cert, 'sign', 'signer', trust)).rejects.toMatchObject({
      code: 'cert-revoked',
      certificate: { subject: pki.intermediate.cert.subject },
    });
  });
});
