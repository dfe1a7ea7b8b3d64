import { ENTITY_SPECS, type ColumnKind, type DirectoryEntity, type EntitySpec } from './directory-types.js';
import type { DumpValue } from './dump.js';
import { CorruptRowError, type EngineColumns, type Raw } from './rows.js';

/**
 * The directory tables in the export/import port of `mss store migrate` (`dump.ts`,
 * docs/decisions/0005-store-migration.md): every snapshot, row, change record and certificate is copied as it
 * is, ids included, so that the copy's next import compares with the same snapshot and its change lists match.
 *
 * Directory rows cross the port as their key and their values in column order (the same columns on both
 * engines, from `ENTITY_SPECS` for the four entities): nothing reads them on the way but the checks below.
 */

export const DIRECTORY_DUMP_TABLES = [
  'dir_snapshots',
  'dir_mailboxes',
  'dir_practitioners',
  'dir_activities',
  'dir_organisations',
  'dir_changes',
  'dir_certificates',
] as const;
export type DirectoryDumpTable = (typeof DIRECTORY_DUMP_TABLES)[number];

export function isDirectoryDumpTable(table: string): table is DirectoryDumpTable {
  return (DIRECTORY_DUMP_TABLES as readonly string[]).includes(table);
}

/** One directory row: its key (the `DIRECTORY_DUMP_KEY` column) and its values in `DIRECTORY_DUMP_COLUMNS` order. */
export interface DirectoryDumpRow {
  key: number | string;
  values: DumpValue[];
}

type DumpKind = 'int' | 'intOrNull' | 'text' | 'textOrNull' | 'bool' | 'boolOrNull' | 'bytes';

const FROM_ENTITY: Record<ColumnKind, DumpKind> = { text: 'text', textOrNull: 'textOrNull', int: 'int', bool: 'bool', boolOrNull: 'boolOrNull' };

/** An entity table's columns: id, the record's columns, then its life across snapshots. */
function entityColumns(entity: DirectoryEntity): [string, DumpKind][] {
  const spec = ENTITY_SPECS[entity] as EntitySpec<DirectoryEntity>;
  return [
    ['id', 'int'],
    ...spec.columns.map((c): [string, DumpKind] => [c.column, FROM_ENTITY[c.kind]]),
    ['active', 'bool'],
    ['added_snapshot', 'int'],
    ['changed_snapshot', 'int'],
    ['removed_snapshot', 'intOrNull'],
  ];
}

const SPECS: Record<DirectoryDumpTable, { key: string; columns: readonly [string, DumpKind][] }> = {
  dir_snapshots: {
    key: 'id',
    columns: [
      ['id', 'int'],
      ['kind', 'text'],
      ['status', 'text'],
      ['base_id', 'intOrNull'],
      ['source_name', 'text'],
      ['source_sha256', 'textOrNull'],
      ['started_at', 'int'],
      ['finished_at', 'intOrNull'],
      ['rows_total', 'int'],
      ['rows_bad', 'int'],
      ['diff', 'text'],
      ['error', 'textOrNull'],
    ],
  },
  dir_mailboxes: { key: 'id', columns: entityColumns('mailbox') },
  dir_practitioners: { key: 'id', columns: entityColumns('practitioner') },
  dir_activities: { key: 'id', columns: entityColumns('activity') },
  dir_organisations: { key: 'id', columns: entityColumns('organisation') },
  dir_changes: {
    key: 'id',
    columns: [
      ['id', 'int'],
      ['snapshot_id', 'int'],
      ['entity', 'text'],
      ['key', 'text'],
      ['change', 'text'],
    ],
  },
  dir_certificates: {
    key: 'fingerprint',
    columns: [
      ['fingerprint', 'text'],
      ['owner_id', 'text'],
      ['serial', 'text'],
      ['subject', 'text'],
      ['issuer', 'text'],
      ['not_before', 'int'],
      ['not_after', 'int'],
      ['der', 'bytes'],
      ['added_at', 'int'],
    ],
  },
};

function perTable<V>(value: (table: DirectoryDumpTable) => V): Record<DirectoryDumpTable, V> {
  const out = {} as Record<DirectoryDumpTable, V>;
  for (const table of DIRECTORY_DUMP_TABLES) out[table] = value(table);
  return out;
}

/** The columns of each directory table, in the order of `DirectoryDumpRow.values`. */
export const DIRECTORY_DUMP_COLUMNS: Record<DirectoryDumpTable, readonly string[]> = perTable((t) => SPECS[t].columns.map(([c]) => c));

/** The key column of each directory table (rows are exported in its ascending order). */
export const DIRECTORY_DUMP_KEY: Record<DirectoryDumpTable, string> = perTable((t) => SPECS[t].key);

function isNull(row: Raw, column: string): boolean {
  return row[column] === null || row[column] === undefined;
}

/** A directory row read from either engine, each column checked as it is read (`int` and `bool` from the engine). */
export function toDirectoryDumpRow(table: DirectoryDumpTable, row: Raw, { int, bool }: EngineColumns): DirectoryDumpRow {
  const read = (column: string, kind: DumpKind): DumpValue => {
    switch (kind) {
      case 'intOrNull':
      case 'textOrNull':
      case 'boolOrNull':
        if (isNull(row, column)) return null;
        return read(column, kind === 'intOrNull' ? 'int' : kind === 'textOrNull' ? 'text' : 'bool');
      case 'int':
        return int(row, column);
      case 'bool':
        return bool(row, column);
      case 'text': {
        const v = row[column];
        if (typeof v === 'string') return v;
        throw new CorruptRowError(`${table}.${column}: expected text`);
      }
      case 'bytes': {
        const v = row[column];
        if (Buffer.isBuffer(v)) return v;
        throw new CorruptRowError(`${table}.${column}: expected binary data`);
      }
    }
  };
  const { key, columns } = SPECS[table];
  const values = columns.map(([column, kind]) => read(column, kind));
  const keyValue = values[columns.findIndex(([column]) => column === key)];
  if (typeof keyValue !== 'number' && typeof keyValue !== 'string') throw new CorruptRowError(`${table}.${key}: expected a key`);
  return { key: keyValue, values };
}
