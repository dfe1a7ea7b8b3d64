import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lineBatches, MAX_LINE_CHARS, splitLines } from '../../src/directory/file-lines.js';
import { DirectoryFileError } from '../../src/directory/formats.js';
import { tempDir } from '../helpers/engines.js';

const CHUNK = 1 << 18; // what lineBatches reads at a time

async function linesOf(bytes: Buffer): Promise<{ lines: string[]; chunks: number }> {
  const file = path.join(tmp.dir, 'extraction.txt');
  writeFileSync(file, bytes);
  const lines: string[] = [];
  let chunks = 0;
  for await (const batch of lineBatches(file, () => chunks++)) lines.push(...batch);
  return { lines, chunks };
}

let tmp: ReturnType<typeof tempDir>;
afterEach(() => tmp.dispose());

describe('lineBatches', () => {
  it('gives every line whole, accented characters cut by a chunk boundary included', async () => {
    tmp = tempDir('mss-lines-');
    const expected: string[] = [];
    let size = 0;
    // Lines of varied lengths and 2-, 3- and 4-byte characters, so that boundaries fall inside characters and lines.
    for (let i = 0; size < 3 * CHUNK + 1000; i++) {
      const line = `${i}|Hélène Œuvre-€|${'é'.repeat(i % 97)}|𝔸${'x'.repeat(i % 13)}|`;
      expected.push(line);
      size += Buffer.byteLength(line) + 1;
    }
    const { lines, chunks } = await linesOf(Buffer.from(expected.join('\n') + '\n'));
    expect(chunks).toBe(4);
    expect(lines).toEqual(expected);
  });

  it('gives whole a line longer than the pieces a chunk is decoded in (48 KB), and empty lines around it', async () => {
    tmp = tempDir('mss-lines-');
    const expected: string[] = [];
    for (let i = 0; i < 3000; i++) {
      expected.push(`${i}|Éloïse|${'x'.repeat(i % 50)}`);
      if (i % 500 === 7) expected.push('', `${'é'.repeat(40_000)}|${'y'.repeat(30_000 + i)}`, '');
    }
    const { lines, chunks } = await linesOf(Buffer.from(expected.join('\n') + '\n'));
    expect(chunks).toBeGreaterThan(1);
    expect(lines).toEqual(expected);
  });

  it('keeps a last line without its LF, and a CR for the caller to strip', async () => {
    tmp = tempDir('mss-lines-');
    expect((await linesOf(Buffer.from('a|b\r\nc|d'))).lines).toEqual(['a|b\r', 'c|d']);
    expect((await linesOf(Buffer.from(''))).lines).toEqual([]);
  });

  it('decodes bad UTF-8 as U+FFFD, a sequence cut by the end of the file too', async () => {
    tmp = tempDir('mss-lines-');
    expect((await linesOf(Buffer.from([0x61, 0xff, 0x0a, 0x62, 0xc3]))).lines).toEqual(['a\ufffd', 'b\ufffd']);
  });

  it('refuses a line that outgrows the limit before its end is read, with or without line breaks after it', async () => {
    tmp = tempDir('mss-lines-');
    const long = Buffer.alloc(2 * MAX_LINE_CHARS, 0x61);
    await expect(linesOf(long)).rejects.toThrow(DirectoryFileError);
    await expect(linesOf(Buffer.concat([Buffer.from('ok\n'), long, Buffer.from('\nnext\n')]))).rejects.toThrow(/longer than/);
  });
});

describe('splitLines', () => {
  it('cuts a file into parts at line starts, and counts the lines before each', async () => {
    tmp = tempDir('mss-parts-');
    const file = path.join(tmp.dir, 'extraction.txt');
    const all: string[] = [];
    for (let i = 0; i < 5000; i++) all.push(`${i}|Hélène ${'é'.repeat(i % 41)}|${'x'.repeat(i % 300)}`);
    // No LF after the last line.
    const bytes = Buffer.from(all.join('\n'), 'utf8');
    writeFileSync(file, bytes);
    for (const count of [1, 2, 3, 7]) {
      const parts = await splitLines(file, bytes.length, count);
      expect(parts).toHaveLength(count);
      expect(parts[0]).toEqual({ start: 0, lines: 0 });
      for (const [i, part] of parts.entries()) {
        if (i > 0) {
          expect(bytes[part.start - 1]).toBe(0x0a);
          expect(part.start).toBeGreaterThan(parts[i - 1]!.start);
          // The lines before the part, counted apart.
          expect(bytes.subarray(0, part.start).toString('utf8').split('\n').length - 1).toBe(part.lines);
        }
        const window = { start: part.start, read: 0 };
        const read: string[] = [];
        for await (const batch of lineBatches(file, () => {}, window)) read.push(...batch);
        expect(read).toEqual(all.slice(part.lines));
        expect(window.read).toBe(bytes.length);
      }
    }
  });

  it('gives fewer parts than asked when the file has too few lines', async () => {
    tmp = tempDir('mss-parts-');
    const file = path.join(tmp.dir, 'short.txt');
    writeFileSync(file, 'header\nonly line\n');
    const parts = await splitLines(file, 17, 8);
    expect(parts.length).toBeLessThanOrEqual(2);
    expect(parts).toEqual(parts.length === 2 ? [{ start: 0, lines: 0 }, { start: 7, lines: 1 }] : [{ start: 0, lines: 0 }]);
    expect(await splitLines(file, 17, 1)).toEqual([{ start: 0, lines: 0 }]);
  });
});
