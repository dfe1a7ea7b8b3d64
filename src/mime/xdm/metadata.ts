import { attr, childElements, cleanText, firstChild, isElement, parseXml, type XmlElement, type XmlLimits } from '../cda/xml.js';
import { XdmFormatError } from './errors.js';

/**
 * The ebRIM 3.0 `SubmitObjectsRequest` of an XDM submission set (`IHE_XDM/SUBSETnn/METADATA.XML`, IHE ITI TF-3
 * §4.2): the submission set (RegistryPackage) and its document entries (ExtrinsicObjects) with the slots,
 * classifications and external identifiers messaging needs. Elements are matched by local name, whatever
 * their prefix: packages in the wild use several (and one published French sample leaves `ns3:` undeclared).
 */

/** Classification schemes and identification schemes of XDS metadata (ITI TF-3 §4.2.5). */
export const XDS = {
  documentEntryType: 'urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1',
  onDemandEntryType: 'urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248',
  submissionSetNode: 'urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd',
  author: 'urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d',
  classCode: 'urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a',
  confidentialityCode: 'urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f',
  eventCode: 'urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4',
  formatCode: 'urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d',
  healthcareFacilityTypeCode: 'urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1',
  practiceSettingCode: 'urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead',
  typeCode: 'urn:uuid:f0306f51-975f-434e-a61c-c59651d33983',
  documentPatientId: 'urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427',
  documentUniqueId: 'urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab',
  submissionAuthor: 'urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d',
  contentTypeCode: 'urn:uuid:aa543740-bdda-424e-8c96-df4873be8500',
  submissionPatientId: 'urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446',
  submissionSourceId: 'urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832',
  submissionUniqueId: 'urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8',
} as const;

export interface XdmCode {
  code: string;
  /** The `codingScheme` slot (an OID or a name). */
  scheme: string | null;
  display: string | null;
}

/** An HL7 v2 CX identifier as XDS writes it: `id^^^&assigningAuthorityOid&ISO`. */
export interface XdsIdentifier {
  id: string;
  assigningAuthority: string | null;
  raw: string;
}

export interface XdmAuthor {
  /** HL7 v2 XCN as written, e.g. `899700367909^DOC0036790^KIT^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS`. */
  person: string | null;
  institutions: string[];
  roles: string[];
  specialties: string[];
}

export interface XdmDocumentEntry {
  /** The ExtrinsicObject's `id` (local to the metadata). */
  id: string;
  mimeType: string | null;
  /** Path of the document relative to the submission set folder (`URI` slot). */
  uri: string | null;
  size: number | null;
  /** SHA-1, lower-case hex. */
  hash: string | null;
  title: string | null;
  description: string | null;
  classCode: XdmCode | null;
  typeCode: XdmCode | null;
  formatCode: XdmCode | null;
  confidentialityCodes: XdmCode[];
  healthcareFacilityTypeCode: XdmCode | null;
  practiceSettingCode: XdmCode | null;
  eventCodes: XdmCode[];
  patientId: XdsIdentifier | null;
  uniqueId: string | null;
  creationTime: string | null;
  languageCode: string | null;
  sourcePatientId: XdsIdentifier | null;
  /** `PID-5|NAME^Given^^^`, `PID-7|19790328`, ... as written. */
  sourcePatientInfo: string[];
  legalAuthenticator: string | null;
  authors: XdmAuthor[];
}

export interface XdmSubmissionSet {
  id: string;
  uniqueId: string | null;
  sourceId: string | null;
  patientId: XdsIdentifier | null;
  submissionTime: string | null;
  title: string | null;
  description: string | null;
  contentTypeCode: XdmCode | null;
  intendedRecipients: string[];
  authors: XdmAuthor[];
}

export interface XdmMetadata {
  submissionSet: XdmSubmissionSet | null;
  documents: XdmDocumentEntry[];
}

export function parseCx(value: string | null): XdsIdentifier | null {
  if (value === null || value.trim() === '') return null;
  const raw = value.trim();
  const [id = '', , , authority = ''] = raw.split('^');
  const oid = authority.split('&')[1]?.trim() || null;
  return { id: id.trim(), assigningAuthority: oid, raw };
}

function slotValues(el: XmlElement, name: string): string[] {
  const slot = childElements(el, 'Slot').find((s) => attr(s, 'name') === name);
  if (!slot) return [];
  return childElements(firstChild(slot, 'ValueList') ?? slot, 'Value')
    .map((v) => cleanText(v))
    .filter((v): v is string => v !== null);
}

function slot(el: XmlElement, name: string): string | null {
  return slotValues(el, name)[0] ?? null;
}

function localized(el: XmlElement | null): string | null {
  if (!el) return null;
  return attr(firstChild(el, 'LocalizedString'), 'value')?.trim() || null;
}

/** Classifications and external identifiers of each object: nested in it or at the list level, by reference. */
class Index {
  readonly classifications = new Map<string, XmlElement[]>();
  readonly identifiers = new Map<string, XmlElement[]>();

  constructor(list: XmlElement) {
    const add = (map: Map<string, XmlElement[]>, key: string | null, el: XmlElement) => {
      if (key === null) return;
      const group = map.get(key);
      if (group) group.push(el);
      else map.set(key, [el]);
    };
    for (const object of childElements(list)) {
      if (object.local === 'Classification') add(this.classifications, attr(object, 'classifiedObject'), object);
      if (object.local === 'ExternalIdentifier') add(this.identifiers, attr(object, 'registryObject'), object);
      const id = attr(object, 'id');
      for (const c of childElements(object, 'Classification')) add(this.classifications, attr(c, 'classifiedObject') ?? id, c);
      for (const e of childElements(object, 'ExternalIdentifier')) add(this.identifiers, attr(e, 'registryObject') ?? id, e);
    }
  }

  classified(id: string, scheme: string): XmlElement[] {
    return (this.classifications.get(id) ?? []).filter((c) => attr(c, 'classificationScheme') === scheme);
  }

  codes(id: string, scheme: string): XdmCode[] {
    return this.classified(id, scheme).flatMap((c) => {
      const code = attr(c, 'nodeRepresentation')?.trim();
      return code ? [{ code, scheme: slot(c, 'codingScheme'), display: localized(firstChild(c, 'Name')) }] : [];
    });
  }

  authors(id: string, scheme: string): XdmAuthor[] {
    return this.classified(id, scheme).map((c) => ({
      person: slot(c, 'authorPerson'),
      institutions: slotValues(c, 'authorInstitution'),
      roles: slotValues(c, 'authorRole'),
      specialties: slotValues(c, 'authorSpecialty'),
    }));
  }

  identifier(id: string, scheme: string): string | null {
    const found = (this.identifiers.get(id) ?? []).find((e) => attr(e, 'identificationScheme') === scheme);
    return attr(found, 'value')?.trim() || null;
  }

  isSubmissionSet(id: string): boolean {
    return (this.classifications.get(id) ?? []).some((c) => attr(c, 'classificationNode') === XDS.submissionSetNode);
  }
}

function parseSize(value: string | null, id: string): number | null {
  if (value === null) return null;
  if (!/^\d{1,15}$/.test(value)) throw new XdmFormatError(`document ${JSON.stringify(id)}: size slot ${JSON.stringify(value)} is not a number`);
  return Number(value);
}

function parseHash(value: string | null, id: string): string | null {
  if (value === null) return null;
  if (!/^[0-9A-Fa-f]{40}$/.test(value)) throw new XdmFormatError(`document ${JSON.stringify(id)}: hash slot is not a SHA-1 in hex`);
  return value.toLowerCase();
}

function readDocument(el: XmlElement, index: Index): XdmDocumentEntry {
  const id = attr(el, 'id')?.trim();
  if (!id) throw new XdmFormatError('an ExtrinsicObject has no id');
  const first = (scheme: string) => index.codes(id, scheme)[0] ?? null;
  return {
    id,
    mimeType: attr(el, 'mimeType')?.trim().toLowerCase() || null,
    uri: slot(el, 'URI'),
    size: parseSize(slot(el, 'size'), id),
    hash: parseHash(slot(el, 'hash'), id),
    title: localized(firstChild(el, 'Name')),
    description: localized(firstChild(el, 'Description')),
    classCode: first(XDS.classCode),
    typeCode: first(XDS.typeCode),
    formatCode: first(XDS.formatCode),
    confidentialityCodes: index.codes(id, XDS.confidentialityCode),
    healthcareFacilityTypeCode: first(XDS.healthcareFacilityTypeCode),
    practiceSettingCode: first(XDS.practiceSettingCode),
    eventCodes: index.codes(id, XDS.eventCode),
    patientId: parseCx(index.identifier(id, XDS.documentPatientId)),
    uniqueId: index.identifier(id, XDS.documentUniqueId),
    creationTime: slot(el, 'creationTime'),
    languageCode: slot(el, 'languageCode'),
    sourcePatientId: parseCx(slot(el, 'sourcePatientId')),
    sourcePatientInfo: slotValues(el, 'sourcePatientInfo'),
    legalAuthenticator: slot(el, 'legalAuthenticator'),
    authors: index.authors(id, XDS.author),
  };
}

function readSubmissionSet(el: XmlElement, index: Index): XdmSubmissionSet {
  const id = attr(el, 'id')?.trim() ?? '';
  return {
    id,
    uniqueId: index.identifier(id, XDS.submissionUniqueId),
    sourceId: index.identifier(id, XDS.submissionSourceId),
    patientId: parseCx(index.identifier(id, XDS.submissionPatientId)),
    submissionTime: slot(el, 'submissionTime'),
    title: localized(firstChild(el, 'Name')),
    description: localized(firstChild(el, 'Description')),
    contentTypeCode: index.codes(id, XDS.contentTypeCode)[0] ?? null,
    intendedRecipients: slotValues(el, 'intendedRecipient'),
    authors: index.authors(id, XDS.submissionAuthor),
  };
}

/** Reads METADATA.XML. Throws the XML reader's errors, or `XdmFormatError` when it is not a SubmitObjectsRequest. */
export function parseXdmMetadata(bytes: Buffer, xml: XmlLimits): XdmMetadata {
  const root = parseXml(bytes, xml);
  if (root.local !== 'SubmitObjectsRequest') throw new XdmFormatError(`METADATA.XML root is ${JSON.stringify(root.local)}, not SubmitObjectsRequest`);
  const list = firstChild(root, 'RegistryObjectList');
  if (!list) throw new XdmFormatError('METADATA.XML has no RegistryObjectList');
  const index = new Index(list);
  const objects = list.children.filter(isElement);
  const packages = objects.filter((o) => o.local === 'RegistryPackage');
  const submission = packages.find((p) => index.isSubmissionSet(attr(p, 'id') ?? '')) ?? packages[0] ?? null;
  const documents = objects
    .filter((o) => o.local === 'ExtrinsicObject')
    .filter((o) => {
      const type = attr(o, 'objectType');
      return type === null || type === XDS.documentEntryType || type === XDS.onDemandEntryType;
    })
    .map((o) => readDocument(o, index));
  const ids = new Set<string>();
  for (const d of documents) {
    if (ids.has(d.id)) throw new XdmFormatError(`two document entries share the id ${JSON.stringify(d.id)}`);
    ids.add(d.id);
  }
  return { submissionSet: submission ? readSubmissionSet(submission, index) : null, documents };
}
