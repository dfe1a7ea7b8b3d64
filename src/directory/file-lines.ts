import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { DirectoryFileError } from './formats.js';

/** Longest line accepted (extraction lines are a few hundred characters). */
export const MAX_LINE_CHARS = 1 << 20;

const LF = 0x0a;

/** Memory stays bounded even for a file without line breaks. */
function checkLength(carry: Buffer | null): void {
  if (carry && carry.length > MAX_LINE_CHARS) throw new DirectoryFileError(`a line is longer than ${MAX_LINE_CHARS} characters: not a directory extraction`);
}

/** A part of a file: it starts at byte `start`, a line's first, after `lines` lines. */
export interface FilePart {
  start: number;
  lines: number;
}

/** Where `lineBatches` starts reading (a line's first byte), and how far it has read (whole chunks, as shown to `onChunk`). */
export interface ReadWindow {
  start: number;
  read: number;
}

const READ_CHUNK = 1 << 18;

/**
 * Bytes decoded at a time. Each piece becomes one string: up to 64 KB it is allocated in V8's young generation,
 * beyond it (a two-byte string of more than 128 KB, as soon as the piece holds an accent) in the large-object
 * space, page by page. Decoding and splitting a 198 MB MSSanté extraction took 2.2 s in 256 KB pieces, 0.55 s in
 * 48 or 64 KB ones (72 KB: 2.2 s again); 48 KB keeps a margin. Reading stays in larger chunks (fewer calls).
 */
const DECODE_PIECE = 48 << 10;

/**
 * Lines of a file (from `window.start` on), in batches (one per chunk read), without their LF; each chunk is shown
 * to `onChunk` first. Only whole lines are decoded: a LF byte is never part of a multi-byte UTF-8 sequence, so the
 * text up to a chunk's last LF is whole characters, and the bytes after it wait for the next chunk (no decoder
 * state, no string joined across chunks but the line cut in two).
 */
export async function* lineBatches(file: string, onChunk: (chunk: Buffer) => void, window: ReadWindow = { start: 0, read: 0 }): AsyncGenerator<string[]> {
  let carry: Buffer | null = null;
  window.read = window.start;
  for await (const chunk of createReadStream(file, { highWaterMark: READ_CHUNK, start: window.start })) {
    const buffer = chunk as Buffer;
    window.read += buffer.length;
    onChunk(buffer);
    const last = buffer.lastIndexOf(LF);
    if (last < 0) {
      carry = carry ? Buffer.concat([carry, buffer]) : buffer;
      checkLength(carry);
      continue;
    }
    const lines: string[] = [];
    let from = 0;
    if (carry) {
      from = buffer.indexOf(LF) + 1;
      lines.push(Buffer.concat([carry, buffer.subarray(0, from - 1)]).toString('utf8'));
    }
    // The whole lines up to `last`, in pieces cut after a LF (a line longer than a piece is one piece).
    while (from <= last) {
      let end = last;
      if (last - from > DECODE_PIECE) {
        end = buffer.lastIndexOf(LF, from + DECODE_PIECE);
        if (end < from) end = buffer.indexOf(LF, from + DECODE_PIECE);
      }
      for (const line of buffer.toString('utf8', from, end).split('\n')) lines.push(line);
      from = end + 1;
    }
    carry = last + 1 < buffer.length ? Buffer.from(buffer.subarray(last + 1)) : null;
    checkLength(carry);
    yield lines;
  }
  if (carry) yield [carry.toString('utf8')];
}

/**
 * Cuts a file of `size` bytes into at most `count` parts of about the same size, each starting at a line's first
 * byte (after a LF); fewer when the file has too few lines. The lines before each part are counted in one pass.
 */
export async function splitLines(file: string, size: number, count: number): Promise<FilePart[]> {
  const starts = [0];
  const handle = await open(file, 'r');
  try {
    const window = Buffer.alloc(1 << 16);
    for (let i = 1; i < count; i++) {
      let from = Math.max(Math.floor((size * i) / count), starts[starts.length - 1]! + 1);
      let found = -1;
      while (found < 0 && from < size) {
        const { bytesRead } = await handle.read(window, 0, window.length, from);
        if (bytesRead === 0) break;
        const at = window.subarray(0, bytesRead).indexOf(LF);
        if (at >= 0) found = from + at + 1;
        else from += bytesRead;
      }
      if (found < 0 || found >= size) break;
      starts.push(found);
    }
  } finally {
    await handle.close();
  }
  const parts = [{ start: 0, lines: 0 }];
  if (starts.length === 1) return parts;
  let lines = 0;
  let offset = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20, end: starts[starts.length - 1]! - 1 })) {
    const buffer = chunk as Buffer;
    // The LF ending the line before a part is its first byte's predecessor: count up to each start in turn.
    for (let at = buffer.indexOf(LF); at !== -1; at = buffer.indexOf(LF, at + 1)) {
      lines++;
      if (offset + at + 1 === starts[parts.length]) parts.push({ start: starts[parts.length]!, lines });
    }
    offset += buffer.length;
  }
  return parts;
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
