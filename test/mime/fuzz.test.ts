import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { encodeValues } from '../../src/imap/serializer.js';
import { bodyStructureValue, envelopeValue } from '../../src/imap/bodystructure.js';
import { buildMessageMeta } from '../../src/mime/meta.js';
import type { MimeNode } from '../../src/mime/types.js';

/** Mutated real messages: parsing never throws and every offset stays inside the message. */

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function checkNode(node: MimeNode, start: number, end: number): void {
  expect(node.headerStart).toBeGreaterThanOrEqual(start);
  expect(node.headerStart).toBeLessThanOrEqual(node.bodyStart);
  expect(node.bodyStart).toBeLessThanOrEqual(node.bodyEnd);
  expect(node.bodyEnd).toBeLessThanOrEqual(end);
  for (const child of node.children) checkNode(child, node.bodyStart, node.bodyEnd);
}

describe('MIME fuzzing', () => {
  const seeds = ['MessageWithAttachment.txt', 'DSNMessage.txt', 'ans-mdn-ko-902.eml'].map((f) => readFileSync(new URL(`../fixtures/email/${f}`, import.meta.url)));
  const inserts = ['\r\n', '\n', '--', 'Content-Type: multipart/mixed; boundary=x\r\n', '--x\r\n', '--x--', 'message/rfc822', ': ', '"', '(', ';', '*0*=', "utf-8''%C3"];

  it('never throws and keeps offsets in bounds', () => {
    const rand = prng(7);
    for (let round = 0; round < 400; round++) {
      const base = seeds[round % seeds.length]!;
      let raw = Buffer.from(base);
      for (let m = 0; m < 1 + Math.floor(rand() * 8); m++) {
        const at = Math.floor(rand() * raw.length);
        const op = rand();
        if (op < 0.4) raw = Buffer.concat([raw.subarray(0, at), Buffer.from(inserts[Math.floor(rand() * inserts.length)]!), raw.subarray(at)]);
        else if (op < 0.7) raw = Buffer.concat([raw.subarray(0, at), raw.subarray(Math.min(raw.length, at + Math.floor(rand() * 200)))]);
        else raw = Buffer.concat([raw.subarray(0, at), Buffer.from([Math.floor(rand() * 256)]), raw.subarray(at + 1)]);
      }
      const meta = buildMessageMeta(raw);
      checkNode(meta.mime, 0, raw.length);
      expect(JSON.parse(JSON.stringify(meta))).toEqual(meta);
      encodeValues([envelopeValue(meta.envelope), bodyStructureValue(meta.mime, true)]);
    }
  });
});
