import { MailboxError, normaliseAddress } from '../accounts/mailboxes.js';
import {
  DIRECTORY_MAILBOX_TYPES,
  type DirActivityRecord,
  type DirectoryMailboxType,
  type DirMailboxRecord,
  type DirOrganisationRecord,
  type DirPractitionerRecord,
  type SnapshotKind,
} from '../store/directory-types.js';
import { isFiness, isIdNatPs, isSiren, isSiret, toIdNatStruct } from './identifiers.js';
import { hashFields, headerKey, searchKey } from './normalize.js';

/**
 * The two public extraction formats of the Annuaire Santé, read by header name (never by position: newer
 * extractions move columns between files). Both are UTF-8, `|`-separated, one header line; the
 * PS_LibreAcces files end every line with a `|` (an empty last field, in the header too).
 *
 * A row becomes records or a reason it is refused; the importer (`import.ts`) counts and reports refusals with
 * their line numbers.
 */

export class DirectoryFileError extends Error {}

interface FieldDef {
  /** Header names accepted for the field (compared by `headerKey`). */
  names: readonly string[];
  required: boolean;
}

const field = (required: boolean, ...names: string[]): FieldDef => ({ names, required });

/** "Extraction correspondance MSSanté": one row per secure mailbox. */
const MSS_FIELDS = {
  type: field(true, 'Type de BAL'),
  address: field(true, 'Adresse BAL'),
  idNatPs: field(true, 'Identification nationale PP'),
  structureType: field(true, 'Type identifiant structure'),
  structureId: field(true, 'Identification Structure'),
  lastName: field(true, "Nom d'exercice"),
  firstName: field(true, "Prénom d'exercice"),
  service: field(false, 'Service de rattachement'),
  civility: field(false, "Civilité d'exercice"),
  professionCode: field(false, 'Code Profession'),
  professionLabel: field(false, 'Libellé Profession'),
  specialtyCode: field(false, 'Code savoir-faire'),
  specialtyLabel: field(false, 'Libellé savoir-faire'),
  dematerialisation: field(false, 'Dématérialisation'),
  organisationName: field(false, 'Raison Sociale structure BAL'),
  enseigne: field(false, 'Enseigne commerciale structure BAL'),
  routing: field(false, 'L6LIGNEACHEMINEMENT structure BAL'),
  postalCode: field(false, 'Code postal structure BAL'),
  department: field(false, 'Département structure BAL'),
  // Not in the public extraction (liste rouge mailboxes are not published there), accepted from private ones.
  listeRouge: field(false, 'Liste rouge', 'Liste Rouge BAL'),
} as const;

/** "PS_LibreAcces_Personne_activite": one row per activity of a practitioner. */
const PS_FIELDS = {
  idNatPs: field(true, 'Identification nationale PP'),
  lastName: field(true, "Nom d'exercice"),
  firstName: field(true, "Prénom d'exercice"),
  professionCode: field(true, 'Code profession'),
  professionLabel: field(true, 'Libellé profession'),
  idType: field(false, "Type d'identifiant PP"),
  idPp: field(false, 'Identifiant PP'),
  civility: field(false, "Libellé civilité d'exercice", 'Libellé civilité exercice'),
  // The civil title, when no practice title ("Docteur") is given.
  civilTitle: field(false, 'Libellé civilité'),
  categoryCode: field(false, 'Code catégorie professionnelle'),
  // Newer extractions move savoir-faire to a file of its own.
  specialtyCode: field(false, 'Code savoir-faire'),
  specialtyLabel: field(false, 'Libellé savoir-faire'),
  modeCode: field(false, 'Code mode exercice'),
  modeLabel: field(false, 'Libellé mode exercice'),
  siret: field(false, 'Numéro SIRET site'),
  siren: field(false, 'Numéro SIREN site'),
  finessSite: field(false, 'Numéro FINESS site'),
  finessEj: field(false, 'Numéro FINESS établissement juridique'),
  organisationName: field(false, 'Raison sociale site'),
  enseigne: field(false, 'Enseigne commerciale site'),
  postalCode: field(false, 'Code postal (coord. structure)'),
  city: field(false, 'Libellé commune (coord. structure)'),
  department: field(false, 'Code département (coord. structure)', 'Code Département (structure)'),
  email: field(false, 'Adresse e-mail (coord. structure)'),
} as const;

type Columns<F> = { [K in keyof F]: number };

export interface MssLayout {
  format: 'mss';
  width: number;
  columns: Columns<typeof MSS_FIELDS>;
}

export interface PsLayout {
  format: 'ps';
  width: number;
  columns: Columns<typeof PS_FIELDS>;
}

export type Layout = MssLayout | PsLayout;

export const FORMAT_NAMES: Record<SnapshotKind, string> = {
  mss: 'Extraction correspondance MSSanté',
  ps: 'PS_LibreAcces_Personne_activite',
};

export const SEPARATOR = '|';

function locate<F extends Record<string, FieldDef>>(fields: F, headers: readonly string[], format: SnapshotKind): Columns<F> {
  const index = new Map<string, number>();
  headers.forEach((h, i) => {
    const k = headerKey(h);
    if (k && !index.has(k)) index.set(k, i);
  });
  const columns = {} as Record<string, number>;
  const missing: string[] = [];
  for (const [name, def] of Object.entries(fields)) {
    const at = def.names.map((n) => index.get(headerKey(n))).find((i) => i !== undefined);
    if (at === undefined && def.required) missing.push(def.names[0]!);
    columns[name] = at ?? -1;
  }
  if (missing.length > 0) {
    throw new DirectoryFileError(
      `the header of this ${FORMAT_NAMES[format]} file lacks required column${missing.length > 1 ? 's' : ''} ${missing.map((m) => `"${m}"`).join(', ')}: nothing was imported`,
    );
  }
  return columns as Columns<F>;
}

/** Recognises the format from the header line and finds every column by name. */
export function detectLayout(headerLine: string): Layout {
  const headers = headerLine.replace(/^\uFEFF/, '').replace(/\r$/, '').split(SEPARATOR);
  const keys = new Set(headers.map(headerKey));
  const width = headers.length;
  if (keys.has(headerKey('Adresse BAL')) || keys.has(headerKey('Type de BAL'))) {
    return { format: 'mss', width, columns: locate(MSS_FIELDS, headers, 'mss') };
  }
  if (keys.has(headerKey('Identification nationale PP')) || keys.has(headerKey('Identifiant PP'))) {
    return { format: 'ps', width, columns: locate(PS_FIELDS, headers, 'ps') };
  }
  throw new DirectoryFileError(
    `unrecognised header: expected the "${FORMAT_NAMES.mss}" file (with "Type de BAL" and "Adresse BAL") or the ` +
      `"${FORMAT_NAMES.ps}" file (with "Identification nationale PP"), |-separated with a header line`,
  );
}

/**
 * The fields of one line, found without splitting it: the separators' positions are recorded, and only the
 * columns a format reads are cut out (a PS_LibreAcces line has 56 fields; about 25 are read). One instance is
 * reused for every line.
 */
export class LineFields {
  #line = '';
  /** Position of the separator after each field (the last field ends at the end of the line). */
  #ends = new Int32Array(64);
  /** Number of fields. */
  count = 0;

  constructor(line = '') {
    this.set(line);
  }

  set(line: string): this {
    this.#line = line;
    let n = 0;
    let at = line.indexOf(SEPARATOR);
    while (at !== -1) {
      if (n === this.#ends.length) {
        const grown = new Int32Array(this.#ends.length * 2);
        grown.set(this.#ends);
        this.#ends = grown;
      }
      this.#ends[n++] = at;
      at = line.indexOf(SEPARATOR, at + 1);
    }
    this.#ends[n] = line.length;
    this.count = n + 1;
    return this;
  }

  /** The field in `column`, trimmed; '' when the column is absent from this file or from this line. */
  get(column: number): string {
    if (column < 0 || column >= this.count) return '';
    const start = column === 0 ? 0 : this.#ends[column - 1]! + 1;
    return this.#line.slice(start, this.#ends[column]).trim();
  }
}

/** A field's value, trimmed; '' when the column is absent from this file. */
function at(fields: LineFields, column: number): string {
  return fields.get(column);
}

function orNull(value: string): string | null {
  return value === '' ? null : value;
}

export type RowResult<T> = { ok: true; value: T } | { ok: false; reason: string };

const bad = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });

function columnCount(fields: LineFields, width: number): string | null {
  return fields.count === width ? null : `wrong column count: ${fields.count} instead of ${width}`;
}

function parseBoolean(value: string): boolean | null {
  switch (value.length) {
    case 0:
      return null;
    case 1:
      return value === '1' ? true : value === '0' ? false : null;
  }
  const v = value.toLowerCase();
  if (v === 'true' || v === 'vrai' || v === 'oui') return true;
  if (v === 'false' || v === 'faux' || v === 'non') return false;
  return null;
}

/** "25300 DOUBS" → "DOUBS" (the routing line of a French address starts with the postal code). */
function cityOf(routing: string, postalCode: string): string | null {
  const rest = postalCode && routing.startsWith(postalCode) ? routing.slice(postalCode.length) : routing.replace(/^\d{5}\s+/, '');
  return orNull(rest.trim());
}

/**
 * One row of the MSSanté extraction as a mailbox record. Without `searchKeys`, its `nameKey` and `altKey` are
 * left empty: an import that only compares keys and hashes does not fold names (they are not in the hash).
 */
export function mssRow(fields: LineFields, layout: MssLayout, searchKeys = true): RowResult<DirMailboxRecord> {
  const wrongWidth = columnCount(fields, layout.width);
  if (wrongWidth) return bad(wrongWidth);
  const c = layout.columns;
  const typeText = at(fields, c.type).toUpperCase();
  if (!(DIRECTORY_MAILBOX_TYPES as readonly string[]).includes(typeText)) return bad(`unknown Type de BAL ${JSON.stringify(typeText)}`);
  const type = typeText as DirectoryMailboxType;
  let address: string;
  try {
    address = normaliseAddress(at(fields, c.address));
  } catch (err) {
    if (err instanceof MailboxError) return bad(`invalid Adresse BAL ${JSON.stringify(at(fields, c.address))}`);
    throw err;
  }
  const idNatPs = at(fields, c.idNatPs);
  if (idNatPs !== '' && !isIdNatPs(idNatPs)) return bad(`invalid Identification nationale PP ${JSON.stringify(idNatPs)}`);
  const structureType = at(fields, c.structureType);
  const structureValue = at(fields, c.structureId);
  let structureId: string | null = null;
  if (structureValue !== '') {
    structureId = toIdNatStruct(structureType, structureValue);
    if (structureId === null) return bad(`invalid structure identifier ${JSON.stringify(`${structureType}/${structureValue}`)}`);
  }
  let ownerId: string | null;
  if (type === 'ORG' || type === 'APP') {
    if (structureId === null) return bad(`${type} mailbox without a structure identifier`);
    ownerId = structureId;
  } else {
    // A personal mailbox may be attached to no national identifier (its structure answers for it).
    ownerId = orNull(idNatPs);
  }
  const lastName = orNull(at(fields, c.lastName));
  const firstName = orNull(at(fields, c.firstName));
  const service = orNull(at(fields, c.service));
  const civility = orNull(at(fields, c.civility));
  const professionCode = orNull(at(fields, c.professionCode));
  const professionLabel = orNull(at(fields, c.professionLabel));
  const specialtyCode = orNull(at(fields, c.specialtyCode));
  const specialtyLabel = orNull(at(fields, c.specialtyLabel));
  const dematerialisation = parseBoolean(at(fields, c.dematerialisation));
  const organisationName = orNull(at(fields, c.organisationName) || at(fields, c.enseigne));
  const postalCode = orNull(at(fields, c.postalCode));
  const city = cityOf(at(fields, c.routing), postalCode ?? '');
  const department = orNull(at(fields, c.department));
  const listeRouge = parseBoolean(at(fields, c.listeRouge)) ?? false;
  const personal = type === 'PER' || type === 'CAB';
  let nameKey = '';
  let altKey = '';
  if (!searchKeys) {
    // Left empty: the caller stages this record's key and hash only.
  } else if (personal) {
    const last = searchKey(lastName);
    const first = searchKey(firstName);
    nameKey = last && first ? `${last} ${first}` : last || first;
    altKey = last && first ? `${first} ${last}` : last || first;
  } else {
    nameKey = searchKey(service ?? organisationName);
    altKey = searchKey(organisationName, service);
  }
  if (searchKeys && (!nameKey || !altKey)) {
    const byAddress = searchKey(address);
    nameKey ||= byAddress;
    altKey ||= byAddress;
  }
  const hash = hashFields([
    address,
    type,
    ownerId,
    structureId,
    service,
    civility,
    lastName,
    firstName,
    professionCode,
    professionLabel,
    specialtyCode,
    specialtyLabel,
    dematerialisation,
    organisationName,
    postalCode,
    city,
    department,
    listeRouge,
  ]);
  return {
    ok: true,
    value: {
      address,
      type,
      ownerId,
      structureId,
      service,
      civility,
      lastName,
      firstName,
      professionCode,
      professionLabel,
      specialtyCode,
      specialtyLabel,
      dematerialisation,
      organisationName,
      postalCode,
      city,
      department,
      listeRouge,
      nameKey,
      altKey,
      hash,
    },
  };
}

export interface PsRecords {
  /** Null when the caller did not want it (`PsWanted`). */
  practitioner: DirPractitionerRecord | null;
  activity: DirActivityRecord;
  /** Null when the activity names no structure, or the caller did not want it. */
  organisation: DirOrganisationRecord | null;
}

/**
 * Which of a row's practitioner and structure records to build (every row is checked in full either way): a
 * practitioner's rows and a structure's repeat, and the importer needs each record once. Without `searchKeys`,
 * their `nameKey` and `altKey` are left empty (an import that only compares keys and hashes does not fold names).
 */
export interface PsWanted {
  practitioner(idNatPs: string): boolean;
  organisation(idNatStruct: string): boolean;
  searchKeys: { practitioner: boolean; organisation: boolean };
}

const ALL: PsWanted = { practitioner: () => true, organisation: () => true, searchKeys: { practitioner: true, organisation: true } };

/** One row of PS_LibreAcces_Personne_activite: the practitioner, one activity, and its structure if identified. */
export function psRow(fields: LineFields, layout: PsLayout, wanted: PsWanted = ALL): RowResult<PsRecords> {
  const wrongWidth = columnCount(fields, layout.width);
  if (wrongWidth) return bad(wrongWidth);
  const c = layout.columns;
  const idNatPs = at(fields, c.idNatPs);
  if (!isIdNatPs(idNatPs)) return bad(`invalid Identification nationale PP ${JSON.stringify(idNatPs)}`);
  const lastName = at(fields, c.lastName);
  if (lastName === '') return bad("empty Nom d'exercice");

  const finessSite = at(fields, c.finessSite);
  if (finessSite !== '' && !isFiness(finessSite)) return bad(`invalid Numéro FINESS site ${JSON.stringify(finessSite)}`);
  const finessEj = at(fields, c.finessEj);
  if (finessEj !== '' && !isFiness(finessEj)) return bad(`invalid Numéro FINESS établissement juridique ${JSON.stringify(finessEj)}`);
  const siret = at(fields, c.siret);
  if (siret !== '' && !isSiret(siret)) return bad(`invalid Numéro SIRET site ${JSON.stringify(siret)}`);
  const siren = at(fields, c.siren);
  if (siren !== '' && !isSiren(siren)) return bad(`invalid Numéro SIREN site ${JSON.stringify(siren)}`);
  const structureId = finessSite ? `1${finessSite}` : siret ? `3${siret}` : siren ? `2${siren}` : null;

  let practitioner: DirPractitionerRecord | null = null;
  if (wanted.practitioner(idNatPs)) {
    const firstName = orNull(at(fields, c.firstName));
    const idType = orNull(at(fields, c.idType));
    const idPp = orNull(at(fields, c.idPp));
    const civility = orNull(at(fields, c.civility) || at(fields, c.civilTitle));
    const folding = wanted.searchKeys.practitioner;
    const last = folding ? searchKey(lastName) : '';
    const first = folding ? searchKey(firstName) : '';
    practitioner = {
      idNatPs,
      idType,
      idPp,
      civility,
      lastName,
      firstName,
      nameKey: last && first ? `${last} ${first}` : last || first,
      altKey: last && first ? `${first} ${last}` : last || first,
      hash: hashFields([idNatPs, idType, idPp, civility, lastName, firstName]),
    };
  }

  const organisationName = orNull(at(fields, c.organisationName));
  const enseigne = orNull(at(fields, c.enseigne));
  const postalCode = orNull(at(fields, c.postalCode));
  const city = orNull(at(fields, c.city));
  const department = orNull(at(fields, c.department));
  const professionCode = orNull(at(fields, c.professionCode));
  const professionLabel = orNull(at(fields, c.professionLabel));
  const categoryCode = orNull(at(fields, c.categoryCode));
  const specialtyCode = orNull(at(fields, c.specialtyCode));
  const specialtyLabel = orNull(at(fields, c.specialtyLabel));
  const modeCode = orNull(at(fields, c.modeCode));
  const modeLabel = orNull(at(fields, c.modeLabel));
  const siteName = organisationName ?? enseigne;
  const email = orNull(at(fields, c.email));
  const activityHash = hashFields([
    idNatPs,
    professionCode,
    professionLabel,
    categoryCode,
    specialtyCode,
    specialtyLabel,
    modeCode,
    modeLabel,
    structureId,
    siteName,
    postalCode,
    city,
    department,
    email,
  ]);
  const activity: DirActivityRecord = {
    activityKey: `${idNatPs}:${activityHash.toString(36)}`,
    idNatPs,
    professionCode,
    professionLabel,
    categoryCode,
    specialtyCode,
    specialtyLabel,
    modeCode,
    modeLabel,
    structureId,
    organisationName: siteName,
    postalCode,
    city,
    department,
    email,
    hash: activityHash,
  };

  let organisation: DirOrganisationRecord | null = null;
  if (structureId !== null && wanted.organisation(structureId)) {
    const finessEjOrNull = orNull(finessEj);
    organisation = {
      idNatStruct: structureId,
      name: organisationName,
      enseigne,
      finessEj: finessEjOrNull,
      postalCode,
      city,
      department,
      nameKey: wanted.searchKeys.organisation ? searchKey(organisationName ?? enseigne) : '',
      hash: hashFields([structureId, organisationName, enseigne, finessEjOrNull, postalCode, city, department]),
    };
  }
  return { ok: true, value: { practitioner, activity, organisation } };
}
