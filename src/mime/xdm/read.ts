import { createHash } from 'node:crypto';
import { decodeBytes } from '../headers.js';
import { XdmError, XdmFormatError, XdmIntegrityError, ZipPathError } from './errors.js';
import { xdmLimits, xmlLimitsOf, type XdmLimits } from './limits.js';
import { parseXdmMetadata, type XdmDocumentEntry, type XdmMetadata } from './metadata.js';
import { checkEntryName, listZip, readZipEntry, type ZipEntry } from './zip.js';

/**
 * Reads an IHE XDM package (ITI TF-2b §3.32, Distribute Document Set on Media; the zip form used by Direct and
 * MSSanté): `README.TXT` and `INDEX.HTM` at the root, one folder per submission set under `IHE_XDM/` (usually
 * `SUBSET01`), each with its `METADATA.XML` and documents. Every document is checked against the metadata's
 * `size` and SHA-1 `hash` slots.
 *
 * Leniency learnt from packages in the wild, each noted in `warnings`:
 * - the package may sit under one extra top folder (`samplexdm/IHE_XDM/...`); names match case-insensitively
 *   (`METADATA.xml`, `INDEX.htm`);
 * - a submission set folder may have any name (`SS000001`), and a document `URI` may be relative to the set
 *   folder (usual), to `IHE_XDM/` (`SS000001/KOS_1_1.DCM`) or to the package root;
 * - a document entry without a `URI` slot is matched to the one file of its folder named after its `id`
 *   (what the Direct reference implementation writes: `<id>.xml`);
 * - a missing `size` or `hash` slot leaves that check undone; README.TXT or INDEX.HTM may be missing.
 */

export interface XdmDocument {
  entry: XdmDocumentEntry;
  /** Path of the document in the zip, or null when it could not be found. */
  path: string | null;
  /** How the document was found: by its `URI` slot or, lacking one, by its entry id. */
  matchedBy: 'uri' | 'id' | null;
  content: Buffer | null;
  /** SHA-1 of `content`, lower-case hex. */
  sha1: string | null;
}

export interface XdmSubset {
  /** Folder relative to the package root, e.g. `IHE_XDM/SUBSET01`. */
  folder: string;
  metadataPath: string;
  metadata: XdmMetadata;
  documents: XdmDocument[];
}

export interface XdmPackage {
  /** Folder of the zip holding the package: `''`, or e.g. `samplexdm/`. */
  root: string;
  readme: { path: string; text: string } | null;
  index: { path: string } | null;
  subsets: XdmSubset[];
  /** Every entry of the zip, as listed. */
  entries: ZipEntry[];
  warnings: string[];
}

export interface XdmReadOptions {
  limits?: Partial<XdmLimits>;
  /** Throw the first `XdmIntegrityError` (the default); with false, inspect `xdmIntegrityErrors` yourself. */
  verify?: boolean;
}

const XDM_FOLDER = 'ihe_xdm';

/** The package root of each entry that sits in an `IHE_XDM` folder. */
function packageRoots(entries: readonly ZipEntry[]): Set<string> {
  const roots = new Set<string>();
  for (const entry of entries) {
    const segments = entry.name.split('/');
    const at = segments.findIndex((s, i) => s.toLowerCase() === XDM_FOLDER && i < segments.length - 1);
    if (at >= 0) roots.add(segments.slice(0, at).map((s) => `${s}/`).join(''));
  }
  return roots;
}

/** Whether a zip's listing is an XDM package: some entry lies in an `IHE_XDM` folder. */
export function isXdmListing(entries: readonly ZipEntry[]): boolean {
  return packageRoots(entries).size > 0;
}

function sha1(bytes: Buffer): string {
  return createHash('sha1').update(bytes).digest('hex');
}

function basenameWithoutExtension(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return (dot > 0 ? base.slice(0, dot) : base).toLowerCase();
}

class Files {
  private readonly byName = new Map<string, ZipEntry>();

  constructor(entries: readonly ZipEntry[]) {
    for (const entry of entries) {
      if (entry.directory) continue;
      const key = entry.name.toLowerCase();
      // Two names differing only by case would make every lookup ambiguous.
      if (this.byName.has(key)) throw new ZipPathError(entry.name, 'another entry has the same name (ignoring case)');
      this.byName.set(key, entry);
    }
  }

  get(path: string): ZipEntry | null {
    return this.byName.get(path.toLowerCase()) ?? null;
  }

  inFolder(folder: string): ZipEntry[] {
    const prefix = folder.toLowerCase();
    return [...this.byName.entries()].filter(([k]) => k.startsWith(prefix) && !k.slice(prefix.length).includes('/')).map(([, e]) => e);
  }

  all(): ZipEntry[] {
    return [...this.byName.values()];
  }
}

function resolveByUri(files: Files, root: string, folder: string, uri: string, documentId: string): ZipEntry | null {
  const normalized = uri.trim().replace(/\\/g, '/').replace(/^(?:\.\/)+/, '');
  try {
    checkEntryName(normalized);
  } catch {
    throw new XdmFormatError(`document ${JSON.stringify(documentId)}: its URI leaves the package`);
  }
  const names = [normalized];
  if (normalized.includes('%')) {
    try {
      names.push(decodeURIComponent(normalized));
    } catch {
      // Not percent-encoding after all: the name as written is the only candidate.
    }
  }
  for (const name of names) {
    for (const base of [`${root}${folder}/`, `${root}IHE_XDM/`, root]) {
      const found = files.get(base + name);
      if (found) return found;
    }
  }
  return null;
}

function resolveById(files: Files, root: string, folder: string, documentId: string): ZipEntry | null {
  const matches = files
    .inFolder(`${root}${folder}/`)
    .filter((e) => basenameWithoutExtension(e.name) === documentId.toLowerCase() && basenameWithoutExtension(e.name) !== 'metadata');
  return matches.length === 1 ? matches[0]! : null;
}

function readSubset(zip: Buffer, files: Files, root: string, metadataEntry: ZipEntry, limits: XdmLimits, warnings: string[]): XdmSubset {
  const folder = metadataEntry.name.slice(root.length, metadataEntry.name.lastIndexOf('/'));
  const metadata = parseXdmMetadata(readZipEntry(zip, metadataEntry), xmlLimitsOf(limits));
  if (metadata.documents.length === 0) warnings.push(`${folder}: the metadata lists no document`);
  const documents = metadata.documents.map((entry): XdmDocument => {
    let found: ZipEntry | null;
    let matchedBy: XdmDocument['matchedBy'];
    if (entry.uri !== null) {
      found = resolveByUri(files, root, folder, entry.uri, entry.id);
      matchedBy = 'uri';
    } else {
      found = resolveById(files, root, folder, entry.id);
      matchedBy = 'id';
      warnings.push(`${folder}: document ${JSON.stringify(entry.id)} has no URI slot${found ? `; matched to ${found.name.slice(root.length)} by its id` : ''}`);
    }
    if (entry.size === null) warnings.push(`${folder}: document ${JSON.stringify(entry.id)} has no size slot; its size is not checked`);
    if (entry.hash === null) warnings.push(`${folder}: document ${JSON.stringify(entry.id)} has no hash slot; its SHA-1 is not checked`);
    if (!found) return { entry, path: null, matchedBy: null, content: null, sha1: null };
    const content = readZipEntry(zip, found);
    return { entry, path: found.name, matchedBy, content, sha1: sha1(content) };
  });
  return { folder, metadataPath: metadataEntry.name, metadata, documents };
}

/** Every document that does not match its metadata, or is missing, in package order. */
export function xdmIntegrityErrors(pkg: XdmPackage): XdmIntegrityError[] {
  const errors: XdmIntegrityError[] = [];
  for (const subset of pkg.subsets) {
    for (const doc of subset.documents) {
      const { id, uri, size, hash } = doc.entry;
      if (doc.content === null) errors.push(new XdmIntegrityError('missing', subset.folder, id, uri));
      else if (size !== null && doc.content.length !== size) {
        errors.push(new XdmIntegrityError('size', subset.folder, id, uri, String(size), String(doc.content.length)));
      } else if (hash !== null && doc.sha1 !== hash) errors.push(new XdmIntegrityError('hash', subset.folder, id, uri, hash, doc.sha1));
    }
  }
  return errors;
}

/**
 * Reads and checks an XDM zip. Throws `ZipFormatError`, `ZipLimitError`, `ZipPathError`, `ZipUnsupportedError`,
 * `ZipEntryCorruptError` for the archive, `XdmFormatError` when it is not an XDM package, the XML reader's
 * `XmlUnsafeError` / `XmlMalformedError` for METADATA.XML, and (unless `verify: false`) the first
 * `XdmIntegrityError`.
 */
export function readXdm(zip: Buffer, options: XdmReadOptions = {}): XdmPackage {
  const limits = xdmLimits(options.limits);
  const entries = listZip(zip, limits);
  const files = new Files(entries);
  const roots = packageRoots(entries);
  if (roots.size === 0) throw new XdmFormatError('no IHE_XDM folder in the archive');
  if (roots.size > 1) throw new XdmFormatError(`several IHE_XDM folders in the archive (${[...roots].map((r) => r || '/').join(', ')})`);
  const root = [...roots][0]!;
  const warnings: string[] = [];
  if (root !== '') warnings.push(`the package sits in the folder ${root} instead of the archive root`);

  const metadataEntries = files
    .all()
    .filter((e) => {
      const rest = e.name.slice(root.length).split('/');
      return e.name.startsWith(root) && rest.length === 3 && rest[0]!.toLowerCase() === XDM_FOLDER && rest[2]!.toLowerCase() === 'metadata.xml';
    })
    .sort((a, b) => a.name.localeCompare(b.name));
  if (metadataEntries.length === 0) throw new XdmFormatError('no IHE_XDM/<submission set>/METADATA.XML in the archive');

  const readmeEntry = files.get(`${root}README.TXT`);
  const indexEntry = files.get(`${root}INDEX.HTM`);
  if (!readmeEntry) warnings.push('no README.TXT at the package root');
  if (!indexEntry) warnings.push('no INDEX.HTM at the package root');
  const readme = readmeEntry ? { path: readmeEntry.name, text: decodeBytes(readZipEntry(zip, readmeEntry)) } : null;

  const subsets = metadataEntries.map((m) => readSubset(zip, files, root, m, limits, warnings));
  const pkg: XdmPackage = { root, readme, index: indexEntry ? { path: indexEntry.name } : null, subsets, entries, warnings };
  if (options.verify !== false) {
    const first = xdmIntegrityErrors(pkg)[0];
    if (first) throw first;
  }
  return pkg;
}

export function isXdmError(err: unknown): err is XdmError {
  return err instanceof XdmError;
}
