import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_UNACKNOWLEDGED, type ParserMessage } from '../../src/directory/first-pass.js';
import { DirectoryFileError } from '../../src/directory/formats.js';
import { ParsingThread } from '../../src/directory/parse-thread.js';
import { writePsFile } from '../helpers/directory-files.js';

/** The messages the thread sends until it is quiet for `ms`, or until its last one (`end`). */
async function drain(parser: ParsingThread, ms: number): Promise<ParserMessage[]> {
  const out: ParserMessage[] = [];
  const quiet = Symbol('quiet');
  for (;;) {
    const m = await Promise.race([parser.next(), new Promise<typeof quiet>((resolve) => setTimeout(() => resolve(quiet), ms))]);
    if (m === quiet) return out;
    out.push(m);
    if (m.type === 'end') return out;
  }
}

describe('parsing thread of the directory import', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'mss-parse-thread-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('sends at most a bounded number of batches ahead of the acknowledgements', async () => {
    const file = path.join(dir, 'PS.txt');
    await writePsFile(file, 400, { seed: 5 });
    const parser = new ParsingThread({ file, batchSize: 40, maxReportedBadRows: 10 });
    try {
      expect((await parser.next()).type).toBe('layout');
      parser.send({ type: 'begin', stagesAll: [], format: 'values' });
      const ahead: ParserMessage[] = [];
      for (let i = 0; i < MAX_UNACKNOWLEDGED; i++) ahead.push(await parser.next());
      expect(ahead.map((m) => m.type)).toEqual(Array(MAX_UNACKNOWLEDGED).fill('batch'));
      // No further batch until one is acknowledged.
      expect(await drain(parser, 300)).toEqual([]);
      // Each acknowledgement lets one more batch through, until the end of the file.
      let rows = ahead.reduce((n, m) => n + (m.type === 'batch' ? m.rows : 0), 0);
      let end: ParserMessage | undefined;
      while (!end) {
        parser.send({ type: 'ack' });
        for (const m of await drain(parser, 100)) {
          if (m.type === 'batch') rows += m.rows;
          if (m.type === 'end') end = m;
        }
      }
      expect(rows).toBe(400);
      expect(end).toMatchObject({ type: 'end', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    } finally {
      await parser.terminate();
    }
  });

  it("reports the file's faults as DirectoryFileError, and other failures as errors", async () => {
    const long = path.join(dir, 'long.txt');
    writeFileSync(long, 'x'.repeat((1 << 20) + 10));
    const tooLong = new ParsingThread({ file: long, batchSize: 20, maxReportedBadRows: 10 });
    await expect(tooLong.next()).rejects.toThrow(DirectoryFileError);
    await expect(tooLong.next()).rejects.toThrow(/a line is longer than 1048576 characters/);
    await tooLong.terminate();

    const headerless = path.join(dir, 'other.txt');
    writeFileSync(headerless, 'a|b|c\n1|2|3\n');
    const unknown = new ParsingThread({ file: headerless, batchSize: 20, maxReportedBadRows: 10 });
    await expect(unknown.next()).rejects.toThrow(DirectoryFileError);
    await unknown.terminate();

    const missing = new ParsingThread({ file: path.join(dir, 'missing.txt'), batchSize: 20, maxReportedBadRows: 10 });
    const err = await missing.next().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(DirectoryFileError);
    expect((err as Error).message).toMatch(/ENOENT/);
    await missing.terminate();
  });

  it('stops when terminated, wherever it is', async () => {
    const file = path.join(dir, 'PS.txt');
    await writePsFile(file, 400, { seed: 6 });
    const parser = new ParsingThread({ file, batchSize: 20, maxReportedBadRows: 10 });
    expect((await parser.next()).type).toBe('layout');
    // Never answered: the thread waits for `begin` until it is terminated.
    await parser.terminate();
    await expect(parser.next()).rejects.toThrow(/the parsing thread stopped/);
  });
});
