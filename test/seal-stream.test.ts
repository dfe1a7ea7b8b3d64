import { createHash, hkdfSync, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { aad, seal, SealError } from '../src/crypto/seal.js';
import {
  HEADER_LEN,
  hkdfSha256,
  openBuffer,
  openChunks,
  openStream,
  SEGMENT_SIZE,
  sealBuffer,
  sealChunks,
  sealStream,
  STREAM_VERSION,
} from '../src/crypto/seal-stream.js';

const key = randomBytes(32);
const label = aad.blob(7);
const SEALED_SEGMENT = SEGMENT_SIZE + 16;

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const piece of source) out.push(piece);
  return Buffer.concat(out);
}

/** The sealed segments of a value (header apart), to cut, reorder and splice them. */
function segments(sealed: Buffer): { header: Buffer; parts: Buffer[] } {
  const parts: Buffer[] = [];
  for (let at = HEADER_LEN; at < sealed.length; at += SEALED_SEGMENT) parts.push(sealed.subarray(at, at + SEALED_SEGMENT));
  return { header: sealed.subarray(0, HEADER_LEN), parts };
}

describe('segmented sealing (STREAM, AES-256-GCM)', () => {
  it('round-trips values of every size around the segment boundaries, whatever the input pieces', async () => {
    for (const size of [0, 1, SEGMENT_SIZE - 1, SEGMENT_SIZE, SEGMENT_SIZE + 1, 3 * SEGMENT_SIZE, 3 * SEGMENT_SIZE + 17]) {
      const plain = randomBytes(size);
      const sealed = sealBuffer(key, plain, label);
      expect(sealed[0]).toBe(STREAM_VERSION);
      expect(sealed.length).toBe(HEADER_LEN + Math.max(1, Math.ceil(size / SEGMENT_SIZE)) * 16 + size);
      expect(openBuffer(key, sealed, label).equals(plain)).toBe(true);
      // Odd piece sizes on both sides: 1 byte, 1000 bytes, a piece larger than a segment.
      for (const step of [1000, SEGMENT_SIZE * 2 + 3]) {
        const split = (b: Buffer) => Array.from({ length: Math.ceil(b.length / step) }, (_, i) => b.subarray(i * step, (i + 1) * step));
        const resealed = await collect(sealChunks(key, label, split(plain)));
        expect((await collect(openChunks(key, label, split(resealed)))).equals(plain)).toBe(true);
      }
    }
  });

  it('works as Node Transforms in a pipeline', async () => {
    const plain = randomBytes(5 * SEGMENT_SIZE + 123);
    const sealed: Buffer[] = [];
    await pipeline(Readable.from([plain.subarray(0, 1), plain.subarray(1)]), sealStream(key, label), async (source: AsyncIterable<Buffer>) => {
      for await (const piece of source) sealed.push(piece);
    });
    const opened: Buffer[] = [];
    await pipeline(Readable.from(sealed), openStream(key, label), async (source: AsyncIterable<Buffer>) => {
      for await (const piece of source) opened.push(piece);
    });
    expect(Buffer.concat(opened).equals(plain)).toBe(true);
    expect(openBuffer(key, Buffer.concat(sealed), label).equals(plain)).toBe(true);
  });

  it('never seals the same value twice alike (random salt and nonce prefix)', () => {
    const plain = Buffer.from('same body');
    expect(sealBuffer(key, plain, label).equals(sealBuffer(key, plain, label))).toBe(false);
  });

  describe('detects tampering', () => {
    const plain = randomBytes(4 * SEGMENT_SIZE + 500); // five segments, the last one short
    const sealed = sealBuffer(key, plain, label);
    const { header, parts } = segments(sealed);
    const fails = (value: Buffer, what: RegExp = /failed authentication|truncated|not a sealed value/) =>
      expect(() => openBuffer(key, value, label), value.length.toString()).toThrow(what);

    it('a flipped byte anywhere: header, ciphertext, tag', () => {
      for (const at of [0, 1, HEADER_LEN - 1, HEADER_LEN, HEADER_LEN + SEALED_SEGMENT - 1, sealed.length - 1]) {
        const bad = Buffer.from(sealed);
        bad[at]! ^= 0x01;
        expect(() => openBuffer(key, bad, label)).toThrow(SealError);
      }
    });

    it('truncation: at a segment boundary, inside a segment, down to the header', () => {
      fails(Buffer.concat([header, ...parts.slice(0, 4)]));
      fails(Buffer.concat([header, ...parts.slice(0, 1)]));
      fails(sealed.subarray(0, sealed.length - 1));
      fails(sealed.subarray(0, sealed.length - 17));
      fails(header);
      fails(sealed.subarray(0, 5), /not a sealed value/);
      fails(Buffer.alloc(0), /not a sealed value/);
    });

    it('segments reordered, duplicated, or a segment added after the last', () => {
      fails(Buffer.concat([header, parts[1]!, parts[0]!, ...parts.slice(2)]));
      fails(Buffer.concat([header, parts[0]!, parts[0]!, ...parts.slice(2)]));
      fails(Buffer.concat([header, ...parts, parts[4]!]));
    });

    it('a segment swapped in from another value sealed with the same key and label', () => {
      const other = segments(sealBuffer(key, randomBytes(plain.length), label));
      fails(Buffer.concat([header, parts[0]!, other.parts[1]!, ...parts.slice(2)]));
      // Another value's header with this value's segments.
      fails(Buffer.concat([other.header, ...parts]));
    });

    it('another label (another mailbox) or another key', () => {
      expect(() => openBuffer(key, sealed, aad.blob(8))).toThrow(SealError);
      expect(() => openBuffer(randomBytes(32), sealed, label)).toThrow(SealError);
    });

    it('the streaming opener hands out good segments, then fails at the end of a cut value', async () => {
      const cut = Buffer.concat([header, ...parts.slice(0, 3)]);
      const seen: Buffer[] = [];
      await expect(
        (async () => {
          for await (const piece of openChunks(key, label, [cut])) seen.push(piece);
        })(),
      ).rejects.toThrow(SealError);
      expect(Buffer.concat(seen).equals(plain.subarray(0, 2 * SEGMENT_SIZE))).toBe(true);
    });
  });

  it('still opens values sealed whole (format version 1), by every opener', async () => {
    const plain = randomBytes(3 * SEGMENT_SIZE + 9);
    const v1 = seal(key, plain, label);
    expect(v1[0]).toBe(1);
    expect(openBuffer(key, v1, label).equals(plain)).toBe(true);
    expect((await collect(openChunks(key, label, [v1.subarray(0, 10), v1.subarray(10)]))).equals(plain)).toBe(true);
    const bad = Buffer.from(v1);
    bad[40]! ^= 0x80;
    expect(() => openBuffer(key, bad, label)).toThrow(SealError);
    expect(() => openBuffer(key, v1, aad.blob(8))).toThrow(SealError);
  });

  it('seals 50 MB from a lazy source holding about one segment at a time', async () => {
    const size = 50 * 1024 * 1024;
    async function* source() {
      const block = randomBytes(SEGMENT_SIZE);
      for (let sent = 0; sent < size; sent += block.length) yield block;
    }
    const hash = createHash('sha256');
    let largest = 0;
    let total = 0;
    const opened = openChunks(
      key,
      label,
      (async function* () {
        for await (const piece of sealChunks(key, label, source())) {
          largest = Math.max(largest, piece.length);
          total += piece.length;
          yield piece;
        }
      })(),
    );
    let plainTotal = 0;
    for await (const piece of opened) {
      hash.update(piece);
      plainTotal += piece.length;
    }
    expect(plainTotal).toBe(size);
    expect(total).toBe(HEADER_LEN + size + (size / SEGMENT_SIZE) * 16);
    expect(largest).toBeLessThanOrEqual(HEADER_LEN + SEALED_SEGMENT);
  });
});

describe('hkdfSha256', () => {
  it('gives the first block of RFC 5869 test case 1, and what hkdfSync gives', () => {
    const ikm = Buffer.alloc(22, 0x0b);
    const salt = Buffer.from('000102030405060708090a0b0c', 'hex');
    const info = Buffer.from('f0f1f2f3f4f5f6f7f8f9', 'hex');
    expect(hkdfSha256(ikm, salt, info).toString('hex')).toBe('3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf');
    for (let i = 0; i < 50; i++) {
      const [k, sa, inf] = [randomBytes(32), randomBytes(16), randomBytes(i)];
      expect(hkdfSha256(k, sa, inf)).toEqual(Buffer.from(hkdfSync('sha256', k, sa, inf, 32)));
    }
  });
});
