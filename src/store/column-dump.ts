import { ENTITY_SPECS, type ColumnKind, type DirectoryEntity, type EntitySpec } from './directory-types.js';
import type { DumpValue } from './dump.js';
import { CorruptRowError, type EngineColumns, type Raw } from './rows.js';

/**
 * Tables the export/import port of `mss store migrate` (`dump.ts`, docs/decisions/0005-store-migration.md) copies
 * from a column list alone: the practitioner directory (every snapshot, row, change record and certificate, ids
 * included, so that the copy's next import compares with the same snapshot and its change lists match), the trust
 * space, the MDN tracker, the SEARCH index, and the patient and webmail tables.
 *
 * Their rows cross the port as their key and their values in column order (the same columns on both engines):
 * nothing reads them on the way but the checks below; sealed columns are opaque bytes.
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

/** In an order where each row's references are already copied (after the tables `dump.ts` maps itself). */
export const COLUMN_DUMP_TABLES = [
  ...DIRECTORY_DUMP_TABLES,
  'trust_lists',
  'trust_domains',
  'mdn_tracking',
  'search_docs',
  'patient_accounts',
  'patient_threads',
  'patient_thread_messages',
  'webmail_sessions',
  'patient_documents',
] as const;
export type ColumnDumpTable = (typeof COLUMN_DUMP_TABLES)[number];

export function isColumnDumpTable(table: string): table is ColumnDumpTable {
  return (COLUMN_DUMP_TABLES as readonly string[]).includes(table);
}

/** One row: its key (the `COLUMN_DUMP_KEY` column) and its values in `COLUMN_DUMP_COLUMNS` order. */
export interface ColumnDumpRow {
  key: number | string;
  values: DumpValue[];
}

type DumpKind = 'int' | 'intOrNull' | 'text' | 'textOrNull' | 'bool' | 'boolOrNull' | 'bytes' | 'bytesOrNull';

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

const SPECS: Record<ColumnDumpTable, { key: string; columns: readonly [string, DumpKind][] }> = {
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
  trust_lists: {
    key: 'id',
    columns: [
      ['id', 'int'],
      ['generated_at', 'int'],
      ['imported_at', 'int'],
      ['source', 'text'],
      ['sha256', 'text'],
      ['domain_count', 'int'],
      ['ca_bundle', 'textOrNull'],
    ],
  },
  trust_domains: {
    key: 'id',
    columns: [
      ['id', 'int'],
      ['list_id', 'int'],
      ['position', 'int'],
      ['name', 'text'],
      ['name_key', 'text'],
      ['description', 'text'],
      ['operator_dn', 'text'],
      ['responsable_contact', 'text'],
      ['support_contact', 'text'],
      ['updated_at', 'int'],
    ],
  },
  mdn_tracking: {
    key: 'id',
    columns: [
      ['id', 'int'],
      ['mailbox_id', 'int'],
      ['track_key', 'text'],
      ['deadline', 'int'],
      ['want_dispatched', 'bool'],
      ['processed_at', 'intOrNull'],
      ['created_at', 'int'],
      ['details', 'bytes'],
    ],
  },
  search_docs: {
    key: 'blob_id',
    columns: [
      ['blob_id', 'int'],
      ['unindexed', 'int'],
      ['filter', 'bytes'],
    ],
  },
  patient_accounts: {
    key: 'mailbox_id',
    columns: [
      ['mailbox_id', 'int'],
      ['created_at', 'int'],
      ['oppose_until', 'int'],
      ['activation_hash', 'textOrNull'],
      ['activation_expires', 'intOrNull'],
      ['activated_at', 'intOrNull'],
      ['opposed_at', 'intOrNull'],
      ['purge_after', 'intOrNull'],
      ['purged_at', 'intOrNull'],
      ['totp', 'bytesOrNull'],
      ['totp_last_step', 'intOrNull'],
    ],
  },
  patient_threads: {
    key: 'id',
    columns: [
      ['id', 'int'],
      ['mailbox_id', 'int'],
      ['thread_key', 'text'],
      ['closed_at', 'intOrNull'],
      ['updated_at', 'int'],
    ],
  },
  patient_thread_messages: {
    key: 'id',
    columns: [
      ['id', 'int'],
      ['mailbox_id', 'int'],
      ['message_key', 'text'],
      ['thread_key', 'text'],
      ['allowed', 'bytes'],
      ['created_at', 'int'],
    ],
  },
  webmail_sessions: {
    key: 'id_hash',
    columns: [
      ['id_hash', 'text'],
      ['mailbox_id', 'int'],
      ['csrf', 'text'],
      ['stage', 'text'],
      ['lang', 'text'],
      ['created_at', 'int'],
      ['last_seen_at', 'int'],
      ['expires_at', 'int'],
    ],
  },
  patient_documents: {
    key: 'id',
    columns: [
      ['id', 'int'],
      ['mailbox_id', 'int'],
      ['source_key', 'text'],
      ['saved_at', 'int'],
      ['details', 'bytes'],
      ['content', 'bytes'],
    ],
  },
};

function perTable<V>(value: (table: ColumnDumpTable) => V): Record<ColumnDumpTable, V> {
  const out = {} as Record<ColumnDumpTable, V>;
  for (const table of COLUMN_DUMP_TABLES) out[table] = value(table);
  return out;
}

/** The columns of each table, in the order of `ColumnDumpRow.values`. */
export const COLUMN_DUMP_COLUMNS: Record<ColumnDumpTable, readonly string[]> = perTable((t) => SPECS[t].columns.map(([c]) => c));

/** The key column of each table (rows are exported in its ascending order). */
export const COLUMN_DUMP_KEY: Record<ColumnDumpTable, string> = perTable((t) => SPECS[t].key);

const NOT_NULL = { intOrNull: 'int', textOrNull: 'text', boolOrNull: 'bool', bytesOrNull: 'bytes' } as const;

function isNull(row: Raw, column: string): boolean {
  return row[column] === null || row[column] === undefined;
}

/** A row read from either engine, each column checked as it is read (`int` and `bool` from the engine). */
export function toColumnDumpRow(table: ColumnDumpTable, row: Raw, { int, bool }: EngineColumns): ColumnDumpRow {
  const read = (column: string, kind: DumpKind): DumpValue => {
    switch (kind) {
      case 'intOrNull':
      case 'textOrNull':
      case 'boolOrNull':
      case 'bytesOrNull':
        if (isNull(row, column)) return null;
        return read(column, NOT_NULL[kind]);
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
