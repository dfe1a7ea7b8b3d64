import { HL7_V3_NS, NotCdaError, readCda, type CdaAuthor, type CdaDocument, type CdaName, type CdaSection } from '../mime/cda/cda.js';
import type { NarrativeElement, NarrativeNode, NarrativeStyle } from '../mime/cda/narrative.js';
import { attr, DEFAULT_XML_LIMITS, firstChild, parseXml, textContent, XmlMalformedError, XmlUnsafeError, type XmlElement, type XmlLimits } from '../mime/cda/xml.js';
import { documentKind, kindLabel, type DocumentKind } from './document-kinds.js';
import { html, type Html } from './html.js';

/**
 * The CDA R2 viewer of the webmail: a document's header (patient, author, organisation, date, type) and its
 * narrative sections, as HTML built only with the `html` template. The CDA markup is never passed through:
 * `src/mime/cda/narrative.ts` reduces each `section/text` to a small tree of known tags (paragraph, list/item,
 * table and its parts, content, br, caption; `linkHtml` becomes its text, `renderMultiMedia` vanishes) and this
 * module maps each of those to its own element. Every text is escaped by the template; the only attributes
 * written are class names from a fixed table and validated `colspan` / `rowspan` numbers. The XML is read by
 * the safe reader (no DTD, bounded size and depth).
 *
 * CDA `styleCode`s Bold, Italics/Emphasis and Underline become `strong`, `em` and `u` elements as well as classes.
 * CSS classes used (the webmail's style sheet gives them their look, no inline style under the CSP):
 * `cda-document`, `cda-title`, `cda-header`, `cda-section`, `cda-caption`, `cda-notice`, `cda-error`, and the
 * CDA `styleCode`s as `cda-bold`, `cda-underline`, `cda-italics`, `cda-emphasis`, `cda-lrule`, `cda-rrule`,
 * `cda-toprule`, `cda-botrule`.
 */

export type Lang = 'fr' | 'en';

const TEXT = {
  patient: { fr: 'Patient', en: 'Patient' },
  born: { fr: 'né(e) le', en: 'born' },
  ins: { fr: 'INS', en: 'INS' },
  author: { fr: 'Auteur', en: 'Author' },
  authors: { fr: 'Auteurs', en: 'Authors' },
  organisation: { fr: 'Établissement', en: 'Organisation' },
  date: { fr: 'Date', en: 'Date' },
  type: { fr: 'Type de document', en: 'Document type' },
  untitled: { fr: 'Document de santé', en: 'Health document' },
  untitledSection: { fr: 'Section', en: 'Section' },
  male: { fr: 'homme', en: 'male' },
  female: { fr: 'femme', en: 'female' },
  empty: { fr: 'Ce document ne contient pas de texte à afficher.', en: 'This document has no text to show.' },
  embedded: {
    fr: 'Le contenu de ce document est un fichier joint (%s) qui ne peut pas être affiché ici.',
    en: 'The content of this document is an attached file (%s) that cannot be shown here.',
  },
  openEmbedded: { fr: 'Ouvrir le fichier', en: 'Open the file' },
  unreadable: {
    fr: "Ce document ne peut pas être affiché : ce n'est pas un document CDA lisible.",
    en: 'This document cannot be shown: it is not a readable CDA document.',
  },
  refused: {
    fr: 'Ce document ne peut pas être affiché : sa forme est refusée pour des raisons de sécurité (taille, imbrication ou déclaration de type de document).',
    en: 'This document cannot be shown: its form is refused for safety reasons (size, nesting or document type declaration).',
  },
} as const;

const STYLE_CLASSES: Readonly<Record<NarrativeStyle, string>> = {
  Bold: 'cda-bold',
  Underline: 'cda-underline',
  Italics: 'cda-italics',
  Emphasis: 'cda-emphasis',
  Lrule: 'cda-lrule',
  Rrule: 'cda-rrule',
  Toprule: 'cda-toprule',
  Botrule: 'cda-botrule',
};

/** Deepest section heading: sections nested further keep `h6`. */
const MAX_HEADING = 6;

export interface CdaViewOptions {
  /** Bounds of the XML reader; default that of `src/mime/cda/xml.ts`. */
  limits?: XmlLimits;
  /** For a level 1 document (non-XML body): where the webmail serves the embedded file, shown as a link. */
  embeddedHref?: string;
}

/** What the lists (the XDM package, the document space) show of a CDA document. */
export interface CdaSummary {
  title: string | null;
  code: string | null;
  codeSystem: string | null;
  /** The document code's display name, e.g. `CR d'examens biologiques`. */
  typeDisplay: string | null;
  kind: DocumentKind;
  /** HL7 TS as written, e.g. `20191203133000+0100`. */
  effectiveTime: string | null;
  patient: string | null;
  /** The first author: person (or software) name. */
  author: string | null;
  /** The custodian, else the first author's organisation. */
  organisation: string | null;
}

function t(key: keyof typeof TEXT, lang: Lang): string {
  return TEXT[key][lang];
}

/** `Given FAMILY`, the French way of showing a name; null when it has no part. */
export function formatName(name: CdaName | null | undefined): string | null {
  if (!name) return null;
  const given = name.usedGiven ?? name.firstGiven ?? name.givenNames[0] ?? null;
  const family = name.usedFamily ?? name.family;
  const parts = [given, family?.toUpperCase() ?? null].filter((p): p is string => !!p);
  return parts.length > 0 ? parts.join(' ') : null;
}

function authorName(author: CdaAuthor | undefined): string | null {
  if (!author) return null;
  return formatName(author.person) ?? author.device;
}

/**
 * An HL7 TS (`YYYYMMDD[HHMM[SS]][+ZZZZ]`) for people: `03/12/2019 à 13:30` in French, `2019-12-03 13:30` in
 * English, in the time of the document (the offset is not converted). The text as written when it is not a TS.
 */
export function formatHl7Time(ts: string | null, lang: Lang, withTime = true): string | null {
  if (ts === null) return null;
  const m = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2}))?/.exec(ts);
  if (!m) return ts;
  const [, y, mo, d, h, mi] = m;
  const date = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (date.getUTCFullYear() !== Number(y) || date.getUTCMonth() !== Number(mo) - 1 || date.getUTCDate() !== Number(d)) return ts;
  const validTime = h !== undefined && mi !== undefined && Number(h) < 24 && Number(mi) < 60;
  const time = withTime && validTime ? `${h}:${mi}` : null;
  if (lang === 'fr') return `${d}/${mo}/${y}${time ? ` à ${time}` : ''}`;
  return `${y}-${mo}-${d}${time ? ` ${time}` : ''}`;
}

export function summariseCda(doc: CdaDocument): CdaSummary {
  return {
    title: doc.title,
    code: doc.code?.code ?? null,
    codeSystem: doc.code?.codeSystem ?? null,
    typeDisplay: doc.code?.displayName ?? null,
    kind: documentKind(doc.code?.code, doc.code?.codeSystem),
    effectiveTime: doc.effectiveTime,
    patient: formatName(doc.patient?.name),
    author: authorName(doc.authors[0]),
    organisation: doc.custodian?.name ?? doc.authors.find((a) => a.organisation?.name)?.organisation?.name ?? null,
  };
}

function classAttr(styles: readonly NarrativeStyle[] | undefined, extra?: string): Html {
  const names = [...(extra ? [extra] : []), ...(styles ?? []).map((s) => STYLE_CLASSES[s])];
  return names.length > 0 ? html` class="${names.join(' ')}"` : html``;
}

function spanAttrs(el: NarrativeElement): Html {
  return html`${el.colspan !== undefined ? html` colspan="${el.colspan}"` : ''}${el.rowspan !== undefined ? html` rowspan="${el.rowspan}"` : ''}`;
}

/**
 * Bold, italics, underline and emphasis as elements (they read right without the style sheet, and to a screen
 * reader); the rules (`Lrule`...) need the style sheet, through the classes.
 */
function emphasise(styles: readonly NarrativeStyle[] | undefined, content: Html): Html {
  if (!styles) return content;
  let out = content;
  if (styles.includes('Underline')) out = html`<u>${out}</u>`;
  if (styles.includes('Italics') || styles.includes('Emphasis')) out = html`<em>${out}</em>`;
  if (styles.includes('Bold')) out = html`<strong>${out}</strong>`;
  return out;
}

type Context = 'flow' | 'list' | 'table' | 'rows' | 'row';

const TABLE_PARTS = new Set<NarrativeElement['tag']>(['thead', 'tbody', 'tfoot', 'tr', 'th', 'td']);

/** A narrative element as HTML; `context` is where it sits, so that table and list parts stay well nested. */
function renderElement(el: NarrativeElement, context: Context): Html {
  const inner = (ctx: Context): Html => {
    const content = html`${el.children.map((c) => renderNode(c, ctx))}`;
    return ctx === 'flow' ? emphasise(el.styles, content) : content;
  };
  // A part that is out of place is wrapped in what its container expects, so the browser never re-parents it.
  const cell = el.tag === 'td' || el.tag === 'th';
  if (context === 'flow' && TABLE_PARTS.has(el.tag)) return html`<table>${renderElement(el, 'table')}</table>`;
  if (context === 'flow' && el.tag === 'item') return html`<ul>${renderElement(el, 'list')}</ul>`;
  if ((context === 'table' || context === 'rows') && cell) return html`<tr>${renderElement(el, 'row')}</tr>`;
  if (context === 'table' && !['caption', 'thead', 'tbody', 'tfoot', 'tr'].includes(el.tag)) return html`<tr><td>${renderElement(el, 'flow')}</td></tr>`;
  if (context === 'rows' && el.tag !== 'tr') return html`<tr><td>${renderElement(el, 'flow')}</td></tr>`;
  if (context === 'row' && !cell) return html`<td>${renderElement(el, 'flow')}</td>`;
  if (context === 'list' && el.tag !== 'item' && el.tag !== 'caption') return html`<li>${renderElement(el, 'flow')}</li>`;
  const cls = classAttr(el.styles);
  switch (el.tag) {
    case 'paragraph':
      return html`<p${cls}>${inner('flow')}</p>`;
    case 'list': {
      const captions = el.children.filter((c): c is NarrativeElement => typeof c !== 'string' && c.tag === 'caption');
      const items = el.children.filter((c) => typeof c === 'string' || c.tag !== 'caption').map((c) => renderNode(c, 'list'));
      const list = el.ordered ? html`<ol${cls}>${items}</ol>` : html`<ul${cls}>${items}</ul>`;
      return html`${captions.map((c) => html`<p class="cda-caption">${c.children.map((n) => renderNode(n, 'flow'))}</p>`)}${list}`;
    }
    case 'item':
      return html`<li${cls}>${inner('flow')}</li>`;
    case 'table':
      return html`<table${cls}>${inner('table')}</table>`;
    case 'caption':
      return context === 'table' ? html`<caption${cls}>${inner('flow')}</caption>` : html`<span${classAttr(el.styles, 'cda-caption')}>${inner('flow')}</span>`;
    case 'thead':
      return html`<thead${cls}>${inner('rows')}</thead>`;
    case 'tbody':
      return html`<tbody${cls}>${inner('rows')}</tbody>`;
    case 'tfoot':
      return html`<tfoot${cls}>${inner('rows')}</tfoot>`;
    case 'tr':
      return html`<tr${cls}>${inner('row')}</tr>`;
    case 'th':
      return html`<th${cls}${spanAttrs(el)}>${inner('flow')}</th>`;
    case 'td':
      return html`<td${cls}${spanAttrs(el)}>${inner('flow')}</td>`;
    case 'content':
      return html`<span${cls}>${inner('flow')}</span>`;
    case 'br':
      return html`<br>`;
  }
}

function renderNode(node: NarrativeNode, context: Context): Html {
  if (typeof node !== 'string') return renderElement(node, context);
  if (context === 'flow') return html`${node}`;
  if (node.trim() === '') return html``;
  // Text straight inside a list or a table: give it the cell or item it lacks.
  if (context === 'list') return html`<li>${node}</li>`;
  if (context === 'row') return html`<td>${node}</td>`;
  return html`<tr><td>${node}</td></tr>`;
}

/** A narrative block (a section's `text`) as HTML. */
export function renderNarrative(nodes: readonly NarrativeNode[]): Html {
  return html`${nodes.map((n) => renderNode(n, 'flow'))}`;
}

function heading(level: number, text: string): Html {
  switch (Math.min(level, MAX_HEADING)) {
    case 2:
      return html`<h2>${text}</h2>`;
    case 3:
      return html`<h3>${text}</h3>`;
    case 4:
      return html`<h4>${text}</h4>`;
    case 5:
      return html`<h5>${text}</h5>`;
    default:
      return html`<h6>${text}</h6>`;
  }
}

function renderSection(section: CdaSection, level: number, lang: Lang): Html {
  const title = section.title ?? section.code?.displayName ?? t('untitledSection', lang);
  return html`<section class="cda-section">${heading(level, title)}${renderNarrative(section.text)}${section.sections.map((s) => renderSection(s, level + 1, lang))}</section>`;
}

function headerRow(label: string, value: Html | string | null): Html {
  return value === null || value === '' ? html`` : html`<dt>${label}</dt><dd>${value}</dd>`;
}

function patientLine(doc: CdaDocument, lang: Lang): Html | null {
  const p = doc.patient;
  if (!p) return null;
  const name = formatName(p.name);
  const born = formatHl7Time(p.birthTime, lang, false);
  const gender = p.gender === 'M' ? t('male', lang) : p.gender === 'F' ? t('female', lang) : null;
  const details = [born ? `${t('born', lang)} ${born}` : null, gender].filter((d): d is string => d !== null);
  if (!name && details.length === 0 && !p.ins) return null;
  return html`${name ?? ''}${details.length > 0 ? ` (${details.join(', ')})` : ''}${p.ins ? html`<br><span class="cda-ins">${t('ins', lang)} ${p.ins.matricule}</span>` : ''}`;
}

function authorLine(author: CdaAuthor): Html | null {
  const name = authorName(author);
  const role = author.role?.displayName ?? null;
  const org = author.organisation?.name ?? null;
  const parts = [name, role, org].filter((p): p is string => p !== null);
  return parts.length > 0 ? html`${parts.join(' — ')}` : null;
}

function renderHeader(doc: CdaDocument, lang: Lang): Html {
  const summary = summariseCda(doc);
  const authors = doc.authors.map(authorLine).filter((a): a is Html => a !== null);
  const type = summary.typeDisplay ?? summary.code;
  return html`<dl class="cda-header">${headerRow(t('patient', lang), patientLine(doc, lang))}${headerRow(
    t(authors.length > 1 ? 'authors' : 'author', lang),
    authors.length > 0 ? html`${authors.map((a, i) => (i === 0 ? a : html`<br>${a}`))}` : null,
  )}${headerRow(t('organisation', lang), doc.custodian?.name ?? null)}${headerRow(t('date', lang), formatHl7Time(doc.effectiveTime, lang))}${headerRow(
    t('type', lang),
    type === null ? null : html`${type} <span class="cda-kind">(${kindLabel(summary.kind, lang)})</span>`,
  )}</dl>`;
}

function renderBody(doc: CdaDocument, lang: Lang, options: CdaViewOptions): Html {
  const body = doc.body;
  if (body.kind === 'structured' && body.sections.length > 0) return html`${body.sections.map((s) => renderSection(s, 2, lang))}`;
  if (body.kind === 'non-xml') {
    const what = body.mediaType ?? '?';
    const link = options.embeddedHref ? html` <a href="${options.embeddedHref}">${t('openEmbedded', lang)}</a>` : '';
    return html`<p class="cda-notice">${t('embedded', lang).replace('%s', what)}${link}</p>`;
  }
  return html`<p class="cda-notice">${t('empty', lang)}</p>`;
}

/** A parsed CDA document as HTML. */
export function renderCda(doc: CdaDocument, lang: Lang, options: CdaViewOptions = {}): Html {
  const title = doc.title ?? doc.code?.displayName ?? t('untitled', lang);
  return html`<article class="cda-document"><h1 class="cda-title">${title}</h1>${renderHeader(doc, lang)}${renderBody(doc, lang, options)}</article>`;
}

/** Why a document cannot be shown, in the reader's language. */
export function renderCdaError(err: unknown, lang: Lang): Html {
  const key = err instanceof XmlUnsafeError ? 'refused' : 'unreadable';
  return html`<div class="cda-error" role="alert">${t(key, lang)}</div>`;
}

/** Whether an error is one a hostile or broken document causes (shown to the reader), not a bug. */
export function isCdaReadError(err: unknown): boolean {
  return err instanceof XmlUnsafeError || err instanceof XmlMalformedError || err instanceof NotCdaError;
}

/**
 * A CDA R2 document's bytes as HTML: header and narrative sections, or, when the bytes are not a CDA document
 * that can be read safely, a notice saying so (never the content).
 */
export function renderCdaDocument(xml: Buffer, lang: Lang, options: CdaViewOptions = {}): Html {
  try {
    return renderCda(readCda(parseXml(xml, options.limits ?? DEFAULT_XML_LIMITS)), lang, options);
  } catch (err) {
    if (isCdaReadError(err)) return renderCdaError(err, lang);
    throw err;
  }
}

export interface EmbeddedFile {
  mediaType: string;
  content: Buffer;
}

/**
 * The file a level 1 CDA document carries in its `nonXMLBody` (usually a PDF, base64), for the webmail to
 * serve as a download; null when the body is not an inline base64 payload. Throws the XML reader's errors.
 */
export function cdaEmbeddedFile(xml: Buffer, limits: XmlLimits = DEFAULT_XML_LIMITS): EmbeddedFile | null {
  const root = parseXml(xml, limits);
  if (root.local !== 'ClinicalDocument' || (root.ns !== HL7_V3_NS && root.ns !== null)) throw new NotCdaError(root.name);
  const body: XmlElement | null = firstChild(firstChild(root, 'component', root.ns), 'nonXMLBody', root.ns);
  const text = firstChild(body, 'text', root.ns);
  // A payload given by reference (a URL) is never fetched.
  if (!text || attr(text, 'representation') !== 'B64' || firstChild(text, 'reference', root.ns)) return null;
  const payload = textContent(text).replace(/\s+/g, '');
  if (payload === '' || !/^[A-Za-z0-9+/]*={0,2}$/.test(payload)) return null;
  const mediaType = attr(text, 'mediaType')?.trim().toLowerCase() || 'application/octet-stream';
  return { mediaType, content: Buffer.from(payload, 'base64') };
}
