import { looksLikeCda, parseCda } from '../mime/cda/cda.js';
import { XmlMalformedError, XmlUnsafeError } from '../mime/cda/xml.js';
import { XdmError, type XdmIntegrityProblem } from '../mime/xdm/errors.js';
import { xdmLimits, xmlLimitsOf, type XdmLimits } from '../mime/xdm/limits.js';
import { readXdm, xdmIntegrityErrors, type XdmDocument, type XdmSubset } from '../mime/xdm/read.js';
import { formatHl7Time, isCdaReadError, summariseCda, type CdaSummary, type Lang } from './cda-view.js';
import { documentKind, kindLabel, type DocumentKind } from './document-kinds.js';
import { html, type Html } from './html.js';

export { displayXdmSubject } from '../mime/xdm/subject.js';

/**
 * The documents of an IHE XDM attachment (`IHE_XDM.ZIP`) as the webmail lists them. The archive is read by
 * `src/mime/xdm/read.ts` (bounded zip reader: no zip bomb, no path leaving the archive; metadata by the safe
 * XML reader) and every document is checked against its metadata (size, SHA-1): a document that is missing or
 * altered is listed with its problem and is never handed out (`readXdmDocument` returns null for it).
 *
 * Usage in a page: `listXdmDocuments(zip)` (throws the reader's typed errors: show them with `renderXdmError`),
 * `renderXdmList(entries, lang, { actions })` where `actions(entry)` gives the page's own links or forms for
 * a document (view, save to my documents), and `readXdmDocument(zip, entry.id)` for the bytes of one.
 *
 * CSS classes: `xdm-documents`, `xdm-document`, `xdm-title`, `xdm-details`, `xdm-problem`, `xdm-actions`,
 * `xdm-empty`, `xdm-error`.
 */

export type XdmDocumentFormat = 'cda' | 'cda-unreadable' | 'other';

export interface XdmDocumentEntry {
  /** `<submission set folder>/<entry id>`, e.g. `SUBSET01/Document01`: unique in the package, stable. */
  id: string;
  /** The submission set folder in the archive, e.g. `IHE_XDM/SUBSET01`. */
  subset: string;
  /** The document entry's id in METADATA.XML. */
  entryId: string;
  /** Path of the document in the archive; null when it is missing. */
  path: string | null;
  /** The CDA title, else the metadata title. */
  title: string | null;
  mimeType: string | null;
  /** Bytes of the document as found (null when missing). */
  size: number | null;
  /** CDA `effectiveTime`, else the metadata `creationTime` (both HL7 TS). */
  date: string | null;
  format: XdmDocumentFormat;
  /** Header of the CDA document, when it is one that reads. */
  cda: CdaSummary | null;
  /** From the CDA code, else from the metadata typeCode; `other` when neither is known. */
  kind: DocumentKind;
  /** `ok`, or why the document may not be shown (not in the archive, size or SHA-1 unlike the metadata). */
  integrity: 'ok' | XdmIntegrityProblem;
}

export interface XdmViewOptions {
  limits?: Partial<XdmLimits>;
}

const TEXT = {
  empty: { fr: 'Ce paquet ne contient aucun document.', en: 'This package holds no document.' },
  untitled: { fr: 'Document sans titre', en: 'Untitled document' },
  by: { fr: 'par', en: 'by' },
  missing: { fr: 'Document absent du paquet : il ne peut pas être ouvert.', en: 'Document missing from the package: it cannot be opened.' },
  altered: {
    fr: 'Document altéré : il ne correspond pas à sa description dans le paquet (taille ou empreinte). Il ne peut pas être ouvert.',
    en: 'Altered document: it does not match its description in the package (size or fingerprint). It cannot be opened.',
  },
  unreadable: { fr: 'Document CDA illisible.', en: 'Unreadable CDA document.' },
  notCda: { fr: 'Document non structuré', en: 'Unstructured document' },
  error: {
    fr: 'Les documents de cette pièce jointe (IHE_XDM) ne peuvent pas être lus',
    en: 'The documents of this attachment (IHE_XDM) cannot be read',
  },
  reasonLimit: { fr: 'elle dépasse les limites de taille acceptées.', en: 'it exceeds the accepted size limits.' },
  reasonUnsafe: { fr: 'elle contient des éléments refusés pour des raisons de sécurité.', en: 'it holds items refused for safety reasons.' },
  reasonMalformed: { fr: "ce n'est pas un paquet IHE XDM valide.", en: 'it is not a valid IHE XDM package.' },
} as const;

function t(key: keyof typeof TEXT, lang: Lang): string {
  return TEXT[key][lang];
}

function folderName(subset: XdmSubset): string {
  return subset.folder.slice(subset.folder.lastIndexOf('/') + 1);
}

function integrityOf(doc: XdmDocument, problems: ReadonlyMap<XdmDocument, XdmIntegrityProblem>): 'ok' | XdmIntegrityProblem {
  return problems.get(doc) ?? 'ok';
}

function entryOf(subset: XdmSubset, doc: XdmDocument, integrity: 'ok' | XdmIntegrityProblem, limits: XdmLimits): XdmDocumentEntry {
  const meta = doc.entry;
  let format: XdmDocumentFormat = 'other';
  let cda: CdaSummary | null = null;
  if (integrity === 'ok' && doc.content && looksLikeCda(doc.content)) {
    try {
      cda = summariseCda(parseCda(doc.content, { xml: xmlLimitsOf(limits), readBody: false }));
      format = 'cda';
    } catch (err) {
      if (!isCdaReadError(err)) throw err;
      format = 'cda-unreadable';
    }
  }
  const metaKind = meta.typeCode ? documentKind(meta.typeCode.code, meta.typeCode.scheme) : 'other';
  return {
    id: `${folderName(subset)}/${meta.id}`,
    subset: subset.folder,
    entryId: meta.id,
    path: doc.path,
    title: cda?.title ?? meta.title,
    mimeType: meta.mimeType,
    size: doc.content?.length ?? null,
    date: cda?.effectiveTime ?? meta.creationTime,
    format,
    cda,
    kind: cda && cda.kind !== 'other' ? cda.kind : metaKind,
    integrity,
  };
}

interface ReadPackage {
  entries: XdmDocumentEntry[];
  contents: Map<string, Buffer | null>;
}

/**
 * The last reading of each archive (by its Buffer, for as long as the caller holds it): a page lists the documents
 * and then opens one of the same attachment, and should not unzip and parse everything twice.
 */
const readings = new WeakMap<Buffer, { limits: string; pkg: ReadPackage }>();

function read(zip: Buffer, options: XdmViewOptions): ReadPackage {
  const limits = xdmLimits(options.limits);
  const key = JSON.stringify(limits);
  const known = readings.get(zip);
  if (known && known.limits === key) return known.pkg;
  const pkg = readPackage(zip, limits);
  readings.set(zip, { limits: key, pkg });
  return pkg;
}

function readPackage(zip: Buffer, limits: XdmLimits): ReadPackage {
  const pkg = readXdm(zip, { limits, verify: false });
  const problems = new Map<XdmDocument, XdmIntegrityProblem>();
  const errors = xdmIntegrityErrors(pkg);
  for (const subset of pkg.subsets) {
    for (const doc of subset.documents) {
      const error = errors.find((e) => e.subset === subset.folder && e.documentId === doc.entry.id);
      if (error) problems.set(doc, error.problem);
    }
  }
  const entries: XdmDocumentEntry[] = [];
  const contents = new Map<string, Buffer | null>();
  for (const subset of pkg.subsets) {
    for (const doc of subset.documents) {
      const entry = entryOf(subset, doc, integrityOf(doc, problems), limits);
      entries.push(entry);
      contents.set(entry.id, entry.integrity === 'ok' ? doc.content : null);
    }
  }
  return { entries, contents };
}

/**
 * The documents of an XDM archive, in package order. Throws the reader's errors for an archive that cannot be
 * read safely (`XdmError` subclasses, `XmlUnsafeError`, `XmlMalformedError` for METADATA.XML).
 */
export function listXdmDocuments(zip: Buffer, options: XdmViewOptions = {}): XdmDocumentEntry[] {
  return [...read(zip, options).entries];
}

/** One document and its bytes, only when it matches its metadata; null when unknown, missing or altered. */
export function readXdmDocument(zip: Buffer, id: string, options: XdmViewOptions = {}): { entry: XdmDocumentEntry; content: Buffer } | null {
  const { entries, contents } = read(zip, options);
  const entry = entries.find((e) => e.id === id);
  const content = contents.get(id);
  return entry && content ? { entry, content } : null;
}

/** Whether an error is one a hostile or broken archive causes (shown to the reader), not a bug. */
export function isXdmReadError(err: unknown): boolean {
  return err instanceof XdmError || err instanceof XmlUnsafeError || err instanceof XmlMalformedError;
}

/** Why an archive's documents cannot be listed, in the reader's language (no detail of the content). */
export function renderXdmError(err: unknown, lang: Lang): Html {
  let reason: keyof typeof TEXT = 'reasonMalformed';
  if (err instanceof XdmError && err.code === 'zip-limit') reason = 'reasonLimit';
  else if ((err instanceof XdmError && err.code === 'zip-unsafe-path') || err instanceof XmlUnsafeError) reason = 'reasonUnsafe';
  // French puts a space before the colon.
  return html`<div class="xdm-error" role="alert">${t('error', lang)}${lang === 'fr' ? ' : ' : ': '}${t(reason, lang)}</div>`;
}

function problemText(entry: XdmDocumentEntry, lang: Lang): string | null {
  if (entry.integrity === 'missing') return t('missing', lang);
  if (entry.integrity !== 'ok') return t('altered', lang);
  if (entry.format === 'cda-unreadable') return t('unreadable', lang);
  return null;
}

function details(entry: XdmDocumentEntry, lang: Lang): string {
  const kind = entry.format === 'cda' ? kindLabel(entry.kind, lang) : t('notCda', lang);
  const date = formatHl7Time(entry.date, lang, false);
  const who = [entry.cda?.author, entry.cda?.organisation].filter((p): p is string => !!p).join(', ');
  return [kind, date, who ? `${t('by', lang)} ${who}` : null].filter((p): p is string => !!p).join(' · ');
}

export interface XdmListOptions {
  /** The page's links or forms for one document (e.g. view, save to my documents); nothing when null. */
  actions?: (entry: XdmDocumentEntry) => Html | null;
}

/** The list of an archive's documents: title, kind, date, author; problems said plainly. */
export function renderXdmList(entries: readonly XdmDocumentEntry[], lang: Lang, options: XdmListOptions = {}): Html {
  if (entries.length === 0) return html`<p class="xdm-empty">${t('empty', lang)}</p>`;
  const items = entries.map((entry) => {
    const problem = problemText(entry, lang);
    const actions = entry.integrity === 'ok' ? (options.actions?.(entry) ?? null) : null;
    return html`<li class="xdm-document"><span class="xdm-title">${entry.title ?? t('untitled', lang)}</span> <span class="xdm-details">${details(entry, lang)}</span>${
      problem ? html` <span class="xdm-problem" role="status">${problem}</span>` : ''
    }${actions ? html` <span class="xdm-actions">${actions}</span>` : ''}</li>`;
  });
  return html`<ul class="xdm-documents">${items}</ul>`;
}
