import { createReadStream } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { DirectoryFileError } from './formats.js';

/** Longest line accepted (extraction lines are a few hundred characters). */
export const MAX_LINE_CHARS = 1 << 20;

/** Lines of a file, in batches (one per chunk read), without their LF; each chunk is shown to `onChunk` first. */
export async function* lineBatches(file: string, onChunk: (chunk: Buffer) => void): AsyncGenerator<string[]> {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 18 })) {
    const buffer = chunk as Buffer;
    onChunk(buffer);
    const text = rest + decoder.write(buffer);
    const lines = text.split('\n');
    rest = lines.pop() ?? '';
    // Memory stays bounded even for a file without line breaks.
    if (rest.length > MAX_LINE_CHARS) throw new DirectoryFileError(`a line is longer than ${MAX_LINE_CHARS} characters: not a directory extraction`);
    yield lines;
  }
  const tail = rest + decoder.end();
  if (tail !== '') yield [tail];
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
