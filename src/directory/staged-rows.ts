import {
  ENTITY_SPECS,
  type ColumnKind,
  type DirectoryEntity,
  type EntityRecords,
  type EntitySpec,
  type StagedRows,
  type StagedValue,
  type StagingFormat,
} from '../store/directory-types.js';

/** Builds batches of `StagedRows`, in the format the import session asks for, for the staging of an import. */

const COPY_SPECIAL = /[\\\t\n\r]/;
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

function copyText(text: string): string {
  return COPY_SPECIAL.test(text) ? text.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c]!) : text;
}

/**
 * Whether a source line holds a character COPY escapes. When it does not (nearly always), no value of its records
 * does either (they are cut from it, or folded to letters, digits and spaces), and none is searched for one.
 */
export function needsEscapes(line: string): boolean {
  return COPY_SPECIAL.test(line);
}

function copyValue(v: unknown, kind: ColumnKind, escape: boolean): string {
  if (v === null || v === undefined) return '\\N';
  switch (kind) {
    case 'text':
    case 'textOrNull':
      return escape ? copyText(v as string) : (v as string);
    case 'int':
      return String(v);
    case 'bool':
    case 'boolOrNull':
      return v ? 't' : 'f';
  }
}

function boundValue(v: unknown, kind: ColumnKind): StagedValue {
  if (v === null || v === undefined) return null;
  return kind === 'bool' || kind === 'boolOrNull' ? (v ? 1 : 0) : (v as string | number);
}

const STAGED_COLUMNS = Object.fromEntries(
  (Object.keys(ENTITY_SPECS) as DirectoryEntity[]).map((e) => {
    const spec = ENTITY_SPECS[e] as EntitySpec<DirectoryEntity>;
    return [e, { fields: spec.columns.map((c) => c.field as string), kinds: spec.columns.map((c) => c.kind) }];
  }),
) as Record<DirectoryEntity, { fields: string[]; kinds: ColumnKind[] }>;

/** Values per staged key: key, line, hash. */
const KEY_WIDTH = 3;

/**
 * One entity's rows of the current batch: keys (with line and hash) and full records.
 *
 * With `reuse`, the `values` arrays `take` returns are filled again by the next batch: for a caller that copies
 * them at once (the parsing thread posts them, and posting clones). They are written by index, in order, so they
 * stay packed (V8 posts an array with holes element by element, about three times slower), and once grown they
 * are not grown again: a million mailboxes took the parsing thread 2.5 s pushed value by value into new arrays.
 */
export class StagedRowsBuilder<E extends DirectoryEntity> {
  #keyText = '';
  #keyValues: StagedValue[] = [];
  #keyCount = 0;
  #recordText = '';
  #recordValues: StagedValue[] = [];
  #recordCount = 0;
  readonly #fields: string[];
  readonly #kinds: ColumnKind[];

  constructor(
    readonly entity: E,
    readonly format: StagingFormat,
    private readonly reuse = false,
  ) {
    ({ fields: this.#fields, kinds: this.#kinds } = STAGED_COLUMNS[entity]);
  }

  /** `escape`: whether the source line `needsEscapes`. */
  addKey(key: string, line: number, hash: number, escape: boolean): void {
    if (this.format === 'copy') {
      this.#keyText += `${escape ? copyText(key) : key}\t${line}\t${hash}\n`;
    } else {
      const out = this.#keyValues;
      const at = this.#keyCount * KEY_WIDTH;
      out[at] = key;
      out[at + 1] = line;
      out[at + 2] = hash;
    }
    this.#keyCount++;
  }

  addRecord(line: number, record: EntityRecords[E], escape: boolean): void {
    const values = record as unknown as Record<string, unknown>;
    const fields = this.#fields;
    const kinds = this.#kinds;
    if (this.format === 'copy') {
      let row = String(line);
      for (let i = 0; i < fields.length; i++) row += `\t${copyValue(values[fields[i]!], kinds[i]!, escape)}`;
      this.#recordText += `${row}\n`;
    } else {
      const out = this.#recordValues;
      let at = this.#recordCount * (fields.length + 1);
      out[at++] = line;
      for (let i = 0; i < fields.length; i++) out[at++] = boundValue(values[fields[i]!], kinds[i]!);
    }
    this.#recordCount++;
  }

  /** The rows added since the last call, and starts afresh. */
  take(): { keys: StagedRows; records: StagedRows } {
    // A reused array may hold more values, from a larger batch before.
    this.#keyValues.length = this.#keyCount * KEY_WIDTH;
    this.#recordValues.length = this.#recordCount * (this.#fields.length + 1);
    const out =
      this.format === 'copy'
        ? { keys: { count: this.#keyCount, format: 'copy', text: this.#keyText }, records: { count: this.#recordCount, format: 'copy', text: this.#recordText } }
        : { keys: { count: this.#keyCount, format: 'values', values: this.#keyValues }, records: { count: this.#recordCount, format: 'values', values: this.#recordValues } };
    this.#keyText = '';
    this.#keyCount = 0;
    this.#recordText = '';
    this.#recordCount = 0;
    if (!this.reuse) {
      this.#keyValues = [];
      this.#recordValues = [];
    }
    return out as { keys: StagedRows; records: StagedRows };
  }
}
