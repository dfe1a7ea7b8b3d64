/**
 * The practitioner directory's storage port (docs/decisions/0007-directory.md). The SQLite and PostgreSQL
 * engines implement it in `sqlite/directory.ts` and `postgres/directory.ts` over the connections of an open
 * `Store`; `openDirectoryStore(store)` (`directory.ts`) picks the one that fits.
 *
 * What is stored comes from the public extraction files of the Annuaire Santé, imported by snapshots:
 * - the "Extraction correspondance MSSanté" feeds `mailbox` rows (kind `mss`);
 * - "PS_LibreAcces_Personne_activite" feeds `practitioner`, `activity` and `organisation` rows (kind `ps`).
 * Mailboxes meet practitioners through the practitioner's national identifier (`ownerId` = `idNatPs`), and
 * structures through `structureId` (`idNat_Struct`).
 *
 * A row absent from the latest snapshot of its kind is kept, inactive (`active = false`, `removedSnapshot`):
 * "inactive" means "known, but no longer in the national extraction" and is told apart from "unknown".
 *
 * Records arrive already validated and normalised (`src/directory/formats.ts`), each with its `hash`: a
 * content hash of its fields, so that a re-import compares hashes instead of rows.
 */

export const DIRECTORY_MAILBOX_TYPES = ['PER', 'ORG', 'APP', 'CAB'] as const;
export type DirectoryMailboxType = (typeof DIRECTORY_MAILBOX_TYPES)[number];

export const SNAPSHOT_KINDS = ['mss', 'ps'] as const;
export type SnapshotKind = (typeof SNAPSHOT_KINDS)[number];

export const DIRECTORY_ENTITIES = ['mailbox', 'practitioner', 'activity', 'organisation'] as const;
export type DirectoryEntity = (typeof DIRECTORY_ENTITIES)[number];

/** Which entities a snapshot of each kind replaces. */
export const ENTITIES_OF_KIND: Record<SnapshotKind, readonly DirectoryEntity[]> = {
  mss: ['mailbox'],
  ps: ['practitioner', 'activity', 'organisation'],
};

export interface DirMailboxRecord {
  address: string; // lower-case
  type: DirectoryMailboxType;
  /** idNat_PS for PER and CAB, idNat_Struct for ORG and APP; null for a PER mailbox attached to no national identifier. */
  ownerId: string | null;
  structureId: string | null;
  service: string | null;
  civility: string | null;
  lastName: string | null;
  firstName: string | null;
  professionCode: string | null;
  professionLabel: string | null;
  specialtyCode: string | null;
  specialtyLabel: string | null;
  dematerialisation: boolean | null;
  organisationName: string | null;
  postalCode: string | null;
  city: string | null;
  department: string | null;
  /** Liste rouge: must not be published (hidden from address-book completion). */
  listeRouge: boolean;
  nameKey: string;
  altKey: string;
  hash: number;
}

export interface DirPractitionerRecord {
  idNatPs: string;
  idType: string | null;
  idPp: string | null;
  civility: string | null;
  lastName: string;
  firstName: string | null;
  nameKey: string;
  altKey: string;
  hash: number;
}

export interface DirActivityRecord {
  /** idNatPs + ':' + the activity's content hash: an activity is identified by what it says. */
  activityKey: string;
  idNatPs: string;
  professionCode: string | null;
  professionLabel: string | null;
  categoryCode: string | null;
  specialtyCode: string | null;
  specialtyLabel: string | null;
  modeCode: string | null;
  modeLabel: string | null;
  structureId: string | null;
  organisationName: string | null;
  postalCode: string | null;
  city: string | null;
  department: string | null;
  email: string | null;
  hash: number;
}

export interface DirOrganisationRecord {
  idNatStruct: string;
  name: string | null;
  enseigne: string | null;
  finessEj: string | null;
  postalCode: string | null;
  city: string | null;
  department: string | null;
  nameKey: string;
  hash: number;
}

export interface EntityRecords {
  mailbox: DirMailboxRecord;
  practitioner: DirPractitionerRecord;
  activity: DirActivityRecord;
  organisation: DirOrganisationRecord;
}

/** What the store keeps about a row's life across snapshots. */
export interface SnapshotState {
  active: boolean;
  addedSnapshot: number;
  changedSnapshot: number;
  removedSnapshot: number | null;
}

export type DirMailbox = DirMailboxRecord & SnapshotState;
export type DirPractitioner = DirPractitionerRecord & SnapshotState;
export type DirActivity = DirActivityRecord & SnapshotState;
export type DirOrganisation = DirOrganisationRecord & SnapshotState;

export interface EntityRows {
  mailbox: DirMailbox;
  practitioner: DirPractitioner;
  activity: DirActivity;
  organisation: DirOrganisation;
}

export type ColumnKind = 'text' | 'textOrNull' | 'int' | 'bool' | 'boolOrNull';

export interface ColumnSpec<E extends DirectoryEntity> {
  column: string;
  field: keyof EntityRecords[E] & string;
  kind: ColumnKind;
  /** Compared byte-wise in range scans (prefix search): PostgreSQL declares it COLLATE "C". */
  search?: boolean;
}

export interface EntitySpec<E extends DirectoryEntity> {
  table: string;
  /** The natural key column (unique) and its record field. */
  key: keyof EntityRecords[E] & string;
  columns: readonly ColumnSpec<E>[];
  /**
   * Secondary indexes (column lists), dropped and rebuilt around a bulk load. The last one, (key, hash, active),
   * lets a re-import compare the file's keys and hashes with the directory in key order, reading no table row.
   */
  indexes: readonly (readonly string[])[];
  /**
   * Its key may come on more than one line of a file (a practitioner on each of their activities, a structure on
   * each activity there, an activity listed twice): a first load counts its keys in key order from its
   * (key, hash, active) index rather than trying the unique index first, which would fail at the first repeat.
   */
  keyRepeats?: true;
}

/**
 * The column layout of each entity, shared by both engines (they generate their INSERTs and row readers from
 * it; the tables themselves are in each engine's migration 5, which must match).
 */
export const ENTITY_SPECS: { [E in DirectoryEntity]: EntitySpec<E> } = {
  mailbox: {
    table: 'dir_mailboxes',
    key: 'address',
    columns: [
      { column: 'address', field: 'address', kind: 'text', search: true },
      { column: 'type', field: 'type', kind: 'text' },
      { column: 'owner_id', field: 'ownerId', kind: 'textOrNull' },
      { column: 'structure_id', field: 'structureId', kind: 'textOrNull' },
      { column: 'service', field: 'service', kind: 'textOrNull' },
      { column: 'civility', field: 'civility', kind: 'textOrNull' },
      { column: 'last_name', field: 'lastName', kind: 'textOrNull' },
      { column: 'first_name', field: 'firstName', kind: 'textOrNull' },
      { column: 'profession_code', field: 'professionCode', kind: 'textOrNull' },
      { column: 'profession_label', field: 'professionLabel', kind: 'textOrNull' },
      { column: 'specialty_code', field: 'specialtyCode', kind: 'textOrNull' },
      { column: 'specialty_label', field: 'specialtyLabel', kind: 'textOrNull' },
      { column: 'dematerialisation', field: 'dematerialisation', kind: 'boolOrNull' },
      { column: 'organisation_name', field: 'organisationName', kind: 'textOrNull' },
      { column: 'postal_code', field: 'postalCode', kind: 'textOrNull' },
      { column: 'city', field: 'city', kind: 'textOrNull' },
      { column: 'department', field: 'department', kind: 'textOrNull' },
      { column: 'liste_rouge', field: 'listeRouge', kind: 'bool' },
      { column: 'name_key', field: 'nameKey', kind: 'text', search: true },
      { column: 'alt_key', field: 'altKey', kind: 'text', search: true },
      { column: 'hash', field: 'hash', kind: 'int' },
    ],
    indexes: [['owner_id'], ['structure_id'], ['name_key'], ['alt_key'], ['address', 'hash', 'active']],
  },
  practitioner: {
    table: 'dir_practitioners',
    key: 'idNatPs',
    columns: [
      { column: 'id_nat_ps', field: 'idNatPs', kind: 'text' },
      { column: 'id_type', field: 'idType', kind: 'textOrNull' },
      { column: 'id_pp', field: 'idPp', kind: 'textOrNull' },
      { column: 'civility', field: 'civility', kind: 'textOrNull' },
      { column: 'last_name', field: 'lastName', kind: 'text' },
      { column: 'first_name', field: 'firstName', kind: 'textOrNull' },
      { column: 'name_key', field: 'nameKey', kind: 'text', search: true },
      { column: 'alt_key', field: 'altKey', kind: 'text', search: true },
      { column: 'hash', field: 'hash', kind: 'int' },
    ],
    indexes: [['name_key'], ['alt_key'], ['id_nat_ps', 'hash', 'active']],
    keyRepeats: true,
  },
  activity: {
    table: 'dir_activities',
    key: 'activityKey',
    columns: [
      { column: 'activity_key', field: 'activityKey', kind: 'text' },
      { column: 'id_nat_ps', field: 'idNatPs', kind: 'text' },
      { column: 'profession_code', field: 'professionCode', kind: 'textOrNull' },
      { column: 'profession_label', field: 'professionLabel', kind: 'textOrNull' },
      { column: 'category_code', field: 'categoryCode', kind: 'textOrNull' },
      { column: 'specialty_code', field: 'specialtyCode', kind: 'textOrNull' },
      { column: 'specialty_label', field: 'specialtyLabel', kind: 'textOrNull' },
      { column: 'mode_code', field: 'modeCode', kind: 'textOrNull' },
      { column: 'mode_label', field: 'modeLabel', kind: 'textOrNull' },
      { column: 'structure_id', field: 'structureId', kind: 'textOrNull' },
      { column: 'organisation_name', field: 'organisationName', kind: 'textOrNull' },
      { column: 'postal_code', field: 'postalCode', kind: 'textOrNull' },
      { column: 'city', field: 'city', kind: 'textOrNull' },
      { column: 'department', field: 'department', kind: 'textOrNull' },
      { column: 'email', field: 'email', kind: 'textOrNull' },
      { column: 'hash', field: 'hash', kind: 'int' },
    ],
    indexes: [['id_nat_ps'], ['structure_id'], ['activity_key', 'hash', 'active']],
    keyRepeats: true,
  },
  organisation: {
    table: 'dir_organisations',
    key: 'idNatStruct',
    columns: [
      { column: 'id_nat_struct', field: 'idNatStruct', kind: 'text' },
      { column: 'name', field: 'name', kind: 'textOrNull' },
      { column: 'enseigne', field: 'enseigne', kind: 'textOrNull' },
      { column: 'finess_ej', field: 'finessEj', kind: 'textOrNull' },
      { column: 'postal_code', field: 'postalCode', kind: 'textOrNull' },
      { column: 'city', field: 'city', kind: 'textOrNull' },
      { column: 'department', field: 'department', kind: 'textOrNull' },
      { column: 'name_key', field: 'nameKey', kind: 'text', search: true },
      { column: 'hash', field: 'hash', kind: 'int' },
    ],
    indexes: [['name_key'], ['id_nat_struct', 'hash', 'active']],
    keyRepeats: true,
  },
};

/** The key column of an entity. */
export function keyColumn(entity: DirectoryEntity): string {
  const spec = ENTITY_SPECS[entity] as EntitySpec<DirectoryEntity>;
  const column = spec.columns.find((c) => c.field === spec.key);
  if (!column) throw new Error(`entity ${entity} has no key column`);
  return column.column;
}

export interface EntityDiff {
  added: number;
  removed: number;
  changed: number;
  unchanged: number;
}

export const SNAPSHOT_STATUSES = ['running', 'complete', 'failed'] as const;
export type SnapshotStatus = (typeof SNAPSHOT_STATUSES)[number];

export interface DirSnapshot {
  id: number;
  kind: SnapshotKind;
  status: SnapshotStatus;
  /** The complete snapshot of the same kind this import was compared with (null: the first one). */
  baseId: number | null;
  sourceName: string;
  sourceSha256: string | null;
  startedAt: number; // ms since epoch
  finishedAt: number | null;
  rowsTotal: number;
  rowsBad: number;
  diff: Partial<Record<DirectoryEntity, EntityDiff>>;
  error: string | null;
}

export const CHANGE_KINDS = ['added', 'removed', 'changed'] as const;
export type ChangeKind = (typeof CHANGE_KINDS)[number];

/** One row's change in one snapshot (recorded for every import but the first of its kind). */
export interface DirChange {
  snapshotId: number;
  entity: DirectoryEntity;
  key: string;
  change: ChangeKind;
}

export interface NewDirCertificate {
  /** SHA-256 of the DER, lower-case hex. */
  fingerprint: string;
  ownerId: string;
  serial: string;
  subject: string;
  issuer: string;
  notBefore: number; // ms since epoch
  notAfter: number;
  der: Buffer;
}

export interface DirCertificate extends NewDirCertificate {
  addedAt: number;
}

/** Thrown by `commit` when another import of the same kind completed since this one began (nothing changed). */
export class ImportConflictError extends Error {}

export interface ImportCommitInfo {
  rowsTotal: number;
  rowsBad: number;
  sourceSha256: string | null;
}

export interface ImportOutcome {
  snapshot: DirSnapshot;
  /** Per entity of the kind. */
  diff: Partial<Record<DirectoryEntity, EntityDiff>>;
  /** True for the first complete snapshot of its kind (no change list is recorded then). */
  initial: boolean;
}

/**
 * A batch of staged rows, in the encoding the session asks for (`stagingFormat`); the importer builds it on its
 * parsing thread, and an encoding crosses between threads far cheaper than records as objects:
 * - `copy`: PostgreSQL's COPY text format, loaded as it is: one row per line, each ending in `\n`; values
 *   separated by a tab; NULL as `\N`; backslash, tab, newline and carriage return escaped with a backslash;
 *   booleans `t`/`f`; integers in decimal.
 * - `values`: the rows' values one after the other, as SQLite binds them (text, number, null; booleans 1/0).
 * Columns: for keys (`stageKeys`) `key`, `line`, `hash`; for records (`stageRecords`) `line`, then the entity's
 * columns in `ENTITY_SPECS` order. The first line of a key wins.
 */
export type StagingFormat = 'copy' | 'values';
export type StagedValue = string | number | null;
export type StagedRows = { count: number; format: 'copy'; text: string } | { count: number; format: 'values'; values: StagedValue[] };

/**
 * One import in progress. The importer streams the file through it in batches:
 * - it stages every key the file holds, with its line and content hash (`stageKeys`, `StagedRows`);
 * - while an entity's table is empty (`stagesAll`: the first load), it stages every full record at once;
 * - otherwise, once the file is read, it asks which lines hold a record the directory lacks or holds with
 *   another hash (`neededLines`), reads those lines again and stages their full records (`stageRecords`).
 * An unchanged file is thus compared by key and hash only, in the database. Staging writes nothing the
 * directory's readers can see; `commit` applies the difference in one unit of work. `abort` (or a failure in
 * `commit`) leaves the directory as it was and records the snapshot as failed.
 */
export interface DirectoryImportSession {
  readonly snapshotId: number;
  readonly kind: SnapshotKind;
  /** The complete snapshot this import is compared with (null: the first of its kind). */
  readonly baseId: number | null;
  /** How `stageKeys` and `stageRecords` want their rows encoded. */
  readonly stagingFormat: StagingFormat;
  /**
   * True when the entity's table was empty at the start: every record is new, stage them all while reading
   * (`stageRecords`); staged records stand for their keys.
   */
  stagesAll(entity: DirectoryEntity): boolean;
  /** Every key the file holds, with its line and hash (duplicates included: the lowest line wins), unless `stagesAll`. */
  stageKeys(entity: DirectoryEntity, rows: StagedRows): Promise<void>;
  /** Full records of new or changed rows. */
  stageRecords(entity: DirectoryEntity, rows: StagedRows): Promise<void>;
  /**
   * After every key is staged: the lines (ascending, above `afterLine`, at most `limit`) whose record must be
   * staged in full, with the entities concerned: the first line of each key that the directory does not hold
   * active with the same hash. Entities that `stagesAll` are never listed.
   */
  neededLines(afterLine: number, limit: number): Promise<{ line: number; entities: DirectoryEntity[] }[]>;
  /** Lines whose key an earlier line already had: how many, and the first `limit` of them with that earlier line. */
  duplicates(entity: DirectoryEntity, limit: number): Promise<{ total: number; sample: { line: number; firstLine: number }[] }>;
  /**
   * Applies the difference with the base snapshot atomically: upserts staged records, deactivates rows whose
   * key was not staged, records the changes and completes the snapshot. Fails (changing nothing) when another
   * import of the same kind completed since `beginImport`.
   */
  commit(info: ImportCommitInfo): Promise<ImportOutcome>;
  abort(reason: string): Promise<void>;
}

export interface DirectoryReads {
  /** Active or not (see `active`). Addresses are compared in lower case. */
  getMailbox(address: string): Promise<DirMailbox | null>;
  /** Active mailboxes whose owner is this identifier. */
  mailboxesOfOwner(ownerId: string): Promise<DirMailbox[]>;
  /** Active mailboxes attached to this structure, by address. */
  mailboxesOfStructure(structureId: string, limit: number): Promise<DirMailbox[]>;
  getPractitioner(idNatPs: string): Promise<DirPractitioner | null>;
  /** Active activities of a practitioner. */
  activitiesOf(idNatPs: string): Promise<DirActivity[]>;
  /** Active activities at a structure. */
  activitiesAtStructure(structureId: string, limit: number): Promise<DirActivity[]>;
  getOrganisation(idNatStruct: string): Promise<DirOrganisation | null>;
  /**
   * Active mailboxes whose name key (name then first name, or service / organisation) starts with `keyPrefix`
   * (a `searchKey`), or whose address starts with `addressPrefix`; by name key, at most `limit`. Liste rouge
   * mailboxes only with `includeListeRouge`.
   */
  searchMailboxes(keyPrefix: string, addressPrefix: string, options: { limit: number; includeListeRouge: boolean }): Promise<DirMailbox[]>;
  /** Active practitioners whose name key ("last first" or "first last") starts with `keyPrefix`. */
  searchPractitioners(keyPrefix: string, limit: number): Promise<DirPractitioner[]>;
  /** Active organisations whose name key starts with `keyPrefix`. */
  searchOrganisations(keyPrefix: string, limit: number): Promise<DirOrganisation[]>;
  listCertificates(ownerId: string): Promise<DirCertificate[]>;
  getSnapshot(id: number): Promise<DirSnapshot | null>;
  /** The latest complete snapshot of a kind. */
  latestSnapshot(kind: SnapshotKind): Promise<DirSnapshot | null>;
  /** Most recent first. */
  listSnapshots(limit: number): Promise<DirSnapshot[]>;
  /** Changes recorded by a snapshot, by entity then key. */
  listChanges(snapshotId: number, options: { entity?: DirectoryEntity; limit: number }): Promise<DirChange[]>;
  /** Active and inactive rows per entity. */
  countRows(): Promise<Record<DirectoryEntity, { active: number; inactive: number }>>;
}

export interface DirectoryStore extends DirectoryReads {
  /**
   * Starts an import: records a `running` snapshot and prepares the staging area. One import at a time per
   * store instance; an import of the same kind completed elsewhere meanwhile makes `commit` fail.
   */
  beginImport(input: { kind: SnapshotKind; sourceName: string }): Promise<DirectoryImportSession>;
  /** Adds (or replaces, same fingerprint) a certificate of an owner. */
  putCertificate(cert: NewDirCertificate): Promise<void>;
  removeCertificate(fingerprint: string): Promise<boolean>;
}
