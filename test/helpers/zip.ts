/** Test helpers: zip archives made in memory, and archives altered after they were made. */
import { unzipSync, zipSync } from 'fflate';

export function zipOf(files: Record<string, Buffer | string>): Buffer {
  const out = zipSync(Object.fromEntries(Object.entries(files).map(([n, d]) => [n, Buffer.from(d)])));
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

/** The files of a zip, changed by `edit` and zipped again (a sender who alters a document after packaging). */
export function rezip(zip: Buffer, edit: (files: Record<string, Buffer>) => void): Buffer {
  const files = Object.fromEntries(Object.entries(unzipSync(zip)).map(([n, d]) => [n, Buffer.from(d)]));
  edit(files);
  return zipOf(Object.fromEntries(Object.entries(files).filter(([n]) => !n.endsWith('/'))));
}

/** What `f` throws (the test fails when it does not throw). */
export function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}
