/**
 * The kind of a health document as a patient's document space sorts it, from the CDA header `code` (the LOINC
 * document type, or a French CI-SIS code of the "TRE_A05 / types de documents complémentaires" system):
 * lab results, reports, imaging, prescriptions, and everything else.
 *
 * The table names the codes of the CI-SIS documents we receive (the ANS examples in test/fixtures/cda/fr:
 * 11502-2 CR-BIO, 96173-0 TROD, 18748-4 CR-IMG, 11490-0 LDL-SES, SYNTH VSM) and their close relatives; a code
 * not in it is `other`, never a guess. A code is matched only in its own code system (a LOINC code written
 * with another system's OID is not a LOINC code); a code without a system is read as LOINC when it has the
 * LOINC form (`digits-digit`), as a French code otherwise; the scheme name `LOINC` (XDS metadata) counts as LOINC.
 */

export const DOCUMENT_KINDS = ['lab', 'report', 'imaging', 'prescription', 'other'] as const;
export type DocumentKind = (typeof DOCUMENT_KINDS)[number];

export interface Label {
  fr: string;
  en: string;
}

/** Headings of the document space, per kind: texts patients read. */
export const DOCUMENT_KIND_LABELS: Readonly<Record<DocumentKind, Label>> = {
  lab: { fr: "Résultats d'analyses", en: 'Lab results' },
  report: { fr: 'Comptes rendus', en: 'Reports' },
  imaging: { fr: 'Imagerie', en: 'Imaging' },
  prescription: { fr: 'Ordonnances', en: 'Prescriptions' },
  other: { fr: 'Autres documents', en: 'Other documents' },
};

export const LOINC_OID = '2.16.840.1.113883.6.1';
/** ANS terminology of French document types that have no LOINC code (SYNTH, PRESC-BIO, ...). */
export const FRENCH_DOCUMENT_TYPES_OID = '1.2.250.1.213.1.1.4.12';

const LOINC: Readonly<Record<string, DocumentKind>> = {
  // Laboratory
  '11502-2': 'lab', // Laboratory report (CR d'examens biologiques, CI-SIS CR-BIO)
  '96173-0': 'lab', // Rapid diagnostic test report (CI-SIS BIO-TROD)
  '26436-6': 'lab', // Laboratory studies
  '18719-5': 'lab', // Chemistry studies
  '18725-2': 'lab', // Microbiology studies
  '11526-1': 'lab', // Pathology study (CR d'anatomie et de cytologie pathologiques)
  // Imaging
  '18748-4': 'imaging', // Diagnostic imaging study (CR d'imagerie médicale, CI-SIS CR-IMG)
  '18747-6': 'imaging', // CT study
  '18755-9': 'imaging', // MRI study
  '18760-9': 'imaging', // Ultrasound study
  '18726-0': 'imaging', // Radiology studies
  '18782-3': 'imaging', // Radiology study observation
  // Prescriptions
  '57833-6': 'prescription', // Prescription for medication
  '57832-8': 'prescription', // Prescription for diagnostic or specialist care
  '57828-6': 'prescription', // Prescription list
  // Reports
  '11490-0': 'report', // Physician discharge summary (lettre de liaison à la sortie, CI-SIS LDL-SES)
  '18842-5': 'report', // Discharge summary
  '34133-9': 'report', // Summarization of episode note
  '34112-3': 'report', // Inpatient note (CR d'hospitalisation)
  '11488-4': 'report', // Consultation note
  '11506-3': 'report', // Progress note
  '28570-0': 'report', // Procedure note
  '34874-8': 'report', // Surgical operation note
  '11504-8': 'report', // Surgical operation note (CR opératoire)
  '57133-1': 'report', // Referral note
  '15508-5': 'report', // Labor and delivery records
  '60591-5': 'report', // Patient summary
};

const FRENCH: Readonly<Record<string, DocumentKind>> = {
  SYNTH: 'report', // Synthèse médicale (CI-SIS VSM)
  'PRESC-BIO': 'prescription',
  'PRESC-KINE': 'prescription',
  'PRESC-INF': 'prescription',
  'PRESC-PEDI': 'prescription',
  'PRESC-ORTHOPHO': 'prescription',
  'PRESC-ORTHOPTIE': 'prescription',
};

const LOINC_FORM = /^\d{1,7}-\d$/;

function lookup(table: Readonly<Record<string, DocumentKind>>, code: string): DocumentKind | null {
  return Object.prototype.hasOwnProperty.call(table, code) ? table[code]! : null;
}

/** The kind of a document from its CDA header `code` and `codeSystem`; `other` when unknown or missing. */
export function documentKind(code: string | null | undefined, codeSystem?: string | null): DocumentKind {
  const c = code?.trim();
  if (!c) return 'other';
  const system = codeSystem?.trim().replace(/^urn:oid:/i, '') || null;
  // XDS metadata often names the scheme (`LOINC`) rather than giving its OID.
  const loinc = system === LOINC_OID || system?.toUpperCase() === 'LOINC';
  if (loinc || (system === null && LOINC_FORM.test(c))) return lookup(LOINC, c) ?? 'other';
  if (system === FRENCH_DOCUMENT_TYPES_OID || system === null) return lookup(FRENCH, c.toUpperCase()) ?? 'other';
  return 'other';
}

export function isDocumentKind(value: unknown): value is DocumentKind {
  return typeof value === 'string' && (DOCUMENT_KINDS as readonly string[]).includes(value);
}

export function kindLabel(kind: DocumentKind, lang: 'fr' | 'en'): string {
  return DOCUMENT_KIND_LABELS[kind][lang];
}
