/** Path building and validation, identity binding, practitioner id: the trust decisions on certificates. */
import { beforeAll, describe, expect, it } from 'vitest';
import { certificateMatchesAddress, checkPurpose, practitionerIdOf, validateCertificate } from '../../src/crypto/smime/index.js';
import { x509 } from '../../src/crypto/x509-util.js';
import { DAY_MS, generatePair, type Issued, TestPki, USAGE } from './helpers/pki.js';

type Pair = Awaited<ReturnType<typeof generatePair>>;
let pki: TestPki;
let leafPair: Pair;
let caPair: Pair;
let alice: Issued;

beforeAll(async () => {
  const [r, i, a, c] = await Promise.all([generatePair('rsa2048'), generatePair('rsa2048'), generatePair('ec256'), generatePair('rsa2048')]);
  pki = await TestPki.create('TRUST', { root: r, intermediate: i });
  leafPair = a;
  caPair = c;
  alice = await pki.leaf({ pair: a, issuer: pki.intermediate, email: 'Alice.Martin@Hopital.test', keyUsage: USAGE.sign });
});

describe('validateCertificate', () => {
  it('builds leaf → intermediate → root from message certificates, from configured ones, or with an intermediate as anchor', async () => {
    const viaMessage = await validateCertificate(alice.cert, 'sign', 'signer', { anchors: [pki.root.cert] }, [pki.intermediate.cert]);
    expect(viaMessage.path).toHaveLength(3);
    const configured = await validateCertificate(alice.cert, 'sign', 'signer', { anchors: [pki.root.cert], intermediates: [pki.intermediate.cert] });
    expect(configured.path).toHaveLength(3);
    expect((await validateCertificate(alice.cert, 'sign', 'signer', { anchors: [pki.intermediate.cert] })).path).toHaveLength(2);
    expect((await validateCertificate(alice.cert, 'sign', 'signer', { anchors: [alice.cert] })).path).toHaveLength(1);
    await expect(validateCertificate(alice.cert, 'sign', 'signer', { anchors: [pki.root.cert] })).rejects.toMatchObject({ code: 'chain-untrusted' });
  });

  it('an end-entity certificate cannot act as a CA', async () => {
    const fakeCa = await pki.leaf({ pair: caPair, issuer: pki.intermediate, cn: 'TRUST AC PERSONNES', keyUsage: USAGE.both | x509.KeyUsageFlags.keyCertSign });
    const victim = await pki.leaf({ pair: leafPair, issuer: fakeCa, email: 'x@hopital.test', keyUsage: USAGE.sign });
    await expect(validateCertificate(victim.cert, 'sign', 'signer', { anchors: [pki.root.cert] }, [fakeCa.cert, pki.intermediate.cert])).rejects.toMatchObject({
      code: 'chain-untrusted',
      detail: expect.stringMatching(/not a CA certificate/),
    });
  });

  it('path length constraints are enforced', async () => {
    const root = await TestPki.ca('TRUST PATHLEN 0', caPair, null, 0);
    const inter = await pki.leaf({ pair: leafPair, issuer: root, cn: 'TRUST SUB', ca: true, keyUsage: x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, eku: null, email: null });
    const leaf = await pki.leaf({ pair: leafPair, issuer: inter, email: 'y@hopital.test', keyUsage: USAGE.sign });
    await expect(validateCertificate(leaf.cert, 'sign', 'signer', { anchors: [root.cert] }, [inter.cert])).rejects.toMatchObject({
      code: 'chain-untrusted',
      detail: expect.stringMatching(/path length/),
    });
  });

  it('an unknown critical extension makes the certificate unusable', async () => {
    const odd = await pki.leaf({ pair: leafPair, issuer: pki.intermediate, keyUsage: USAGE.sign, extensions: [new x509.Extension('1.3.6.1.4.1.99999.1', true, new Uint8Array([0x05, 0x00]))] });
    await expect(validateCertificate(odd.cert, 'sign', 'signer', { anchors: [pki.root.cert] }, [pki.intermediate.cert])).rejects.toMatchObject({
      code: 'chain-untrusted',
      detail: expect.stringMatching(/critical extensions 1\.3\.6\.1\.4\.1\.99999\.1/),
    });
  });

  it('path building is bounded: many certificates sharing a name and a key do not explode it', async () => {
    const loopCas: Issued[] = [];
    const first = await TestPki.ca('TRUST LOOP', caPair, null, 5);
    for (let i = 0; i < 24; i++) loopCas.push(await TestPki.ca('TRUST LOOP', caPair, first, 5));
    const leaf = await pki.leaf({ pair: leafPair, issuer: first, keyUsage: USAGE.sign });
    const started = Date.now();
    await expect(validateCertificate(leaf.cert, 'sign', 'signer', { anchors: [pki.root.cert] }, [first.cert, ...loopCas.map((c) => c.cert)])).rejects.toMatchObject({ code: 'chain-untrusted' });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('an expired intermediate is reported as such', async () => {
    const oldInter = await TestPki.ca('TRUST AC PERSONNES', caPair, pki.root, 0, { notBefore: new Date(Date.now() - 10 * DAY_MS), notAfter: new Date(Date.now() - DAY_MS) });
    const leaf = await pki.leaf({ pair: leafPair, issuer: oldInter, keyUsage: USAGE.sign });
    await expect(validateCertificate(leaf.cert, 'sign', 'signer', { anchors: [pki.root.cert] }, [oldInter.cert])).rejects.toMatchObject({
      code: 'cert-expired',
      detail: expect.stringMatching(/^intermediate CA certificate .* expired/),
    });
  });

  it('purpose: a signing certificate cannot receive encrypted mail, and the reverse', async () => {
    expect(() => checkPurpose(alice.cert, 'encrypt', 'recipient')).toThrow(expect.objectContaining({ code: 'key-usage', party: 'recipient' }));
    const enc = await pki.leaf({ pair: caPair, issuer: pki.intermediate, keyUsage: x509.KeyUsageFlags.keyEncipherment });
    expect(() => checkPurpose(enc.cert, 'sign', 'signer')).toThrow(expect.objectContaining({ code: 'key-usage' }));
    expect(() => checkPurpose(enc.cert, 'encrypt', 'recipient')).not.toThrow();
    const anyEku = await pki.leaf({ pair: caPair, issuer: pki.intermediate, eku: ['2.5.29.37.0'] });
    expect(() => checkPurpose(anyEku.cert, 'sign', 'signer')).not.toThrow();
  });
});

describe('identity', () => {
  it('address-bound: the rfc822Name, case-insensitively; domain-bound: the dNSName', async () => {
    expect(certificateMatchesAddress(alice.cert, 'alice.martin@hopital.test')).toEqual({ match: true, binding: 'address' });
    expect(certificateMatchesAddress(alice.cert, 'bob@hopital.test').match).toBe(false);
    expect(certificateMatchesAddress(alice.cert, 'not an address').match).toBe(false);
    const domain = await pki.leaf({ pair: caPair, issuer: pki.intermediate, email: null, dns: 'Hopital.test' });
    expect(certificateMatchesAddress(domain.cert, 'anyone@hopital.test')).toEqual({ match: true, binding: 'domain' });
    expect(certificateMatchesAddress(domain.cert, 'anyone@sub.hopital.test').match).toBe(false);
  });

  it("practitioner id: '8' + RPPS from the subject serialNumber, configurable", async () => {
    expect(practitionerIdOf(alice.cert)).toBe('810001234567');
    const org = await pki.leaf({ pair: caPair, issuer: pki.intermediate, rpps: '1234', cn: 'labo@hopital.test' });
    expect(practitionerIdOf(org.cert)).toBeNull();
    expect(practitionerIdOf(org.cert, { pattern: /^81234$/ })).toBe('81234');
  });
});
