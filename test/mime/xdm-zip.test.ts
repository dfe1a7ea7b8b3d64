import { readFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { ZipEntryCorruptError, ZipFormatError, ZipLimitError, ZipPathError, ZipUnsupportedError } from '../../src/mime/xdm/errors.js';
import { DEFAULT_XDM_LIMITS, xdmLimits } from '../../src/mime/xdm/limits.js';
import { listZip, readZipEntry } from '../../src/mime/xdm/zip.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/xdm/${name}`, import.meta.url));

function zipOf(files: Record<string, Buffer | string>, level: 0 | 6 | 9 = 6): Buffer {
  const input = Object.fromEntries(Object.entries(files).map(([name, data]) => [name, [Buffer.from(data), { level }] as const]));
  const out = zipSync(input as never);
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

/** Offset of the central directory header of `name`. */
function centralOffset(zip: Buffer, name: string): number {
  for (let at = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])); at >= 0; at = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), at - 1)) {
    const length = zip.readUInt16LE(at + 28);
    if (zip.toString('latin1', at + 46, at + 46 + length) === name) return at;
  }
  throw new Error(`no central entry ${name}`);
}

function patch(zip: Buffer, name: string, write: (z: Buffer, central: number) => void): Buffer {
  const copy = Buffer.from(zip);
  write(copy, centralOffset(copy, name));
  return copy;
}

/** Renames an entry in its local and central headers (same length, so every offset still holds). */
function rename(zip: Buffer, from: string, to: string): Buffer {
  if (from.length !== to.length) throw new Error('same length only');
  const copy = Buffer.from(zip);
  const needle = Buffer.from(from, 'latin1');
  for (let at = copy.indexOf(needle); at >= 0; at = copy.indexOf(needle, at + 1)) copy.write(to, at, 'latin1');
  return copy;
}

/** A stored-entry zip written with ZIP64 sizes and end records, as streaming zip writers produce. */
function zip64Of(name: string, data: Buffer): Buffer {
  const nameBytes = Buffer.from(name);
  const crc = crc32(data);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(45, 4);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(data.length, 18);
  local.writeUInt32LE(data.length, 22);
  local.writeUInt16LE(nameBytes.length, 26);
  const extra = Buffer.alloc(28);
  extra.writeUInt16LE(0x0001, 0);
  extra.writeUInt16LE(24, 2);
  extra.writeBigUInt64LE(BigInt(data.length), 4);
  extra.writeBigUInt64LE(BigInt(data.length), 12);
  extra.writeBigUInt64LE(0n, 20);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(45, 4);
  central.writeUInt16LE(45, 6);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(0xffffffff, 20);
  central.writeUInt32LE(0xffffffff, 24);
  central.writeUInt16LE(nameBytes.length, 28);
  central.writeUInt16LE(extra.length, 30);
  central.writeUInt32LE(0xffffffff, 42);
  const cdOffset = local.length + nameBytes.length + data.length;
  const cdSize = central.length + nameBytes.length + extra.length;
  const record = Buffer.alloc(56);
  record.writeUInt32LE(0x06064b50, 0);
  record.writeBigUInt64LE(44n, 4);
  record.writeBigUInt64LE(1n, 24);
  record.writeBigUInt64LE(1n, 32);
  record.writeBigUInt64LE(BigInt(cdSize), 40);
  record.writeBigUInt64LE(BigInt(cdOffset), 48);
  const locator = Buffer.alloc(20);
  locator.writeUInt32LE(0x07064b50, 0);
  locator.writeBigUInt64LE(BigInt(cdOffset + cdSize), 8);
  locator.writeUInt32LE(1, 16);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(0xffff, 8);
  end.writeUInt16LE(0xffff, 10);
  end.writeUInt32LE(0xffffffff, 12);
  end.writeUInt32LE(0xffffffff, 16);
  return Buffer.concat([local, nameBytes, data, central, nameBytes, extra, record, locator, end]);
}

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('listZip and readZipEntry: real archives', () => {
  it.each([
    ['ett/CCDA_Ambulatory_in_XDM.zip', 5],
    ['ett/ToC_XDM_Limited_Metadata.zip', 6],
    ['ett/BadXHTML.zip', 6],
    ['nhin-d/samplexdm.zip', 8],
  ])('%s lists %i entries and every file inflates to its size and CRC', (name, count) => {
    const zip = fixture(name);
    const entries = listZip(zip, DEFAULT_XDM_LIMITS);
    expect(entries).toHaveLength(count);
    for (const entry of entries.filter((e) => !e.directory)) expect(readZipEntry(zip, entry)).toHaveLength(entry.size);
  });

  it('reads stored and deflated entries, and ZIP64 sizes', () => {
    const zip = zipOf({ 'a.txt': 'stored', 'b.txt': 'deflated '.repeat(100) }, 0);
    const [a] = listZip(zip, DEFAULT_XDM_LIMITS);
    expect(readZipEntry(zip, a!).toString()).toBe('stored');
    const z64 = zip64Of('IHE_XDM/SUBSET01/DOC0001.XML', Buffer.from('<x/>'));
    const [entry] = listZip(z64, DEFAULT_XDM_LIMITS);
    expect(entry).toMatchObject({ name: 'IHE_XDM/SUBSET01/DOC0001.XML', size: 4, compressedSize: 4, offset: 0 });
    expect(readZipEntry(z64, entry!).toString()).toBe('<x/>');
  });
});

describe('zip bombs are refused before anything is inflated', () => {
  it('refuses an entry that compresses a thousand to one', () => {
    const bomb = zipOf({ 'IHE_XDM/SUBSET01/DOC0001.XML': Buffer.alloc(10 * 1024 * 1024) }, 9);
    expect(bomb.length).toBeLessThan(20_000);
    const err = thrown(() => listZip(bomb, DEFAULT_XDM_LIMITS));
    expect(err).toBeInstanceOf(ZipLimitError);
    expect(err).toMatchObject({ code: 'zip-limit', limit: 'maxCompressionRatio', entry: 'IHE_XDM/SUBSET01/DOC0001.XML' });
  });

  it('refuses an entry over the size limit, and archives over the total and count limits', () => {
    const zip = zipOf({ 'a.bin': Buffer.alloc(2000, 1), 'b.bin': Buffer.alloc(2000, 2) }, 0);
    expect(thrown(() => listZip(zip, xdmLimits({ maxEntryBytes: 1999 })))).toMatchObject({ limit: 'maxEntryBytes', actual: 2000 });
    expect(thrown(() => listZip(zip, xdmLimits({ maxTotalBytes: 3999 })))).toMatchObject({ limit: 'maxTotalBytes', actual: 4000 });
    const many = zipOf(Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`f${i}.txt`, 'x'])));
    expect(thrown(() => listZip(many, DEFAULT_XDM_LIMITS))).toMatchObject({ limit: 'maxEntries', actual: 300, allowed: 256 });
  });

  it('never inflates past the declared size: a lying size gives a corrupt entry, not memory', () => {
    const zip = zipOf({ 'doc.xml': Buffer.alloc(4 * 1024 * 1024) }, 9);
    const lying = patch(zip, 'doc.xml', (z, at) => z.writeUInt32LE(1000, at + 24));
    const [entry] = listZip(lying, DEFAULT_XDM_LIMITS);
    expect(entry!.size).toBe(1000);
    const err = thrown(() => readZipEntry(lying, entry!));
    expect(err).toBeInstanceOf(ZipEntryCorruptError);
    expect((err as Error).message).toContain('inflates past its declared 1000 bytes');
  });

  it('refuses entries that share bytes (the overlapping-entry bomb)', () => {
    const zip = zipOf({ 'a.xml': 'x'.repeat(500), 'b.xml': 'y'.repeat(500) });
    const overlapping = patch(zip, 'b.xml', (z, at) => z.writeUInt32LE(0, at + 42));
    expect(thrown(() => listZip(overlapping, DEFAULT_XDM_LIMITS))).toBeInstanceOf(ZipFormatError);
  });
});

describe('entry names that leave the archive are refused', () => {
  it.each([
    ['aa/evil.txt', '../evil.txt'],
    ['IHE_XDM/SUBSET01/aa/aa/x.xml', 'IHE_XDM/SUBSET01/../../x.xml'],
    ['aaaaaaaaaaa', '/etc/passwd'],
    ['aaaaaaaa.txt', 'C:/Windows/x'],
    ['aa/evil.txt', '..\\evil.txt'],
  ])('%s renamed %s', (from, to) => {
    const zip = rename(zipOf({ [from]: 'data' }), from, to);
    const err = thrown(() => listZip(zip, DEFAULT_XDM_LIMITS));
    expect(err).toBeInstanceOf(ZipPathError);
    expect(err).toMatchObject({ code: 'zip-unsafe-path' });
  });

  it('refuses symbolic links', () => {
    const zip = patch(zipOf({ 'link.xml': '/etc/passwd' }), 'link.xml', (z, at) => {
      z[at + 5] = 3; // made by Unix
      z.writeUInt32LE((0o120777 << 16) >>> 0, at + 38);
    });
    expect(thrown(() => listZip(zip, DEFAULT_XDM_LIMITS))).toMatchObject({ name: 'ZipPathError' });
  });
});

describe('archives we do not read', () => {
  it('refuses bytes that are not a zip, and a truncated zip', () => {
    expect(thrown(() => listZip(Buffer.from('not a zip at all, just text'), DEFAULT_XDM_LIMITS))).toBeInstanceOf(ZipFormatError);
    const zip = fixture('ett/CCDA_Ambulatory_in_XDM.zip');
    expect(thrown(() => listZip(zip.subarray(0, zip.length - 30), DEFAULT_XDM_LIMITS))).toBeInstanceOf(ZipFormatError);
    expect(thrown(() => listZip(zip.subarray(2000), DEFAULT_XDM_LIMITS))).toBeInstanceOf(ZipFormatError);
  });

  it('refuses encrypted entries and compression methods other than stored and deflate', () => {
    const zip = zipOf({ 'doc.xml': '<x/>' });
    expect(thrown(() => listZip(patch(zip, 'doc.xml', (z, at) => z.writeUInt16LE(1, at + 8)), DEFAULT_XDM_LIMITS))).toBeInstanceOf(ZipUnsupportedError);
    expect(thrown(() => listZip(patch(zip, 'doc.xml', (z, at) => z.writeUInt16LE(12, at + 10)), DEFAULT_XDM_LIMITS))).toMatchObject({
      code: 'zip-unsupported',
    });
  });

  it('detects a CRC-32 mismatch', () => {
    const zip = patch(zipOf({ 'doc.xml': '<x>data</x>' }), 'doc.xml', (z, at) => z.writeUInt32LE(0x12345678, at + 16));
    const [entry] = listZip(zip, DEFAULT_XDM_LIMITS);
    expect(thrown(() => readZipEntry(zip, entry!))).toMatchObject({ code: 'zip-corrupt-entry' });
  });
});
