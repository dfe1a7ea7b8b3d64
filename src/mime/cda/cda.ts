import { DEFAULT_INS_OPTIONS, toIns, type Ins, type InsOptions } from './ins.js';
import { narrativeOf, type NarrativeNode } from './narrative.js';
import { attr, childElements, cleanText, DEFAULT_XML_LIMITS, descend, firstChild, parseXml, type XmlElement, type XmlLimits } from './xml.js';

/**
 * The header of an HL7 CDA R2 document (what messaging needs: document code, title, date, patient and INS,
 * authors, custodian) and its body as narrative sections (CDA R2 §4.3). Clinical entries are not read.
 * French documents follow the CI-SIS "Structuration minimale" (birth name and first birth forename carry
 * `qualifier="BR"`, used names `qualifier="CL"`); US C-CDA documents have unqualified names. Both are read.
 */

export const HL7_V3_NS = 'urn:hl7-org:v3';

export interface CdaCode {
  code: string | null;
  codeSystem: string | null;
  codeSystemName: string | null;
  displayName: string | null;
}

export interface CdaIdentifier {
  root: string | null;
  extension: string | null;
}

export interface CdaName {
  prefix: string | null;
  /** Birth name (`family qualifier="BR"`), else the first family name. */
  family: string | null;
  /** Given names without qualifier, in order (French documents: all birth forenames in one string). */
  givenNames: string[];
  /** First birth forename (`given qualifier="BR"`), else the first given name. */
  firstGiven: string | null;
  /** Used name and forename (`qualifier="CL"`), when given. */
  usedFamily: string | null;
  usedGiven: string | null;
  suffix: string | null;
}

export interface CdaPatient {
  ids: CdaIdentifier[];
  /** The first identifier that is a valid INS (OID of an INS kind, matricule with a correct key). */
  ins: Ins | null;
  name: CdaName | null;
  /** HL7 TS as written, e.g. `19790328`. */
  birthTime: string | null;
  /** `administrativeGenderCode/@code`: `M`, `F`, `UN`... */
  gender: string | null;
  /**
   * A qualified INS: the INS with the identity traits that must travel with it (birth name, first birth
   * forename, birth date, sex). Under the CI-SIS, a document carries the INS only for a qualified identity.
   */
  insQualified: boolean;
}

export interface CdaOrganisation {
  ids: CdaIdentifier[];
  name: string | null;
}

export interface CdaAuthor {
  time: string | null;
  ids: CdaIdentifier[];
  /** Profession or speciality (`assignedAuthor/code`). */
  role: CdaCode | null;
  person: CdaName | null;
  /** For software authors (`assignedAuthoringDevice`): the software name. */
  device: string | null;
  organisation: CdaOrganisation | null;
}

export interface CdaSection {
  title: string | null;
  code: CdaCode | null;
  text: NarrativeNode[];
  sections: CdaSection[];
}

export type CdaBody =
  | { kind: 'structured'; sections: CdaSection[] }
  /** Level 1 document: one non-XML payload (often a base64 PDF); only its description is kept here. */
  | { kind: 'non-xml'; mediaType: string | null; representation: string | null; reference: string | null }
  | { kind: 'none' };

export interface CdaDocument {
  id: CdaIdentifier | null;
  code: CdaCode | null;
  title: string | null;
  effectiveTime: string | null;
  confidentiality: CdaCode | null;
  languageCode: string | null;
  patient: CdaPatient | null;
  authors: CdaAuthor[];
  custodian: CdaOrganisation | null;
  body: CdaBody;
}

/** The document is XML but not a CDA R2 `ClinicalDocument`. */
export class NotCdaError extends Error {
  constructor(readonly rootName: string) {
    super(`not a CDA document (root element ${JSON.stringify(rootName)})`);
    this.name = 'NotCdaError';
  }
}

export interface CdaOptions extends InsOptions {
  xml: XmlLimits;
  /** Read the body's sections (false: header only, `body` is `{ kind: 'none' }`). */
  readBody: boolean;
}

export const DEFAULT_CDA_OPTIONS: CdaOptions = { ...DEFAULT_INS_OPTIONS, xml: DEFAULT_XML_LIMITS, readBody: true };

/** Reads every CDA element in the document's namespace only (extensions such as `sdtc:` are other namespaces). */
class Reader {
  constructor(readonly ns: string | null) {}

  child(el: XmlElement | null, local: string): XmlElement | null {
    return firstChild(el, local, this.ns);
  }

  children(el: XmlElement | null, local: string): XmlElement[] {
    return el ? childElements(el, local, this.ns) : [];
  }

  path(el: XmlElement | null, ...locals: string[]): XmlElement | null {
    return descend(el, locals, this.ns);
  }

  code(el: XmlElement | null): CdaCode | null {
    if (!el) return null;
    const code: CdaCode = {
      code: clean(attr(el, 'code')),
      codeSystem: clean(attr(el, 'codeSystem')),
      codeSystemName: clean(attr(el, 'codeSystemName')),
      displayName: clean(attr(el, 'displayName')),
    };
    return Object.values(code).some((v) => v !== null) ? code : null;
  }

  ids(el: XmlElement | null): CdaIdentifier[] {
    return this.children(el, 'id').map((id) => ({ root: clean(attr(id, 'root')), extension: clean(attr(id, 'extension')) }));
  }

  name(el: XmlElement | null): CdaName | null {
    if (!el) return null;
    const parts = (local: string) =>
      this.children(el, local).map((p) => ({ text: cleanText(p), qualifiers: (attr(p, 'qualifier') ?? '').split(/\s+/) }));
    const families = parts('family');
    const givens = parts('given');
    const qualified = (list: typeof families, q: string) => list.find((p) => p.qualifiers.includes(q))?.text ?? null;
    const unqualified = (list: typeof families) => list.filter((p) => p.qualifiers.every((q) => q === '')).map((p) => p.text);
    const givenNames = unqualified(givens).filter((g): g is string => g !== null);
    const name: CdaName = {
      prefix: cleanText(this.child(el, 'prefix')),
      family: qualified(families, 'BR') ?? unqualified(families)[0] ?? families[0]?.text ?? null,
      givenNames,
      firstGiven: qualified(givens, 'BR') ?? givenNames[0] ?? givens[0]?.text ?? null,
      usedFamily: qualified(families, 'CL'),
      usedGiven: qualified(givens, 'CL'),
      suffix: cleanText(this.child(el, 'suffix')),
    };
    // A name element with only text (no parts) is allowed by the data type.
    if (families.length === 0 && givens.length === 0) name.family = cleanText(el);
    return name;
  }

  organisation(el: XmlElement | null): CdaOrganisation | null {
    if (!el) return null;
    return { ids: this.ids(el), name: cleanText(this.child(el, 'name')) };
  }
}

function clean(value: string | null): string | null {
  const v = value?.trim();
  return v ? v : null;
}

function readPatient(r: Reader, root: XmlElement, options: InsOptions): CdaPatient | null {
  const role = r.path(root, 'recordTarget', 'patientRole');
  if (!role) return null;
  const ids = r.ids(role);
  const patient = r.child(role, 'patient');
  const name = r.name(r.child(patient, 'name'));
  const birthTime = clean(attr(r.child(patient, 'birthTime'), 'value'));
  const gender = clean(attr(r.child(patient, 'administrativeGenderCode'), 'code'));
  let ins: Ins | null = null;
  for (const id of ids) {
    ins = toIns(id.root, id.extension, options);
    if (ins) break;
  }
  const insQualified = ins !== null && !!name?.family && !!name.firstGiven && birthTime !== null && gender !== null;
  return { ids, ins, name, birthTime, gender, insQualified };
}

function readAuthor(r: Reader, author: XmlElement): CdaAuthor {
  const assigned = r.child(author, 'assignedAuthor');
  const device = r.child(assigned, 'assignedAuthoringDevice');
  return {
    time: clean(attr(r.child(author, 'time'), 'value')),
    ids: r.ids(assigned),
    role: r.code(r.child(assigned, 'code')),
    person: r.name(r.path(assigned, 'assignedPerson', 'name')),
    device: device ? cleanText(r.child(device, 'softwareName')) ?? cleanText(r.child(device, 'manufacturerModelName')) : null,
    organisation: r.organisation(r.child(assigned, 'representedOrganization')),
  };
}

function readSection(r: Reader, section: XmlElement): CdaSection {
  return {
    title: cleanText(r.child(section, 'title')),
    code: r.code(r.child(section, 'code')),
    text: narrativeOf(r.child(section, 'text')),
    sections: r.children(section, 'component').flatMap((c) => r.children(c, 'section').map((s) => readSection(r, s))),
  };
}

function readBody(r: Reader, root: XmlElement): CdaBody {
  const component = r.child(root, 'component');
  const structured = r.child(component, 'structuredBody');
  if (structured) {
    return { kind: 'structured', sections: r.children(structured, 'component').flatMap((c) => r.children(c, 'section').map((s) => readSection(r, s))) };
  }
  const nonXml = r.child(component, 'nonXMLBody');
  if (nonXml) {
    const text = r.child(nonXml, 'text');
    return {
      kind: 'non-xml',
      mediaType: clean(attr(text, 'mediaType')),
      representation: clean(attr(text, 'representation')),
      reference: clean(attr(r.child(text, 'reference'), 'value')),
    };
  }
  return { kind: 'none' };
}

/** Reads a parsed `ClinicalDocument`. */
export function readCda(root: XmlElement, options: InsOptions & { readBody?: boolean } = DEFAULT_INS_OPTIONS): CdaDocument {
  if (root.local !== 'ClinicalDocument' || (root.ns !== HL7_V3_NS && root.ns !== null)) throw new NotCdaError(root.name);
  const r = new Reader(root.ns);
  const id = r.ids(root)[0] ?? null;
  const custodian = r.path(root, 'custodian', 'assignedCustodian', 'representedCustodianOrganization');
  return {
    id,
    code: r.code(r.child(root, 'code')),
    title: cleanText(r.child(root, 'title')),
    effectiveTime: clean(attr(r.child(root, 'effectiveTime'), 'value')),
    confidentiality: r.code(r.child(root, 'confidentialityCode')),
    languageCode: clean(attr(r.child(root, 'languageCode'), 'code')),
    patient: readPatient(r, root, options),
    authors: r.children(root, 'author').map((a) => readAuthor(r, a)),
    custodian: r.organisation(custodian),
    body: options.readBody === false ? { kind: 'none' } : readBody(r, root),
  };
}

/**
 * Parses CDA R2 bytes with the safe XML reader. Throws `XmlUnsafeError` / `XmlMalformedError` from the reader,
 * `NotCdaError` when the root is not a `ClinicalDocument`.
 */
export function parseCda(bytes: Buffer | string, options: Partial<CdaOptions> = {}): CdaDocument {
  const opts = { ...DEFAULT_CDA_OPTIONS, ...options };
  return readCda(parseXml(bytes, opts.xml), opts);
}

/** Whether the bytes look like a CDA document, without parsing them (for picking documents out of a package). */
export function looksLikeCda(bytes: Buffer): boolean {
  const head = bytes.toString('latin1', 0, Math.min(bytes.length, 65536));
  return /<(?:[A-Za-z_][\w.-]*:)?ClinicalDocument[\s>/]/.test(head);
}

/** `YYYYMMDD...` (HL7 TS) as `YYYY-MM-DD`, or null when it does not start with a full date. */
export function hl7Date(ts: string | null): string | null {
  const m = ts ? /^(\d{4})(\d{2})(\d{2})/.exec(ts) : null;
  return m ? `${m[1]}-${m[2]}-${m[3]}` : null;
}
