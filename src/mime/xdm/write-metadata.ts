import { XMLBuilder } from 'fast-xml-parser';
import { XDS } from './metadata.js';

/**
 * Writes the ebRIM 3.0 `SubmitObjectsRequest` of one XDM submission set (ITI TF-3 §4.2): the submission set,
 * its document entries (with `URI`, `size` and SHA-1 `hash` slots) and the HasMember associations. Only the
 * values given are written; the builder (build.ts) fills them in from the CDA documents.
 */

const LCM = 'urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0';
const RIM = 'urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0';
const CLASSIFICATION_TYPE = 'urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification';
const EXTERNAL_IDENTIFIER_TYPE = 'urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier';
const APPROVED = 'urn:oasis:names:tc:ebxml-regrep:StatusType:Approved';
const HAS_MEMBER = 'urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember';

export interface CodeValue {
  code: string;
  scheme: string;
  display?: string | null;
}

export interface AuthorValue {
  /** HL7 v2 XCN, e.g. `801234567897^DAVID^Charles^^^M^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS`. */
  person?: string | null;
  /** HL7 v2 XON, e.g. `Hôpital^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^11750803447`. */
  institution?: string | null;
  role?: string | null;
  specialty?: string | null;
}

export interface DocumentEntryValue {
  id: string;
  mimeType: string;
  uri: string;
  size: number;
  hash: string;
  uniqueId: string;
  /** HL7 v2 CX, e.g. `279035121518989^^^&1.2.250.1.213.1.4.8&ISO^NH`. */
  patientId?: string | null;
  title?: string | null;
  creationTime?: string | null;
  languageCode?: string | null;
  sourcePatientInfo?: string[];
  author?: AuthorValue | null;
  classCode?: CodeValue | null;
  typeCode?: CodeValue | null;
  formatCode?: CodeValue | null;
  confidentialityCode?: CodeValue | null;
  healthcareFacilityTypeCode?: CodeValue | null;
  practiceSettingCode?: CodeValue | null;
}

export interface SubmissionSetValue {
  id: string;
  uniqueId: string;
  sourceId: string;
  submissionTime: string;
  patientId?: string | null;
  title?: string | null;
  author?: AuthorValue | null;
  contentTypeCode?: CodeValue | null;
  intendedRecipients?: string[];
}

type Node = Record<string, unknown>;

const slot = (name: string, values: readonly (string | null | undefined)[]): Node[] => {
  const kept = values.filter((v): v is string => typeof v === 'string' && v !== '');
  return kept.length === 0 ? [] : [{ '@_name': name, ValueList: { Value: kept } }];
};

const localized = (value: string | null | undefined): Node | undefined =>
  value ? { LocalizedString: { '@_value': value } } : undefined;

class Ids {
  private n = 0;
  next(prefix: string): string {
    return `${prefix}${String(++this.n).padStart(2, '0')}`;
  }
}

function classification(ids: Ids, scheme: string, object: string, code: CodeValue | null | undefined): Node[] {
  if (!code) return [];
  return [
    {
      '@_id': ids.next('cl'),
      '@_objectType': CLASSIFICATION_TYPE,
      '@_classificationScheme': scheme,
      '@_classifiedObject': object,
      '@_nodeRepresentation': code.code,
      Slot: slot('codingScheme', [code.scheme]),
      Name: localized(code.display ?? null),
    },
  ];
}

function authorClassification(ids: Ids, scheme: string, object: string, author: AuthorValue | null | undefined): Node[] {
  if (!author) return [];
  const slots = [
    ...slot('authorPerson', [author.person]),
    ...slot('authorInstitution', [author.institution]),
    ...slot('authorRole', [author.role]),
    ...slot('authorSpecialty', [author.specialty]),
  ];
  if (slots.length === 0) return [];
  return [
    {
      '@_id': ids.next('cl'),
      '@_objectType': CLASSIFICATION_TYPE,
      '@_classificationScheme': scheme,
      '@_classifiedObject': object,
      '@_nodeRepresentation': '',
      Slot: slots,
    },
  ];
}

function externalIdentifier(ids: Ids, scheme: string, object: string, value: string | null | undefined, name: string): Node[] {
  if (!value) return [];
  return [
    {
      '@_id': ids.next('ei'),
      '@_objectType': EXTERNAL_IDENTIFIER_TYPE,
      '@_registryObject': object,
      '@_identificationScheme': scheme,
      '@_value': value,
      Name: localized(name),
    },
  ];
}

function documentEntry(ids: Ids, doc: DocumentEntryValue): Node {
  return {
    '@_id': doc.id,
    '@_mimeType': doc.mimeType,
    '@_objectType': XDS.documentEntryType,
    '@_status': APPROVED,
    Slot: [
      ...slot('creationTime', [doc.creationTime]),
      ...slot('languageCode', [doc.languageCode]),
      ...slot('sourcePatientId', [doc.patientId]),
      ...slot('sourcePatientInfo', doc.sourcePatientInfo ?? []),
      ...slot('URI', [doc.uri]),
      ...slot('size', [String(doc.size)]),
      ...slot('hash', [doc.hash]),
    ],
    Name: localized(doc.title),
    Classification: [
      ...authorClassification(ids, XDS.author, doc.id, doc.author),
      ...classification(ids, XDS.classCode, doc.id, doc.classCode),
      ...classification(ids, XDS.confidentialityCode, doc.id, doc.confidentialityCode),
      ...classification(ids, XDS.formatCode, doc.id, doc.formatCode),
      ...classification(ids, XDS.healthcareFacilityTypeCode, doc.id, doc.healthcareFacilityTypeCode),
      ...classification(ids, XDS.practiceSettingCode, doc.id, doc.practiceSettingCode),
      ...classification(ids, XDS.typeCode, doc.id, doc.typeCode),
    ],
    ExternalIdentifier: [
      ...externalIdentifier(ids, XDS.documentPatientId, doc.id, doc.patientId, 'XDSDocumentEntry.patientId'),
      ...externalIdentifier(ids, XDS.documentUniqueId, doc.id, doc.uniqueId, 'XDSDocumentEntry.uniqueId'),
    ],
  };
}

function submissionSet(ids: Ids, set: SubmissionSetValue): Node {
  return {
    '@_id': set.id,
    '@_objectType': 'urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage',
    '@_status': APPROVED,
    Slot: [...slot('submissionTime', [set.submissionTime]), ...slot('intendedRecipient', set.intendedRecipients ?? [])],
    Name: localized(set.title),
    Classification: [
      ...authorClassification(ids, XDS.submissionAuthor, set.id, set.author),
      ...classification(ids, XDS.contentTypeCode, set.id, set.contentTypeCode),
    ],
    ExternalIdentifier: [
      ...externalIdentifier(ids, XDS.submissionUniqueId, set.id, set.uniqueId, 'XDSSubmissionSet.uniqueId'),
      ...externalIdentifier(ids, XDS.submissionSourceId, set.id, set.sourceId, 'XDSSubmissionSet.sourceId'),
      ...externalIdentifier(ids, XDS.submissionPatientId, set.id, set.patientId, 'XDSSubmissionSet.patientId'),
    ],
  };
}

/** METADATA.XML of one submission set, UTF-8. */
export function writeXdmMetadata(set: SubmissionSetValue, documents: readonly DocumentEntryValue[]): Buffer {
  const ids = new Ids();
  const tree = {
    '?xml': { '@_version': '1.0', '@_encoding': 'UTF-8' },
    'lcm:SubmitObjectsRequest': {
      '@_xmlns:lcm': LCM,
      '@_xmlns:rim': RIM,
      'rim:RegistryObjectList': {
        'rim:ExtrinsicObject': documents.map((d) => documentEntry(ids, d)),
        'rim:RegistryPackage': submissionSet(ids, set),
        'rim:Classification': {
          '@_id': ids.next('cl'),
          '@_objectType': CLASSIFICATION_TYPE,
          '@_classifiedObject': set.id,
          '@_classificationNode': XDS.submissionSetNode,
        },
        'rim:Association': documents.map((d) => ({
          '@_id': ids.next('as'),
          '@_associationType': HAS_MEMBER,
          '@_sourceObject': set.id,
          '@_targetObject': d.id,
          Slot: slot('SubmissionSetStatus', ['Original']),
        })),
      },
    },
  };
  const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', format: true, suppressEmptyNode: true });
  return Buffer.from(builder.build(prefixRim(tree)), 'utf8');
}

/** Puts the `rim:` prefix on every element below the list (the tree above is written without it for reading's sake). */
function prefixRim(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(prefixRim);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (value === undefined) continue;
    const name = key.startsWith('@_') || key.startsWith('?') || key.includes(':') ? key : `rim:${key}`;
    out[name] = prefixRim(value);
  }
  return out;
}
