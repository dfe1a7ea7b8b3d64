import {
  CHANGE_KINDS,
  DIRECTORY_ENTITIES,
  DIRECTORY_MAILBOX_TYPES,
  ENTITY_SPECS,
  SNAPSHOT_KINDS,
  SNAPSHOT_STATUSES,
  type ColumnKind,
  type DirCertificate,
  type DirChange,
  type DirectoryEntity,
  type DirSnapshot,
  type EntityDiff,
  type EntityRows,
  type EntitySpec,
} from './directory-types.js';
import { CorruptRowError, type EngineColumns, type Raw } from './rows.js';

/**
 * Directory rows are a boundary like every store row: each column is checked as it is read. The mapping is
 * generated from `ENTITY_SPECS`, the same for both engines; each engine supplies its integer and boolean readers.
 */

function text(row: Raw, column: string): string {
  const v = row[column];
  if (typeof v === 'string') return v;
  throw new CorruptRowError(`column ${column}: expected text`);
}

function isNull(row: Raw, column: string): boolean {
  return row[column] === null || row[column] === undefined;
}

function oneOf<T extends string>(value: string, column: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new CorruptRowError(`column ${column}: unexpected value ${JSON.stringify(value)}`);
}

function bytes(row: Raw, column: string): Buffer {
  const v = row[column];
  if (Buffer.isBuffer(v)) return v;
  throw new CorruptRowError(`column ${column}: expected binary data`);
}

const DIFF_FIELDS = ['added', 'removed', 'changed', 'unchanged'] as const;

function parseDiff(json: string): DirSnapshot['diff'] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new CorruptRowError('column diff: not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new CorruptRowError('column diff: expected an object');
  const out: DirSnapshot['diff'] = {};
  for (const [entity, value] of Object.entries(parsed)) {
    const e = oneOf(entity, 'diff', DIRECTORY_ENTITIES);
    if (typeof value !== 'object' || value === null) throw new CorruptRowError('column diff: expected counts');
    const counts = value as Record<string, unknown>;
    const diff = {} as EntityDiff;
    for (const f of DIFF_FIELDS) {
      const n = counts[f];
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new CorruptRowError(`column diff: ${entity}.${f} is not a count`);
      diff[f] = n;
    }
    out[e] = diff;
  }
  return out;
}

export function directoryRowReaders({ int, bool }: EngineColumns) {
  const read = (row: Raw, column: string, kind: ColumnKind): unknown => {
    switch (kind) {
      case 'text':
        return text(row, column);
      case 'textOrNull':
        return isNull(row, column) ? null : text(row, column);
      case 'int':
        return int(row, column);
      case 'bool':
        return bool(row, column);
      case 'boolOrNull':
        return isNull(row, column) ? null : bool(row, column);
    }
  };

  function toEntity<E extends DirectoryEntity>(entity: E, row: Raw): EntityRows[E] {
    const spec = ENTITY_SPECS[entity] as EntitySpec<DirectoryEntity>;
    const out: Record<string, unknown> = {};
    for (const c of spec.columns) out[c.field] = read(row, c.column, c.kind);
    if (entity === 'mailbox') oneOf(out.type as string, 'type', DIRECTORY_MAILBOX_TYPES);
    out.active = bool(row, 'active');
    out.addedSnapshot = int(row, 'added_snapshot');
    out.changedSnapshot = int(row, 'changed_snapshot');
    out.removedSnapshot = isNull(row, 'removed_snapshot') ? null : int(row, 'removed_snapshot');
    // Every field of the entity was read and checked above, from the spec that defines the record type.
    return out as unknown as EntityRows[E];
  }

  function toSnapshot(row: Raw): DirSnapshot {
    return {
      id: int(row, 'id'),
      kind: oneOf(text(row, 'kind'), 'kind', SNAPSHOT_KINDS),
      status: oneOf(text(row, 'status'), 'status', SNAPSHOT_STATUSES),
      baseId: isNull(row, 'base_id') ? null : int(row, 'base_id'),
      sourceName: text(row, 'source_name'),
      sourceSha256: isNull(row, 'source_sha256') ? null : text(row, 'source_sha256'),
      startedAt: int(row, 'started_at'),
      finishedAt: isNull(row, 'finished_at') ? null : int(row, 'finished_at'),
      rowsTotal: int(row, 'rows_total'),
      rowsBad: int(row, 'rows_bad'),
      diff: parseDiff(text(row, 'diff')),
      error: isNull(row, 'error') ? null : text(row, 'error'),
    };
  }

  function toChange(row: Raw): DirChange {
    return {
      snapshotId: int(row, 'snapshot_id'),
      entity: oneOf(text(row, 'entity'), 'entity', DIRECTORY_ENTITIES),
      key: text(row, 'key'),
      change: oneOf(text(row, 'change'), 'change', CHANGE_KINDS),
    };
  }

  function toCertificate(row: Raw): DirCertificate {
    return {
      fingerprint: text(row, 'fingerprint'),
      ownerId: text(row, 'owner_id'),
      serial: text(row, 'serial'),
      subject: text(row, 'subject'),
      issuer: text(row, 'issuer'),
      notBefore: int(row, 'not_before'),
      notAfter: int(row, 'not_after'),
      der: bytes(row, 'der'),
      addedAt: int(row, 'added_at'),
    };
  }

  return { toEntity, toSnapshot, toChange, toCertificate, readInt: int };
}
