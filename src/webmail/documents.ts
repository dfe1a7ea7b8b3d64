import { createHmac, hkdfSync } from 'node:crypto';
import { z } from 'zod';
import { open, seal } from '../crypto/seal.js';
import { parseCda } from '../mime/cda/cda.js';
import { DEFAULT_XML_LIMITS } from '../mime/cda/xml.js';
import { openPatientDocumentStore, type PatientDocumentRow, type PatientDocumentStore } from '../store/patient-documents.js';
import type { SealedMail } from '../store/sealed-mail.js';
import type { MailboxRow, Store } from '../store/types.js';
import { formatHl7Time, isCdaReadError, summariseCda, type CdaSummary, type Lang } from './cda-view.js';
import { DOCUMENT_KIND_LABELS, DOCUMENT_KINDS, kindLabel, type DocumentKind, type Label } from './document-kinds.js';
import { html, type Html } from './html.js';

/**
 * A patient's document space ("mes documents"): the CDA documents the patient chose to keep from their
 * messages (a document of an IHE XDM attachment), listed by kind from the CDA code — lab results, reports,
 * imaging, prescriptions, other (`document-kinds.ts`).
 *
 * At rest (`patient_documents`, through the port `src/store/patient-documents.ts`) everything is sealed under
 * the mailbox's data key: the details (title, code, dates, names, where it came from) and the bytes, each with
 * associated data naming the mailbox, the row's source key and the column, so a sealed value moved to another
 * row, mailbox or column does not open. The source key is an HMAC of (folder, UID, document) under a key
 * derived from the mailbox key: the same document of the same message is saved once, and the database does
 * not tell which message a document came from.
 */

export interface DocumentSource {
  /** The folder and UID of the message the document was found in. */
  folderId: number;
  uid: number;
  /** The document's id in the message, e.g. the XDM entry id (`SUBSET01/Document01`, see `xdm-view.ts`). */
  documentId: string;
}

export interface DocumentInput {
  xml: Buffer;
  /** File name to offer on download. */
  name: string;
  mediaType: string;
}

export interface SavedDocumentSummary {
  id: number;
  kind: DocumentKind;
  /** The CDA title, else the file name. */
  title: string;
  name: string;
  mediaType: string;
  code: string | null;
  codeSystem: string | null;
  /** The document code's display name. */
  typeDisplay: string | null;
  /** CDA `effectiveTime` (HL7 TS). */
  date: string | null;
  author: string | null;
  organisation: string | null;
  size: number;
  savedAt: number;
  source: DocumentSource;
}

export interface SavedDocument extends SavedDocumentSummary {
  xml: Buffer;
}

export interface DocumentGroup {
  kind: DocumentKind;
  label: Label;
  documents: SavedDocumentSummary[];
}

export interface DocumentSpaceLimits {
  /** Largest document saved, in bytes. */
  maxBytes: number;
  /** Most documents in one patient's space. */
  maxDocuments: number;
}

export const DEFAULT_DOCUMENT_SPACE_LIMITS: DocumentSpaceLimits = { maxBytes: 16 * 1024 * 1024, maxDocuments: 2000 };

export type DocumentSpaceErrorCode = 'not-patient' | 'invalid' | 'not-cda' | 'too-large' | 'full';

const ERRORS: Readonly<Record<DocumentSpaceErrorCode, Label>> = {
  'not-patient': { fr: 'Seul un patient dispose d’un espace de documents.', en: 'Only a patient has a document space.' },
  invalid: { fr: 'Ce document ne peut pas être enregistré : sa description est invalide.', en: 'This document cannot be saved: its description is invalid.' },
  'not-cda': {
    fr: "Ce document ne peut pas être enregistré : ce n'est pas un document de santé structuré (CDA) lisible.",
    en: 'This document cannot be saved: it is not a readable structured health document (CDA).',
  },
  'too-large': { fr: 'Ce document est trop volumineux pour être enregistré.', en: 'This document is too large to be saved.' },
  full: {
    fr: 'Votre espace de documents est plein : supprimez des documents avant d’en enregistrer d’autres.',
    en: 'Your document space is full: delete documents before saving others.',
  },
};

/** A save refused, with texts for the patient. */
export class DocumentSpaceError extends Error {
  readonly fr: string;
  readonly en: string;
  constructor(readonly code: DocumentSpaceErrorCode) {
    super(`document space: ${code}`);
    this.name = 'DocumentSpaceError';
    this.fr = ERRORS[code].fr;
    this.en = ERRORS[code].en;
  }
}

/** What the sealed `details` column holds; checked when opened (it crosses the storage boundary). */
const Details = z.object({
  v: z.literal(1),
  kind: z.enum(DOCUMENT_KINDS),
  title: z.string(),
  name: z.string(),
  mediaType: z.string(),
  code: z.string().nullable(),
  codeSystem: z.string().nullable(),
  typeDisplay: z.string().nullable(),
  date: z.string().nullable(),
  author: z.string().nullable(),
  organisation: z.string().nullable(),
  size: z.number().int().nonnegative(),
  source: z.object({ folderId: z.number().int().positive(), uid: z.number().int().positive(), documentId: z.string() }),
});
type Details = z.infer<typeof Details>;

const KEY_INFO = 'mss patient-documents|v1';
const sourceKeys = new WeakMap<Buffer, Buffer>();
const MAX_NAME = 255;
const MAX_DOCUMENT_ID = 256;
const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$/;

function label(mailboxId: number, sourceKey: string, column: 'details' | 'content'): string {
  return `patient-document|${mailboxId}|${sourceKey}|${column}`;
}

/** A file name safe to keep and offer: no control characters or path separators, bounded. */
function cleanName(name: string): string {
  return name.replace(/[\u0000-\u001f\u007f/\\]+/g, '_').trim().slice(0, MAX_NAME);
}

function sortKey(date: string | null): string {
  return (date ?? '').replace(/\D/g, '').slice(0, 14).padEnd(14, '0');
}

export interface DocumentSpaceDeps {
  store: Store;
  mail: SealedMail;
  limits?: Partial<DocumentSpaceLimits>;
  now?: () => number;
}

export class DocumentSpace {
  readonly #rows: PatientDocumentStore;
  readonly #mail: SealedMail;
  readonly #limits: DocumentSpaceLimits;
  readonly #now: () => number;

  constructor(deps: DocumentSpaceDeps) {
    this.#rows = openPatientDocumentStore(deps.store);
    this.#mail = deps.mail;
    this.#limits = { ...DEFAULT_DOCUMENT_SPACE_LIMITS, ...deps.limits };
    this.#now = deps.now ?? Date.now;
  }

  get limits(): DocumentSpaceLimits {
    return { ...this.#limits };
  }

  /** The keyed hash naming a (message, document) of this mailbox. */
  sourceKey(mailbox: MailboxRow, source: DocumentSource): string {
    const dataKey = this.#mail.key(mailbox);
    let key = sourceKeys.get(dataKey);
    if (!key) {
      key = Buffer.from(hkdfSync('sha256', dataKey, Buffer.alloc(0), KEY_INFO, 32));
      sourceKeys.set(dataKey, key);
    }
    return createHmac('sha256', key).update(`${source.folderId}\n${source.uid}\n${source.documentId}`).digest('base64url');
  }

  /**
   * Saves a CDA document to the patient's space; returns its id (the existing one when this document of this
   * message was saved before). Throws `DocumentSpaceError` for a mailbox that is not a patient's, a bad source
   * or name, a document that is not a readable CDA, too large, or a full space.
   */
  async save(mailbox: MailboxRow, source: DocumentSource, doc: DocumentInput): Promise<number> {
    if (mailbox.type !== 'PATIENT') throw new DocumentSpaceError('not-patient');
    const validSource =
      Number.isSafeInteger(source.folderId) && source.folderId > 0 && Number.isSafeInteger(source.uid) && source.uid > 0 &&
      source.documentId.length > 0 && source.documentId.length <= MAX_DOCUMENT_ID;
    const name = cleanName(doc.name);
    // Parameters (`; charset=UTF-8`) say nothing the XML declaration does not.
    const mediaType = (doc.mediaType.split(';')[0] ?? '').trim().toLowerCase();
    if (!validSource || name === '' || !MEDIA_TYPE.test(mediaType)) throw new DocumentSpaceError('invalid');
    if (doc.xml.length > this.#limits.maxBytes) throw new DocumentSpaceError('too-large');
    const summary = this.#summarise(doc.xml);
    const details: Details = {
      v: 1,
      kind: summary.kind,
      title: summary.title ?? summary.typeDisplay ?? name,
      name,
      mediaType,
      code: summary.code,
      codeSystem: summary.codeSystem,
      typeDisplay: summary.typeDisplay,
      date: summary.effectiveTime,
      author: summary.author,
      organisation: summary.organisation,
      size: doc.xml.length,
      source: { folderId: source.folderId, uid: source.uid, documentId: source.documentId },
    };
    const key = this.#mail.key(mailbox);
    const sourceKey = this.sourceKey(mailbox, source);
    const outcome = await this.#rows.insert(
      {
        mailboxId: mailbox.id,
        sourceKey,
        savedAt: this.#now(),
        details: seal(key, JSON.stringify(details), label(mailbox.id, sourceKey, 'details')),
        content: seal(key, doc.xml, label(mailbox.id, sourceKey, 'content')),
      },
      this.#limits.maxDocuments,
    );
    if (outcome.outcome === 'full') throw new DocumentSpaceError('full');
    return outcome.id;
  }

  #summarise(xml: Buffer): CdaSummary {
    try {
      return summariseCda(parseCda(xml, { readBody: false, xml: { maxBytes: this.#limits.maxBytes, maxDepth: DEFAULT_XML_LIMITS.maxDepth } }));
    } catch (err) {
      if (isCdaReadError(err)) throw new DocumentSpaceError('not-cda');
      throw err;
    }
  }

  #details(mailbox: MailboxRow, row: PatientDocumentRow): Details {
    const opened = open(this.#mail.key(mailbox), row.details, label(mailbox.id, row.sourceKey, 'details'));
    return Details.parse(JSON.parse(opened.toString('utf8')));
  }

  #summary(mailbox: MailboxRow, row: PatientDocumentRow): SavedDocumentSummary {
    const d = this.#details(mailbox, row);
    return {
      id: row.id,
      kind: d.kind,
      title: d.title,
      name: d.name,
      mediaType: d.mediaType,
      code: d.code,
      codeSystem: d.codeSystem,
      typeDisplay: d.typeDisplay,
      date: d.date,
      author: d.author,
      organisation: d.organisation,
      size: d.size,
      savedAt: row.savedAt,
      source: d.source,
    };
  }

  /** The patient's documents, grouped by kind (lab, report, imaging, prescription, other), newest first in each. */
  async list(mailbox: MailboxRow): Promise<SavedDocumentSummary[]> {
    const summaries = (await this.#rows.list(mailbox.id)).map((row) => this.#summary(mailbox, row));
    const order = (kind: DocumentKind) => DOCUMENT_KINDS.indexOf(kind);
    return summaries.sort(
      (a, b) => order(a.kind) - order(b.kind) || sortKey(b.date).localeCompare(sortKey(a.date)) || b.savedAt - a.savedAt || b.id - a.id,
    );
  }

  /** One document with its bytes; null when this mailbox has no document with this id. */
  async get(mailbox: MailboxRow, id: number): Promise<SavedDocument | null> {
    if (!Number.isSafeInteger(id) || id <= 0) return null;
    const row = await this.#rows.get(mailbox.id, id);
    if (!row) return null;
    const xml = open(this.#mail.key(mailbox), row.content, label(mailbox.id, row.sourceKey, 'content'));
    return { ...this.#summary(mailbox, row), xml };
  }

  /** Whether this document of this message is already in the space (the page can say "saved"). */
  async isSaved(mailbox: MailboxRow, source: DocumentSource): Promise<boolean> {
    const key = this.sourceKey(mailbox, source);
    return (await this.#rows.list(mailbox.id)).some((row) => row.sourceKey === key);
  }

  /** Removes one document; false when this mailbox has none with this id. */
  async remove(mailbox: MailboxRow, id: number): Promise<boolean> {
    if (!Number.isSafeInteger(id) || id <= 0) return false;
    return this.#rows.delete(mailbox.id, id);
  }

  /** Removes every document of the mailbox (when its held content is destroyed); how many went. */
  async removeAll(mailbox: MailboxRow): Promise<number> {
    return this.#rows.deleteAll(mailbox.id);
  }
}

/** The documents of `list()` as groups, in kind order, empty kinds left out. */
export function groupByKind(documents: readonly SavedDocumentSummary[]): DocumentGroup[] {
  return DOCUMENT_KINDS.map((kind) => ({ kind, label: DOCUMENT_KIND_LABELS[kind], documents: documents.filter((d) => d.kind === kind) })).filter(
    (g) => g.documents.length > 0,
  );
}

const SPACE_TEXT = {
  empty: {
    fr: "Vous n'avez encore enregistré aucun document. Ouvrez un message contenant des documents et choisissez « Enregistrer dans mes documents ».",
    en: 'You have not saved any document yet. Open a message with documents and choose "Save to my documents".',
  },
  by: { fr: 'par', en: 'by' },
} as const;

export interface DocumentSpaceViewOptions {
  /** Where the page shows one document. */
  href: (doc: SavedDocumentSummary) => string;
  /** The page's own controls for one document (e.g. a delete form with its CSRF token). */
  actions?: (doc: SavedDocumentSummary) => Html | null;
}

/** The document space page's body: one section per kind, each document linked to its view. */
export function renderDocumentSpace(documents: readonly SavedDocumentSummary[], lang: Lang, options: DocumentSpaceViewOptions): Html {
  const groups = groupByKind(documents);
  if (groups.length === 0) return html`<p class="documents-empty">${SPACE_TEXT.empty[lang]}</p>`;
  return html`${groups.map(
    (g) =>
      html`<section class="documents-group"><h2>${kindLabel(g.kind, lang)}</h2><ul class="documents-list">${g.documents.map((d) => {
        const date = formatHl7Time(d.date, lang, false);
        const who = [d.author, d.organisation].filter((p): p is string => !!p).join(', ');
        const meta = [date, who ? `${SPACE_TEXT.by[lang]} ${who}` : null].filter((p): p is string => !!p).join(' · ');
        const actions = options.actions?.(d) ?? null;
        return html`<li class="documents-item"><a href="${options.href(d)}">${d.title}</a>${meta ? html` <span class="documents-meta">${meta}</span>` : ''}${
          actions ? html` <span class="documents-actions">${actions}</span>` : ''
        }</li>`;
      })}</ul></section>`,
  )}`;
}
