import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Certificate, CrlProvider } from '../../src/crypto/smime/index.js';
import { Refusal } from '../../src/pipeline/refusal.js';
import { checkPeerCertificate, peerCheckRefusal } from '../../src/smtp/relay-peer.js';
import { tempDir } from '../helpers/engines.js';
import { issueLeaf, makeAuthority, makeCrl, type TestAuthority } from './pki.js';

/** The peer certificate checks without sockets: the cases the end-to-end test does not reach. */
describe('relay peer certificate checks', () => {
  const tmp = tempDir('mss-relay-peer-');
  let ca: TestAuthority;
  let anchor: Certificate;
  let leaf: Certificate;
  let crlFile: string;

  beforeAll(async () => {
    ca = await makeAuthority('Peer check CA');
    anchor = Certificate.from(ca.pem);
    leaf = Certificate.from((await issueLeaf(ca, { subject: 'C=FR, O=Op, CN=mx.op.test' })).certPem);
    crlFile = path.join(tmp.dir, 'ca.crl.pem');
    writeFileSync(crlFile, await makeCrl(ca, []));
  });
  afterAll(() => tmp.dispose());

  const refusalOf = async (work: Promise<unknown>): Promise<string | null> => {
    try {
      await work;
      return null;
    } catch (err) {
      if (err instanceof Refusal) return `${err.smtpCode} ${err.code}`;
      throw err;
    }
  };

  it('accepts a chain to the trust space CAs with a current CRL, and needs a certificate and a CA bundle', async () => {
    const revocation = new CrlProvider({ files: [crlFile], distributionPoints: false });
    expect((await checkPeerCertificate([leaf], { anchors: async () => [anchor], revocation, revocationMode: 'require' })).equals(leaf)).toBe(true);
    expect(await refusalOf(checkPeerCertificate([], { anchors: async () => [anchor], revocation, revocationMode: 'require' }))).toBe('530 relay-certificate-required');
    expect(await refusalOf(checkPeerCertificate([leaf], { anchors: async () => [], revocation, revocationMode: 'require' }))).toBe('451 relay-no-trust-list');
  });

  it('without a CRL for the CA: a temporary refusal when revocation is required, accepted in best-effort mode', async () => {
    const none = new CrlProvider({ files: [], distributionPoints: false });
    expect(await refusalOf(checkPeerCertificate([leaf], { anchors: async () => [anchor], revocation: none, revocationMode: 'require' }))).toBe('451 relay-revocation-unknown');
    expect(await refusalOf(checkPeerCertificate([leaf], { anchors: async () => [anchor], revocation: none, revocationMode: 'best-effort' }))).toBeNull();
  });

  it('turns each answer of the trust space into its refusal', () => {
    expect(peerCheckRefusal({ ok: false, reason: 'no-trust-list', expected: [], presented: null }, 'a.test', 'MAIL FROM')?.code).toBe('relay-no-trust-list');
    expect(peerCheckRefusal({ ok: false, reason: 'domain-not-in-trust-space', expected: [], presented: null }, 'a.test', 'MAIL FROM')?.code).toBe('relay-unknown-domain');
    const mismatch = peerCheckRefusal({ ok: false, reason: 'dn-mismatch', expected: ['CN=a'], presented: 'CN=b' }, 'a.test', 'From');
    expect([mismatch?.code, mismatch?.detail]).toEqual(['relay-dn-mismatch', 'From domain a.test: presented CN=b, listed CN=a']);
  });
});
