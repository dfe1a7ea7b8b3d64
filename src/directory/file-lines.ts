import { createReadStream } from 'node:fs';
import { DirectoryFileError } from './formats.js';

/** Longest line accepted (extraction lines are a few hundred characters). */
export const MAX_LINE_CHARS = 1 << 20;

const LF = 0x0a;

/** Memory stays bounded even for a file without line breaks. */
function checkLength(carry: Buffer | null): void {
  if (carry && carry.length > MAX_LINE_CHARS) throw new DirectoryFileError(`a line is longer than ${MAX_LINE_CHARS} characters: not a directory extraction`);
}

/**
 * Lines of a file, in batches (one per chunk read), without their LF; each chunk is shown to `onChunk` first. Only
 * whole lines are decoded: a LF byte is never part of a multi-byte UTF-8 sequence, so the text up to a chunk's
 * last LF is whole characters, and the bytes after it wait for the next chunk (one decoding per chunk, no
 * decoder state, no string joined across chunks but the line cut in two).
 */
export async function* lineBatches(file: string, onChunk: (chunk: Buffer) => void): AsyncGenerator<string[]> {
  let carry: Buffer | null = null;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 18 })) {
    const buffer = chunk as Buffer;
    onChunk(buffer);
    const last = buffer.lastIndexOf(LF);
    if (last < 0) {
      carry = carry ? Buffer.concat([carry, buffer]) : buffer;
      checkLength(carry);
      continue;
    }
    let lines: string[];
    if (carry) {
      const first = buffer.indexOf(LF);
      lines = [Buffer.concat([carry, buffer.subarray(0, first)]).toString('utf8')];
      if (first < last) for (const line of buffer.toString('utf8', first + 1, last).split('\n')) lines.push(line);
    } else {
      lines = buffer.toString('utf8', 0, last).split('\n');
    }
    carry = last + 1 < buffer.length ? Buffer.from(buffer.subarray(last + 1)) : null;
    checkLength(carry);
    yield lines;
  }
  if (carry) yield [carry.toString('utf8')];
}

/** A line without the CR of a CRLF ending. */
export function withoutCr(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

/** A line of nothing but whitespace (as `trim` sees it), checked without trimming the usual line. */
export function blank(line: string): boolean {
  if (line.length === 0) return true;
  const first = line.charCodeAt(0);
  return !(first > 32 && first < 127) && line.trim() === '';
}
