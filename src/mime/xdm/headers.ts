import { looksLikeCda, NotCdaError, parseCda } from '../cda/cda.js';
import type { Ins } from '../cda/ins.js';
import { paramValue } from '../params.js';
import { decodeTransfer } from '../transfer.js';
import type { MimeNode } from '../types.js';
import { ZipLimitError } from './errors.js';
import { xdmLimits, xmlLimitsOf, type XdmLimits } from './limits.js';
import { isXdmListing, readXdm, type XdmPackage } from './read.js';
import { readZipDirectory } from './zip.js';

/**
 * The MSSanté headers that describe the CDA documents a message carries in IHE XDM archives (Ref#2 ECO.2.4.1
 * and ECO.2.4.2, DOMAIN.md §1.6):
 * - `X-MSS-CODECDA`: the CDA header `code` of each document, comma-separated;
 * - `X-MSS-INS`: `O` when a document carries a qualified INS (matricule with its INS OID, and the identity
 *   traits), else `N`.
 * Both are set when at least one CDA document is carried in an XDM archive, and must be absent otherwise.
 *
 * A zip attachment is an XDM archive when its listing has an `IHE_XDM` folder, or when it is named
 * `IHE_XDM.ZIP` (then an unreadable archive is an error rather than "not XDM"). Encapsulated messages
 * (`message/rfc822`) are not looked into: their documents are not this message's.
 */

export const CODE_CDA_HEADER = 'X-MSS-CODECDA';
export const INS_HEADER = 'X-MSS-INS';

export interface ZipAttachment {
  /** IMAP part number, e.g. `2` or `1.3`. */
  part: string;
  filename: string | null;
  content: Buffer;
}

export interface XdmCdaSummary {
  /** Part number of the archive in the message. */
  part: string;
  subset: string;
  documentId: string;
  code: string | null;
  codeSystem: string | null;
  title: string | null;
  ins: Ins | null;
  insQualified: boolean;
}

export type XdmHeaderDecision =
  /** At least one CDA in an XDM archive: set these headers (replacing any the sender wrote). */
  | { action: 'set'; headers: [name: string, value: string][]; documents: XdmCdaSummary[]; packages: XdmPackage[]; warnings: string[] }
  /** No CDA in an XDM archive: both headers must be absent. */
  | { action: 'remove'; packages: XdmPackage[]; warnings: string[] }
  /** The content is encrypted (S/MIME or OpenPGP): what it carries cannot be known here; leave the headers alone. */
  | { action: 'opaque' };

const ZIP_TYPES = new Set(['application/zip', 'application/x-zip', 'application/x-zip-compressed']);
const XML_TYPES = new Set(['text/xml', 'application/xml', 'application/hl7-v3+xml', 'application/hl7-cda+xml']);

function filenameOf(node: MimeNode): string | null {
  return (node.disposition ? paramValue(node.disposition.params, 'filename') : null) ?? paramValue(node.params, 'name');
}

function isEncrypted(node: MimeNode): boolean {
  const type = `${node.type}/${node.subtype}`;
  return type === 'multipart/encrypted' || type === 'application/pkcs7-mime' || type === 'application/x-pkcs7-mime';
}

function mayBeZip(node: MimeNode, filename: string | null): boolean {
  const type = `${node.type}/${node.subtype}`;
  const zipName = filename !== null && /\.zip$/i.test(filename.trim());
  if (type === 'application/octet-stream') return zipName;
  return ZIP_TYPES.has(type) || zipName;
}

/** Leaf parts that may hold a zip archive (by media type or file name), decoded, in message order. */
export function findZipAttachments(raw: Buffer, root: MimeNode): ZipAttachment[] {
  const found: ZipAttachment[] = [];
  const walk = (node: MimeNode, part: string) => {
    if (node.type === 'multipart') {
      node.children.forEach((child, i) => walk(child, part === '' ? String(i + 1) : `${part}.${i + 1}`));
      return;
    }
    if (node.type === 'message') return;
    const filename = filenameOf(node);
    if (!mayBeZip(node, filename)) return;
    found.push({ part: part === '' ? '1' : part, filename, content: decodeTransfer(raw.subarray(node.bodyStart, node.bodyEnd), node.encoding) });
  };
  walk(root, '');
  return found;
}

function isNamedXdm(filename: string | null): boolean {
  return filename !== null && /^IHE_XDM\.ZIP$/i.test(filename.trim());
}

/** A code as it may go in a header field: printable ASCII, no comma, no white space. */
function headerSafeCode(code: string | null): code is string {
  return code !== null && /^[\x21-\x2b\x2d-\x7e]{1,64}$/.test(code);
}

/**
 * What to do with `X-MSS-CODECDA` and `X-MSS-INS` for this message. Throws the XDM reader's errors
 * (`XdmError`: zip bomb, unsafe path, integrity mismatch...) and the XML reader's (`XmlUnsafeError`,
 * `XmlMalformedError`) for an XDM archive that cannot be trusted.
 */
export function xdmHeaderDecision(raw: Buffer, root: MimeNode, options: { limits?: Partial<XdmLimits>; acceptTestIns?: boolean } = {}): XdmHeaderDecision {
  if (isEncrypted(root)) return { action: 'opaque' };
  const limits = xdmLimits(options.limits);
  const packages: { part: string; pkg: XdmPackage }[] = [];
  for (const attachment of findZipAttachments(raw, root)) {
    if (!isNamedXdm(attachment.filename)) {
      let xdm: boolean;
      try {
        // Names only: the limits are applied by readXdm, so an XDM zip bomb is refused, not skipped.
        xdm = isXdmListing(readZipDirectory(attachment.content));
      } catch {
        // A zip whose directory cannot be read and that does not claim to be XDM is not this stage's business.
        xdm = false;
      }
      if (!xdm) continue;
    }
    if (packages.length >= limits.maxPackagesPerMessage) {
      throw new ZipLimitError('maxPackagesPerMessage', packages.length + 1, limits.maxPackagesPerMessage);
    }
    packages.push({ part: attachment.part, pkg: readXdm(attachment.content, { limits }) });
  }

  const documents: XdmCdaSummary[] = [];
  const warnings: string[] = [];
  for (const { part, pkg } of packages) {
    warnings.push(...pkg.warnings.map((w) => `part ${part}: ${w}`));
    for (const subset of pkg.subsets) {
      for (const doc of subset.documents) {
        const mime = doc.entry.mimeType;
        if (!doc.content || (mime !== null && !XML_TYPES.has(mime)) || !looksLikeCda(doc.content)) continue;
        let cda;
        try {
          cda = parseCda(doc.content, { xml: xmlLimitsOf(limits), acceptTestIns: options.acceptTestIns ?? true, readBody: false });
        } catch (err) {
          if (err instanceof NotCdaError) continue;
          throw err;
        }
        const p = cda.patient;
        documents.push({
          part,
          subset: subset.folder,
          documentId: doc.entry.id,
          code: cda.code?.code ?? null,
          codeSystem: cda.code?.codeSystem ?? null,
          title: cda.title,
          ins: p?.ins ?? null,
          insQualified: p?.insQualified ?? false,
        });
      }
    }
  }
  const bare = packages.map((p) => p.pkg);
  if (documents.length === 0) return { action: 'remove', packages: bare, warnings };

  const codes: string[] = [];
  for (const doc of documents) {
    if (!headerSafeCode(doc.code)) warnings.push(`part ${doc.part}: document ${JSON.stringify(doc.documentId)} has no usable CDA code`);
    else if (!codes.includes(doc.code)) codes.push(doc.code);
  }
  const headers: [string, string][] = [];
  if (codes.length > 0) headers.push([CODE_CDA_HEADER, codes.join(',')]);
  headers.push([INS_HEADER, documents.some((d) => d.insQualified) ? 'O' : 'N']);
  return { action: 'set', headers, documents, packages: bare, warnings };
}
