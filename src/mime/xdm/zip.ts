import { crc32, inflateRawSync } from 'node:zlib';
import { ZipEntryCorruptError, ZipFormatError, ZipLimitError, ZipPathError, ZipUnsupportedError } from './errors.js';
import type { XdmLimits } from './limits.js';

/**
 * A bounded zip reader (APPNOTE 6.3: end of central directory, ZIP64 end record, central directory headers,
 * local headers). It reads the central directory only, checks every limit and every entry name there, and
 * inflates an entry on demand with its declared size as a hard output cap, then checks size and CRC-32.
 *
 * Why not fflate's `unzipSync` (used for writing, see build.ts): it trusts the declared sizes and cannot stop
 * an inflation that runs past them, so an entry declaring 1 KB while holding a 10 MB deflate stream costs
 * ~10 GB of inflate work. Node's zlib stops at `maxOutputLength`.
 */

export interface ZipEntry {
  /** Name as stored, with `\` turned into `/`. */
  name: string;
  directory: boolean;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  /** Offset of the entry's local header. */
  offset: number;
  encrypted: boolean;
  /** A Unix symbolic link (made on Unix, file type S_IFLNK). */
  symlink: boolean;
}

export type ZipLimits = Pick<XdmLimits, 'maxEntries' | 'maxTotalBytes' | 'maxEntryBytes' | 'maxCompressionRatio' | 'ratioFloorBytes'>;

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const STORED = 0;
const DEFLATED = 8;
const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

function u64(buf: Buffer, at: number): number {
  const value = buf.readBigUInt64LE(at);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipFormatError('ZIP64 value out of range');
  return Number(value);
}

function findEndOfCentralDirectory(buf: Buffer): number {
  // The record is 22 bytes plus a comment of at most 65535 bytes.
  const lowest = Math.max(0, buf.length - 22 - 0xffff);
  for (let at = buf.length - 22; at >= lowest; at--) {
    if (buf.readUInt32LE(at) === EOCD && at + 22 + buf.readUInt16LE(at + 20) <= buf.length) return at;
  }
  throw new ZipFormatError('not a zip archive (no end of central directory record)');
}

interface Directory {
  count: number;
  offset: number;
  size: number;
}

function readDirectoryLocation(buf: Buffer): Directory {
  if (buf.length < 22) throw new ZipFormatError('not a zip archive (too short)');
  const eocd = findEndOfCentralDirectory(buf);
  if (buf.readUInt16LE(eocd + 4) !== 0 || buf.readUInt16LE(eocd + 6) !== 0) throw new ZipUnsupportedError('multi-disk zip archives are not supported');
  let count = buf.readUInt16LE(eocd + 10);
  let size = buf.readUInt32LE(eocd + 12);
  let offset = buf.readUInt32LE(eocd + 16);
  if (count === 0xffff || size === 0xffffffff || offset === 0xffffffff) {
    const locator = eocd - 20;
    if (locator < 0 || buf.readUInt32LE(locator) !== ZIP64_LOCATOR) throw new ZipFormatError('ZIP64 archive without its end record locator');
    const record = u64(buf, locator + 8);
    if (record + 56 > buf.length || buf.readUInt32LE(record) !== ZIP64_EOCD) throw new ZipFormatError('ZIP64 end of central directory record not found');
    count = u64(buf, record + 32);
    size = u64(buf, record + 40);
    offset = u64(buf, record + 48);
  }
  if (offset + size > buf.length) throw new ZipFormatError('central directory lies outside the archive');
  return { count, offset, size };
}

/** Values a ZIP64 extended information extra field (0x0001) carries for fields set to 0xFFFFFFFF. */
function zip64Values(extra: Buffer, wanted: { size: boolean; compressed: boolean; offset: boolean }): { size?: number; compressed?: number; offset?: number } {
  for (let at = 0; at + 4 <= extra.length; ) {
    const id = extra.readUInt16LE(at);
    const length = extra.readUInt16LE(at + 2);
    if (id === 0x0001) {
      const out: { size?: number; compressed?: number; offset?: number } = {};
      let p = at + 4;
      const take = () => {
        if (p + 8 > at + 4 + length) throw new ZipFormatError('truncated ZIP64 extra field');
        const v = u64(extra, p);
        p += 8;
        return v;
      };
      if (wanted.size) out.size = take();
      if (wanted.compressed) out.compressed = take();
      if (wanted.offset) out.offset = take();
      return out;
    }
    at += 4 + length;
  }
  throw new ZipFormatError('ZIP64 sizes announced but no ZIP64 extra field');
}

/** Entry names that stay inside the archive's folder: relative, no `..`, no drive, no NUL. */
export function checkEntryName(name: string): void {
  if (name === '') throw new ZipPathError(name, 'empty name');
  if (name.includes('\0')) throw new ZipPathError(name, 'NUL in the name');
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) throw new ZipPathError(name, 'absolute path');
  if (name.split('/').some((segment) => segment === '..')) throw new ZipPathError(name, '".." leaves the archive');
}

function decodeName(raw: Buffer, utf8: boolean): string {
  // Names without the UTF-8 flag are CP437; XDM names are ASCII, so Latin-1 is close enough for the rest.
  return (utf8 ? raw.toString('utf8') : raw.toString('latin1')).replace(/\\/g, '/');
}

function checkLimits(entry: ZipEntry, limits: ZipLimits): void {
  if (entry.size > limits.maxEntryBytes) throw new ZipLimitError('maxEntryBytes', entry.size, limits.maxEntryBytes, entry.name);
  if (entry.size >= limits.ratioFloorBytes) {
    const ratio = entry.compressedSize === 0 ? Infinity : entry.size / entry.compressedSize;
    if (ratio > limits.maxCompressionRatio) {
      throw new ZipLimitError('maxCompressionRatio', Math.round(ratio), limits.maxCompressionRatio, entry.name);
    }
  }
}

/**
 * The central directory as it is, without judging it: names, sizes, methods. Throws `ZipFormatError` only,
 * for a structure that cannot be read. Cheap (no inflation; at most one entry per 46 bytes of directory), so
 * it can tell whether a zip is an XDM package before the limits are applied.
 */
export function readZipDirectory(buf: Buffer): ZipEntry[] {
  return parseDirectory(buf).entries;
}

function parseDirectory(buf: Buffer): { entries: ZipEntry[]; offset: number } {
  const dir = readDirectoryLocation(buf);
  if (dir.count * 46 > dir.size) throw new ZipFormatError(`central directory too small for ${dir.count} entries`);
  const entries: ZipEntry[] = [];
  let at = dir.offset;
  const end = dir.offset + dir.size;
  for (let i = 0; i < dir.count; i++) {
    if (at + 46 > end || buf.readUInt32LE(at) !== CENTRAL) throw new ZipFormatError(`central directory entry ${i + 1} is malformed`);
    const flags = buf.readUInt16LE(at + 8);
    const nameLength = buf.readUInt16LE(at + 28);
    const extraLength = buf.readUInt16LE(at + 30);
    const commentLength = buf.readUInt16LE(at + 32);
    const next = at + 46 + nameLength + extraLength + commentLength;
    if (next > end) throw new ZipFormatError(`central directory entry ${i + 1} is truncated`);
    const name = decodeName(buf.subarray(at + 46, at + 46 + nameLength), (flags & 0x0800) !== 0);
    let compressedSize = buf.readUInt32LE(at + 20);
    let size = buf.readUInt32LE(at + 24);
    let offset = buf.readUInt32LE(at + 42);
    if (compressedSize === 0xffffffff || size === 0xffffffff || offset === 0xffffffff) {
      const extra = buf.subarray(at + 46 + nameLength, at + 46 + nameLength + extraLength);
      const big = zip64Values(extra, { size: size === 0xffffffff, compressed: compressedSize === 0xffffffff, offset: offset === 0xffffffff });
      size = big.size ?? size;
      compressedSize = big.compressed ?? compressedSize;
      offset = big.offset ?? offset;
    }
    const unixMode = buf.readUInt32LE(at + 38) >>> 16;
    entries.push({
      name,
      directory: name.endsWith('/'),
      method: buf.readUInt16LE(at + 10),
      crc: buf.readUInt32LE(at + 16),
      compressedSize,
      size,
      offset,
      encrypted: (flags & 0x0001) !== 0,
      symlink: buf[at + 5] === 3 && (unixMode & S_IFMT) === S_IFLNK,
    });
    at = next;
  }
  return { entries, offset: dir.offset };
}

/**
 * The entries of a zip archive, checked against `limits` (count, sizes, ratio), with safe names, no links, no
 * encryption, stored or deflated only, and no two entries sharing bytes (the overlapping-entry zip bomb).
 * Nothing is inflated. Throws `ZipFormatError`, `ZipLimitError`, `ZipPathError` or `ZipUnsupportedError`.
 */
export function listZip(buf: Buffer, limits: ZipLimits): ZipEntry[] {
  const { entries, offset } = parseDirectory(buf);
  if (entries.length > limits.maxEntries) throw new ZipLimitError('maxEntries', entries.length, limits.maxEntries);
  let total = 0;
  for (const entry of entries) {
    checkEntryName(entry.name);
    if (entry.symlink) throw new ZipPathError(entry.name, 'symbolic link');
    if (entry.encrypted) throw new ZipUnsupportedError(`zip entry ${JSON.stringify(entry.name)} is encrypted`);
    if (entry.method !== STORED && entry.method !== DEFLATED) {
      throw new ZipUnsupportedError(`zip entry ${JSON.stringify(entry.name)} uses compression method ${entry.method}`);
    }
    checkLimits(entry, limits);
    total += entry.size;
    if (total > limits.maxTotalBytes) throw new ZipLimitError('maxTotalBytes', total, limits.maxTotalBytes);
  }
  checkNoOverlap(buf, entries, offset);
  return entries;
}

function dataStart(buf: Buffer, entry: ZipEntry): number {
  if (entry.offset + 30 > buf.length || buf.readUInt32LE(entry.offset) !== LOCAL) {
    throw new ZipFormatError(`local header of ${JSON.stringify(entry.name)} not found`);
  }
  return entry.offset + 30 + buf.readUInt16LE(entry.offset + 26) + buf.readUInt16LE(entry.offset + 28);
}

/** Each entry's bytes (local header and data) must lie before the central directory and apart from the others. */
function checkNoOverlap(buf: Buffer, entries: readonly ZipEntry[], directoryOffset: number): void {
  const spans = entries
    .map((entry) => ({ entry, start: entry.offset, end: dataStart(buf, entry) + entry.compressedSize }))
    .sort((a, b) => a.start - b.start);
  let previousEnd = 0;
  for (const span of spans) {
    if (span.start < previousEnd) throw new ZipFormatError(`zip entry ${JSON.stringify(span.entry.name)} overlaps another entry`);
    if (span.end > directoryOffset) throw new ZipFormatError(`zip entry ${JSON.stringify(span.entry.name)} runs into the central directory`);
    previousEnd = span.end;
  }
}

/** The uncompressed bytes of an entry listed by `listZip`; never more than its declared size. */
export function readZipEntry(buf: Buffer, entry: ZipEntry): Buffer {
  const start = dataStart(buf, entry);
  const data = buf.subarray(start, start + entry.compressedSize);
  let out: Buffer;
  if (entry.method === STORED) out = data;
  else {
    try {
      out = inflateRawSync(data, { maxOutputLength: Math.max(1, entry.size) });
    } catch (err) {
      const tooBig = err instanceof RangeError || (err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE';
      throw new ZipEntryCorruptError(entry.name, tooBig ? `inflates past its declared ${entry.size} bytes` : 'deflate data is invalid');
    }
  }
  if (out.length !== entry.size) throw new ZipEntryCorruptError(entry.name, `${out.length} bytes instead of the declared ${entry.size}`);
  if (crc32(out) >>> 0 !== entry.crc >>> 0) throw new ZipEntryCorruptError(entry.name, 'CRC-32 mismatch');
  return out;
}
