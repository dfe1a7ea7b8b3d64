/** PKCS#12 import (node-forge, local configuration only): key, certificate and chain as node objects. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pkcs12Error, processInbound, protectOutbound, readPkcs12 } from '../../src/crypto/smime/index.js';
import { opensslOk } from './helpers/openssl.js';
import { generatePair, type Issued, TestPki, writeIssued } from './helpers/pki.js';

let dir: string;
let pki: TestPki;
let rsa: Issued;
let ec: Issued;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'mss-smime-p12-'));
  const [r, i, a, e] = await Promise.all([generatePair('rsa2048'), generatePair('rsa2048'), generatePair('rsa2048'), generatePair('ec256')]);
  pki = await TestPki.create('P12', { root: r, intermediate: i });
  rsa = await pki.leaf({ pair: a, issuer: pki.intermediate, email: 'app@hopital.test' });
  ec = await pki.leaf({ pair: e, issuer: pki.intermediate, email: 'app@hopital.test', keyUsage: 0x3 });
  writeIssued(dir, 'rsa', rsa);
  writeIssued(dir, 'ec', ec);
  writeIssued(dir, 'inter', pki.intermediate);
  writeIssued(dir, 'root', pki.root);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readPkcs12', () => {
  it.each([
    { name: 'RSA, OpenSSL 3 defaults (PBES2/AES-256, HMAC-SHA-256)', who: 'rsa', args: [] as string[] },
    { name: 'RSA, AES-128 and SHA-512 MAC', who: 'rsa', args: ['-keypbe', 'AES-128-CBC', '-certpbe', 'AES-128-CBC', '-macalg', 'sha512'] },
    { name: 'EC P-256', who: 'ec', args: [] as string[] },
  ])('$name: key, certificate and chain', async ({ who, args }) => {
    const file = path.join(dir, `${who}.p12`);
    await opensslOk(['pkcs12', '-export', '-in', `${who}.pem`, '-inkey', `${who}.key`, '-certfile', 'inter.pem', '-out', file, '-passout', 'pass:s3cret é', ...args], dir);
    const p = readPkcs12(readFileSync(file), 's3cret é');
    const issued = who === 'rsa' ? rsa : ec;
    expect(p.certificate.equals(issued.cert)).toBe(true);
    expect(p.chain.map((c) => c.subject)).toEqual([pki.intermediate.cert.subject]);
    expect(p.privateKey.asymmetricKeyType).toBe(who === 'rsa' ? 'rsa' : 'ec');
    expect(p.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    // The key signs a message that verifies.
    const msg = Buffer.from('From: app@hopital.test\r\nTo: x@clinique.test\r\nSubject: t\r\n\r\nhello\r\n');
    const out = await protectOutbound({ message: msg, signer: { key: p.privateKey, certificate: p.certificate, chain: p.chain }, recipients: [], options: { encrypt: false } });
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    const r = await processInbound({ message: out.message, decryptionKeys: [], trust: { anchors: [pki.root.cert] }, options: { requireEncryption: false } });
    expect(r.ok, JSON.stringify(r)).toBe(true);
  });

  it('a wrong password or a file that is not PKCS#12 throws Pkcs12Error', async () => {
    const file = path.join(dir, 'rsa.p12');
    await opensslOk(['pkcs12', '-export', '-in', 'rsa.pem', '-inkey', 'rsa.key', '-out', file, '-passout', 'pass:right'], dir);
    expect(() => readPkcs12(readFileSync(file), 'wrong')).toThrow(Pkcs12Error);
    expect(() => readPkcs12(readFileSync(file), 'wrong')).toThrow(/wrong password/);
    expect(() => readPkcs12(Buffer.from('not a pkcs12 file'), 'x')).toThrow(Pkcs12Error);
  });
});
