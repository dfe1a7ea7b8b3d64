import type { DirectoryEntity, EntityRecords } from '../store/directory-types.js';
import { LineFields, mssRow, psRow, type Layout, type PsWanted } from './formats.js';

/** A parsed row: the records of each entity it holds. */
export type RowRecords = { [E in DirectoryEntity]?: EntityRecords[E] };

export type ParsedLine = { ok: true; records: RowRecords } | { ok: false; reason: string };

/** Which records of a row to build, and whether to fold their names into search keys (`PsWanted`). */
export type Wanted = PsWanted & { searchKeys: { mailbox: boolean } };

/**
 * The records of a data line, or the reason it is bad. `fields` is reused from line to line; without `wanted`,
 * every record is built in full.
 */
export function parseLine(layout: Layout, fields: LineFields, line: string, wanted?: Wanted): ParsedLine {
  // PostgreSQL text cannot hold U+0000, and no extraction has one: a broken line.
  if (line.includes('\0')) return { ok: false, reason: 'a NUL character in the line' };
  fields.set(line);
  if (layout.format === 'mss') {
    const r = mssRow(fields, layout, wanted ? wanted.searchKeys.mailbox : true);
    return r.ok ? { ok: true, records: { mailbox: r.value } } : r;
  }
  const r = wanted ? psRow(fields, layout, wanted) : psRow(fields, layout);
  if (!r.ok) return r;
  return { ok: true, records: { practitioner: r.value.practitioner ?? undefined, activity: r.value.activity, organisation: r.value.organisation ?? undefined } };
}
