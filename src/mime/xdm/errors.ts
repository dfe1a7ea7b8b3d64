/**
 * Typed failures of reading an IHE XDM archive. `code` is stable (logs, audit, tests); messages name entries
 * and documents by their path in the archive, never by their content.
 */

export type XdmErrorCode =
  | 'zip-malformed'
  | 'zip-limit'
  | 'zip-unsafe-path'
  | 'zip-unsupported'
  | 'zip-corrupt-entry'
  | 'xdm-malformed'
  | 'xdm-integrity';

export abstract class XdmError extends Error {
  abstract readonly code: XdmErrorCode;
}

/** The bytes are not a zip archive we can read (truncated, inconsistent directory, overlapping entries). */
export class ZipFormatError extends XdmError {
  readonly code = 'zip-malformed';
  constructor(message: string) {
    super(message);
    this.name = 'ZipFormatError';
  }
}

export type ZipLimitName = 'maxEntries' | 'maxTotalBytes' | 'maxEntryBytes' | 'maxCompressionRatio' | 'maxPackagesPerMessage';

/** A limit of `XdmLimits` is crossed: how zip bombs are refused, before anything is inflated. */
export class ZipLimitError extends XdmError {
  readonly code = 'zip-limit';
  constructor(
    readonly limit: ZipLimitName,
    readonly actual: number,
    readonly allowed: number,
    readonly entry: string | null = null,
  ) {
    super(`zip archive over the ${limit} limit (${actual} > ${allowed})${entry === null ? '' : ` at ${JSON.stringify(entry)}`}`);
    this.name = 'ZipLimitError';
  }
}

/** An entry name that would leave the archive's folder (`..`, absolute, drive letter) or a symbolic link. */
export class ZipPathError extends XdmError {
  readonly code = 'zip-unsafe-path';
  constructor(
    readonly entry: string,
    reason: string,
  ) {
    super(`unsafe zip entry ${JSON.stringify(entry)}: ${reason}`);
    this.name = 'ZipPathError';
  }
}

/** Encrypted entries, compression methods other than stored and deflate, multi-disk archives. */
export class ZipUnsupportedError extends XdmError {
  readonly code = 'zip-unsupported';
  constructor(message: string) {
    super(message);
    this.name = 'ZipUnsupportedError';
  }
}

/** An entry's data does not inflate to its declared size or CRC-32. */
export class ZipEntryCorruptError extends XdmError {
  readonly code = 'zip-corrupt-entry';
  constructor(
    readonly entry: string,
    reason: string,
  ) {
    super(`zip entry ${JSON.stringify(entry)} is corrupt: ${reason}`);
    this.name = 'ZipEntryCorruptError';
  }
}

/** A zip that is not a usable XDM package: no `IHE_XDM` folder, no metadata, metadata not a SubmitObjectsRequest. */
export class XdmFormatError extends XdmError {
  readonly code = 'xdm-malformed';
  constructor(message: string) {
    super(message);
    this.name = 'XdmFormatError';
  }
}

export type XdmIntegrityProblem = 'missing' | 'size' | 'hash';

/** A document does not match its metadata (the SHA-1 `hash` and `size` slots), or is not in the archive. */
export class XdmIntegrityError extends XdmError {
  readonly code = 'xdm-integrity';
  constructor(
    readonly problem: XdmIntegrityProblem,
    /** The submission set folder, e.g. `IHE_XDM/SUBSET01`. */
    readonly subset: string,
    /** The ExtrinsicObject `id` in the metadata. */
    readonly documentId: string,
    /** The document's `URI` slot, or null when the metadata has none. */
    readonly uri: string | null,
    readonly expected: string | null = null,
    readonly actual: string | null = null,
  ) {
    const what = problem === 'missing' ? 'is not in the archive' : problem === 'size' ? `has ${actual} bytes, metadata says ${expected}` : 'SHA-1 differs from the metadata';
    super(`XDM document ${JSON.stringify(documentId)} (${uri ?? 'no URI'}) in ${subset} ${what}`);
    this.name = 'XdmIntegrityError';
  }
}
