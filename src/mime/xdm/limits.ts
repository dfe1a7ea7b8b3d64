import { DEFAULT_XML_LIMITS, type XmlLimits } from '../cda/xml.js';

/**
 * Bounds on what reading an IHE XDM archive may cost. Every limit is checked on the zip's central directory
 * before anything is inflated, and inflation itself never writes more than an entry's declared size.
 */
export interface XdmLimits {
  /** Most entries (files and folders) in one archive. */
  maxEntries: number;
  /** Largest sum of the entries' uncompressed sizes. */
  maxTotalBytes: number;
  /** Largest uncompressed size of one entry. */
  maxEntryBytes: number;
  /** Largest uncompressed / compressed size ratio of one entry (zip bombs compress about 1000:1). */
  maxCompressionRatio: number;
  /** Entries smaller than this (uncompressed) are not held to the ratio: tiny files compress oddly. */
  ratioFloorBytes: number;
  /** Largest XML document (metadata or CDA), in bytes. */
  maxXmlBytes: number;
  /** Deepest XML element nesting. */
  maxXmlDepth: number;
  /** Most XDM archives examined in one message. */
  maxPackagesPerMessage: number;
}

export const DEFAULT_XDM_LIMITS: XdmLimits = {
  maxEntries: 256,
  maxTotalBytes: 64 * 1024 * 1024,
  maxEntryBytes: 32 * 1024 * 1024,
  maxCompressionRatio: 200,
  ratioFloorBytes: 64 * 1024,
  maxXmlBytes: DEFAULT_XML_LIMITS.maxBytes,
  maxXmlDepth: DEFAULT_XML_LIMITS.maxDepth,
  maxPackagesPerMessage: 8,
};

export function xdmLimits(overrides: Partial<XdmLimits> = {}): XdmLimits {
  return { ...DEFAULT_XDM_LIMITS, ...overrides };
}

export function xmlLimitsOf(limits: XdmLimits): XmlLimits {
  return { maxBytes: limits.maxXmlBytes, maxDepth: limits.maxXmlDepth };
}
