/**
 * The DER reader and writer, and robustness of every parser on hostile input: malformed CMS never crashes,
 * it always ends in a typed failure (seeded mutation fuzzing of real messages).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Certificate } from '../../src/crypto/cms/certificate.js';
import { Asn1, DerError, decodeOid, int, oid, seq, tlv, time } from '../../src/crypto/cms/der.js';
import { createEnvelopedData, decryptEnvelopedData, parseEnvelopedData } from '../../src/crypto/cms/enveloped-data.js';
import { SmimeError, SMIME_FAILURE_CODES } from '../../src/crypto/cms/failure.js';
import { createSignedData, parseSignedData, verifySignedData } from '../../src/crypto/cms/signed-data.js';
import { DEFAULT_POLICY } from '../../src/crypto/cms/algorithms.js';
import { parseCrls } from '../../src/crypto/smime/crl.js';
import { processInbound, protectOutbound } from '../../src/crypto/smime/index.js';
import { generatePair, type Issued, TestPki } from './helpers/pki.js';

/** A small deterministic PRNG (mulberry32), so a failing case can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(input: Buffer, rnd: () => number): Buffer {
  const b = Buffer.from(input);
  const kind = Math.floor(rnd() * 4);
  if (kind === 0) {
    for (let i = 0; i < 1 + Math.floor(rnd() * 4); i++) {
      const at = Math.floor(rnd() * b.length);
      b[at] = b[at]! ^ (1 << Math.floor(rnd() * 8));
    }
    return b;
  }
  if (kind === 1) return b.subarray(0, Math.floor(rnd() * b.length));
  if (kind === 2) {
    // Lengths are where parsers break: hit the bytes right after a plausible tag.
    const i = Math.floor(rnd() * Math.min(b.length, 400));
    b[i] = [0x80, 0x81, 0x84, 0xff, 0x00, 0x7f][Math.floor(rnd() * 6)]!;
    return b;
  }
  const at = Math.floor(rnd() * b.length);
  return Buffer.concat([b.subarray(0, at), Buffer.from([0x30, 0x80, 0x30, 0x80]), b.subarray(at)]);
}

let pki: TestPki;
let alice: Issued;

beforeAll(async () => {
  const [r, i, a] = await Promise.all([generatePair('rsa2048'), generatePair('rsa2048'), generatePair('rsa2048')]);
  pki = await TestPki.create('DER', { root: r, intermediate: i });
  alice = await pki.leaf({ pair: a, issuer: pki.intermediate, email: 'alice@hopital.test' });
});

describe('DER reader and writer', () => {
  it('round-trips OIDs, integers, long lengths and times', () => {
    for (const o of ['1.2.840.113549.1.9.16.1.23', '2.5.29.37.0', '0.9.2342.19200300.100.1.1', '2.999.1']) expect(Asn1.parse(oid(o)).oid()).toBe(o);
    for (const n of [0, 1, 127, 128, 255, 256, 65535, 2 ** 31]) expect(Asn1.parse(int(n)).integerBytes()[0]! & 0x80).toBe(0);
    expect(Asn1.parse(int(300)).smallInt()).toBe(300);
    const long = seq(Buffer.from('0500'.repeat(35_000), 'hex'));
    expect(Asn1.parse(long).children()).toHaveLength(35_000);
    for (const d of [new Date('2026-11-24T10:00:00Z'), new Date('2051-01-01T00:00:00Z'), new Date('1949-12-31T23:59:59Z')]) expect(Asn1.parse(time(d)).time().getTime()).toBe(d.getTime());
  });

  it('reads BER: indefinite lengths and constructed OCTET STRINGs', () => {
    const ber = Buffer.from('3080' + '2480' + '0403616263' + '040164' + '0000' + '0000', 'hex');
    const node = Asn1.parse(ber);
    expect(node.indefinite).toBe(true);
    expect(node.children()[0]!.octets().toString()).toBe('abcd');
  });

  it('refuses malformed encodings with DerError, including deep nesting, without recursing forever', () => {
    const bad = [
      '', '30', '3005020101', '300380', '0481', '04850000000001', '3003020100ff', '0600', '060180', '30800000ff', '0000', '1f', '1f8080808001',
      Buffer.alloc(20_000, 0x30).toString('hex'), '3080'.repeat(5000),
    ];
    for (const hex of bad) expect(() => Asn1.parse(Buffer.from(hex, 'hex')).children(), hex.slice(0, 20)).toThrow(DerError);
    expect(() => decodeOid(Buffer.from('2a8648', 'hex').subarray(0, 2).fill(0x86))).toThrow(DerError);
    expect(() => Asn1.parse(tlv(0x17, Buffer.from('261324250000Z'))).time()).toThrow(DerError);
  });

  it('a certificate that is not one → malformed', () => {
    expect(() => Certificate.fromDer(Buffer.from('3003020101', 'hex'))).toThrow(SmimeError);
    expect(() => Certificate.fromDer(alice.cert.der.subarray(0, 100))).toThrow(expect.objectContaining({ code: 'malformed' }));
  });
});

describe('mutation fuzzing never crashes a parser', () => {
  it('EnvelopedData: only SmimeError, every time', () => {
    const der = createEnvelopedData(Buffer.from('Content-Type: text/plain\r\n\r\nhello\r\n'), [alice.cert]);
    const rnd = prng(0x5eed);
    const keys = [{ key: alice.key, certificate: alice.cert }];
    for (let i = 0; i < 600; i++) {
      const m = mutate(der, rnd);
      try {
        decryptEnvelopedData(parseEnvelopedData(m), keys);
      } catch (err) {
        expect(err, `iteration ${i}`).toBeInstanceOf(SmimeError);
      }
    }
  });

  it('SignedData and certificates inside it: only SmimeError, every time', () => {
    const content = Buffer.from('Content-Type: text/plain\r\n\r\nhello\r\n');
    const der = createSignedData(content, { key: alice.key, certificate: alice.cert, chain: [pki.intermediate.cert] });
    const rnd = prng(42);
    for (let i = 0; i < 600; i++) {
      const m = mutate(der, rnd);
      try {
        verifySignedData(parseSignedData(m, Certificate.fromDer), content, DEFAULT_POLICY);
      } catch (err) {
        expect(err, `iteration ${i}`).toBeInstanceOf(SmimeError);
      }
    }
  });

  it('CRLs: only DerError', async () => {
    const crl = await TestPki.crl(pki.intermediate, [alice]);
    const rnd = prng(7);
    for (let i = 0; i < 400; i++) {
      try {
        parseCrls(mutate(crl, rnd));
      } catch (err) {
        expect(err, `iteration ${i}`).toBeInstanceOf(DerError);
      }
    }
  });

  it('whole messages: processInbound always returns a typed result', async () => {
    const msg = Buffer.from('From: alice@hopital.test\r\nTo: bob@clinique.test\r\nSubject: x\r\n\r\nhello\r\n');
    const out = await protectOutbound({ message: msg, signer: { key: alice.key, certificate: alice.cert, chain: [pki.intermediate.cert] }, recipients: [alice.cert] });
    if (!out.ok) throw new Error(out.detail);
    const rnd = prng(1234);
    const text = out.message.toString('latin1');
    const bodyStart = text.indexOf('\r\n\r\n') + 4;
    const der = Buffer.from(text.slice(bodyStart), 'base64');
    const codes = new Set<string>();
    for (let i = 0; i < 150; i++) {
      const mutated = Buffer.concat([Buffer.from(text.slice(0, bodyStart), 'latin1'), Buffer.from(mutate(der, rnd).toString('base64'))]);
      const r = await processInbound({ message: mutated, decryptionKeys: [{ key: alice.key, certificate: alice.cert }], trust: { anchors: [pki.root.cert] } });
      if (!r.ok) {
        expect(SMIME_FAILURE_CODES).toContain(r.code);
        codes.add(r.code);
      }
    }
    expect(codes.has('malformed') || codes.has('cannot-decrypt')).toBe(true);
  });
});
