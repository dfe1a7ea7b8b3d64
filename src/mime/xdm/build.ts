import { createHash, randomUUID } from 'node:crypto';
import { zipSync, type Zippable } from 'fflate';
import { looksLikeCda, parseCda, type CdaAuthor, type CdaCode, type CdaDocument } from '../cda/cda.js';
import { writeXdmMetadata, type AuthorValue, type CodeValue, type DocumentEntryValue } from './write-metadata.js';

/**
 * Builds an IHE XDM zip (ITI TF-2b §3.32.4.1): `README.TXT`, `INDEX.HTM` and `IHE_XDM/SUBSET01/` with
 * `METADATA.XML` and the documents, whose sizes and SHA-1 hashes go into the metadata. Metadata not given is
 * taken from each CDA document: title, document code (as typeCode), patient INS, author, date, language,
 * confidentiality, patient traits.
 */

export interface XdmBuildDocument {
  content: Buffer;
  /** Name in `IHE_XDM/SUBSET01/`; default `DOC0001.XML`, `DOC0002.XML`... */
  fileName?: string;
  /** Default `text/xml`. */
  mimeType?: string;
  title?: string;
  classCode?: CodeValue;
  typeCode?: CodeValue;
  formatCode?: CodeValue;
  confidentialityCode?: CodeValue;
  healthcareFacilityTypeCode?: CodeValue;
  practiceSettingCode?: CodeValue;
  /** The patient, e.g. the INS: `{ id: matricule, oid: '1.2.250.1.213.1.4.8' }`. */
  patient?: { id: string; oid: string };
  author?: AuthorValue;
  /** XDS uniqueId (an OID, or `root^extension`); default from the CDA `id`, else a `2.25.` UUID OID. */
  uniqueId?: string;
  /** XDS DTM (UTC), e.g. `20240116151112`. */
  creationTime?: string;
  languageCode?: string;
}

export interface XdmBuildInput {
  documents: XdmBuildDocument[];
  submission?: {
    uniqueId?: string;
    /** OID of the sending system; default a `2.25.` UUID OID. */
    sourceId?: string;
    title?: string;
    author?: AuthorValue;
    contentTypeCode?: CodeValue;
    /** HL7 v2 XCN/XON with the recipient's address, e.g. `|dr.martin@hopital.mssante.fr^^^^^^^^&...`. */
    intendedRecipients?: string[];
  };
  /** Who made the package, written in README.TXT. */
  producer?: string;
  /** Submission time and zip timestamps; default now. */
  now?: Date;
}

/** IHE's format code for documents whose MIME type says everything (ITI TF-3 §5.1.1). */
export const MIME_TYPE_SUFFICIENT: CodeValue = { code: 'urn:ihe:iti:xds:2017:mimeTypeSufficient', scheme: '1.3.6.1.4.1.19376.1.2.3', display: 'mimeType Sufficient' };

const SUBSET = 'IHE_XDM/SUBSET01';

/** An OID from a random UUID (ITU-T X.667: `2.25.` + the UUID as one integer). */
export function uuidOid(uuid: string = randomUUID()): string {
  return `2.25.${BigInt(`0x${uuid.replace(/-/g, '')}`).toString()}`;
}

/** XDS DTM in UTC, to the second. */
export function xdsTime(date: Date): string {
  return date.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/** An HL7 TS with a time zone (`20191203133000+0100`) in UTC to the same precision; other values unchanged. */
export function hl7ToUtc(ts: string): string {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})?(\d{2})?(?:\.\d+)?([+-])(\d{2})(\d{2})$/.exec(ts);
  if (!m) return ts.replace(/[+-]\d{4}$/, '').replace(/\.\d+$/, '');
  const [, y, mo, d, h, mi = '00', s = '00', sign, oh, om] = m;
  const offset = (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om));
  const utc = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) - offset * 60_000);
  return xdsTime(utc).slice(0, 8 + 2 + (m[5] ? 2 : 0) + (m[6] ? 2 : 0));
}

function cx(id: string, oid: string): string {
  return `${id}^^^&${oid}&ISO^NH`;
}

function codeOf(code: CdaCode | null): CodeValue | undefined {
  return code?.code && code.codeSystem ? { code: code.code, scheme: code.codeSystem, display: code.displayName } : undefined;
}

const RPPS_OID = '1.2.250.1.71.4.2.1';
const STRUCTURE_OID = '1.2.250.1.71.4.2.2';

/** HL7 v2 components joined with `^`, trailing empty ones dropped. */
function hl7Components(components: readonly (string | null | undefined)[]): string {
  return components.map((c) => c ?? '').join('^').replace(/\^+$/, '');
}

/**
 * The first CDA author as XDS author slots: XCN person and XON institution, with the French identifier type
 * codes (`IDNPS`, `IDNST`) when the ids are national practitioner and structure identifiers.
 */
function authorOf(author: CdaAuthor | undefined): AuthorValue | undefined {
  if (!author) return undefined;
  const id = author.ids[0];
  const person = author.person;
  const org = author.organisation;
  const orgId = org?.ids[0];
  const french = id?.root === RPPS_OID;
  return {
    person:
      person || id
        ? hl7Components([id?.extension, person?.family, person?.firstGiven, '', '', person?.prefix, '', '', id?.root ? `&${id.root}&ISO` : '', french ? 'D' : '', '', '', french ? 'IDNPS' : ''])
        : null,
    institution: org?.name
      ? hl7Components([org.name, '', '', '', '', orgId?.root ? `&${orgId.root}&ISO` : '', orgId?.root === STRUCTURE_OID ? 'IDNST' : '', '', '', orgId?.extension])
      : null,
    role: author.role?.displayName ?? null,
  };
}

function patientInfo(cda: CdaDocument | null): string[] {
  const p = cda?.patient;
  if (!p) return [];
  const info: string[] = [];
  if (p.ins) info.push(`PID-3|${cx(p.ins.matricule, p.ins.oid)}`);
  if (p.name?.family) info.push(`PID-5|${p.name.family}^${p.name.firstGiven ?? ''}^^^^^L`);
  if (p.birthTime) info.push(`PID-7|${p.birthTime.slice(0, 8)}`);
  if (p.gender) info.push(`PID-8|${p.gender}`);
  return info;
}

function tryCda(content: Buffer): CdaDocument | null {
  if (!looksLikeCda(content)) return null;
  try {
    return parseCda(content);
  } catch {
    return null;
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function indexHtm(entries: readonly DocumentEntryValue[]): string {
  const items = entries
    .map((e) => `<li><a href="${SUBSET}/${escapeHtml(e.uri)}">${SUBSET}/${escapeHtml(e.uri)}</a>${e.title ? ` - ${escapeHtml(e.title)}` : ''}</li>`)
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<html xmlns="http://www.w3.org/1999/xhtml">
<head><meta http-equiv="Content-Type" content="text/html; charset=UTF-8"/><title>IHE XDM</title></head>
<body>
<h1>IHE XDM</h1>
<ul>
<li><a href="README.TXT">README.TXT</a></li>
<li><a href="${SUBSET}/METADATA.XML">${SUBSET}/METADATA.XML</a>
<ul>
${items}
</ul>
</li>
</ul>
</body>
</html>
`;
}

function readmeTxt(producer: string, entries: readonly DocumentEntryValue[]): string {
  return [
    'IHE XDM package (IHE ITI TF-2b, Distribute Document Set on Media).',
    `Produced by: ${producer}`,
    '',
    'Contents:',
    'README.TXT               this file',
    'INDEX.HTM                links to the content',
    `${SUBSET}/METADATA.XML  XDS metadata of the submission set`,
    ...entries.map((e) => `${SUBSET}/${e.uri}`),
    '',
  ].join('\r\n');
}

/** Builds the zip. Throws when a file name is unsafe or repeated. */
export function buildXdm(input: XdmBuildInput): Buffer {
  if (input.documents.length === 0) throw new Error('an XDM package needs at least one document');
  const now = input.now ?? new Date();
  const files: Zippable = {};
  const entries: DocumentEntryValue[] = [];
  let patientId: string | null = null;
  input.documents.forEach((doc, i) => {
    const uri = doc.fileName ?? `DOC${String(i + 1).padStart(4, '0')}.XML`;
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(uri)) throw new Error(`unsafe XDM document file name ${JSON.stringify(uri)}`);
    if (entries.some((e) => e.uri.toLowerCase() === uri.toLowerCase()) || uri.toLowerCase() === 'metadata.xml') {
      throw new Error(`XDM document file name ${JSON.stringify(uri)} is used twice`);
    }
    const cda = tryCda(doc.content);
    const ins = cda?.patient?.ins;
    const patient = doc.patient ? cx(doc.patient.id, doc.patient.oid) : ins ? cx(ins.matricule, ins.oid) : null;
    patientId ??= patient;
    const cdaId = cda?.id?.root ? (cda.id.extension ? `${cda.id.root}^${cda.id.extension}` : cda.id.root) : null;
    entries.push({
      id: `Document${String(i + 1).padStart(2, '0')}`,
      mimeType: doc.mimeType ?? 'text/xml',
      uri,
      size: doc.content.length,
      hash: createHash('sha1').update(doc.content).digest('hex'),
      uniqueId: doc.uniqueId ?? cdaId ?? uuidOid(),
      patientId: patient,
      title: doc.title ?? cda?.title ?? null,
      creationTime: doc.creationTime ?? (cda?.effectiveTime ? hl7ToUtc(cda.effectiveTime) : null),
      languageCode: doc.languageCode ?? cda?.languageCode ?? null,
      sourcePatientInfo: patientInfo(cda),
      author: doc.author ?? authorOf(cda?.authors[0]) ?? null,
      classCode: doc.classCode ?? null,
      typeCode: doc.typeCode ?? codeOf(cda?.code ?? null) ?? null,
      formatCode: doc.formatCode ?? MIME_TYPE_SUFFICIENT,
      confidentialityCode: doc.confidentialityCode ?? codeOf(cda?.confidentiality ?? null) ?? null,
      healthcareFacilityTypeCode: doc.healthcareFacilityTypeCode ?? null,
      practiceSettingCode: doc.practiceSettingCode ?? null,
    });
    files[`${SUBSET}/${uri}`] = [new Uint8Array(doc.content), {}];
  });
  const submission = input.submission ?? {};
  const metadata = writeXdmMetadata(
    {
      id: 'SubmissionSet01',
      uniqueId: submission.uniqueId ?? uuidOid(),
      sourceId: submission.sourceId ?? uuidOid(),
      submissionTime: xdsTime(now),
      patientId,
      title: submission.title ?? null,
      author: submission.author ?? entries[0]?.author ?? null,
      contentTypeCode: submission.contentTypeCode ?? null,
      intendedRecipients: submission.intendedRecipients ?? [],
    },
    entries,
  );
  files[`${SUBSET}/METADATA.XML`] = [new Uint8Array(metadata), {}];
  const zip = zipSync(
    {
      'README.TXT': [Buffer.from(readmeTxt(input.producer ?? 'mss', entries), 'utf8'), {}],
      'INDEX.HTM': [Buffer.from(indexHtm(entries), 'utf8'), {}],
      ...files,
    },
    { level: 6, mtime: now },
  );
  return Buffer.from(zip.buffer, zip.byteOffset, zip.byteLength);
}
