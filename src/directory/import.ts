import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import {
  ENTITIES_OF_KIND,
  type DirectoryEntity,
  type DirectoryImportSession,
  type DirectoryStore,
  type DirSnapshot,
  type EntityDiff,
  type EntityRecords,
  type SnapshotKind,
  type Staged,
} from '../store/directory-types.js';
import { detectLayout, DirectoryFileError, LineFields, mssRow, psRow, type Layout, type PsWanted } from './formats.js';
import { detach } from './normalize.js';

/**
 * `mss directory import <file>`: streams an extraction file through an import session of the directory store
 * (docs/decisions/0007-directory.md). Memory stays bounded whatever the file's size: lines are read in chunks
 * and handed over in batches.
 *
 * First pass: every row is parsed and checked; its key, line and content hash are staged (and its full record
 * too while the directory holds nothing of that kind yet). The store then compares keys and hashes with the
 * current snapshot; a second pass reads again only the lines whose record is new or changed and stages their
 * full records; `commit` applies the difference in one unit of work. An unchanged file is thus never written
 * out in full.
 *
 * Bad rows are counted, and the first `maxReportedBadRows` reported with their line number and reason; they
 * do not abort the import. A file whose rows are mostly bad (`maxBadRatio`) is refused as a whole, since
 * importing it would deactivate most of the directory.
 */

export { DirectoryFileError } from './formats.js';

export interface BadRow {
  line: number;
  reason: string;
}

export interface ImportProgress {
  /** `read`: the first pass over the file; `changes`: reading again the lines that changed. */
  phase: 'read' | 'changes';
  bytesRead: number;
  bytesTotal: number;
  rows: number;
  badRows: number;
  elapsedMs: number;
}

export interface ImportOptions {
  /** Called after each batch (and once at the end of the file). */
  onProgress?: (progress: ImportProgress) => void;
  /** Lines per batch handed to the store. */
  batchSize?: number;
  maxReportedBadRows?: number;
  /** Refuse the file when more than this share of its rows are bad (default 0.5). */
  maxBadRatio?: number;
}

export interface ImportReport {
  file: string;
  format: SnapshotKind;
  snapshot: DirSnapshot;
  initial: boolean;
  diff: Partial<Record<DirectoryEntity, EntityDiff>>;
  rows: number;
  badRowCount: number;
  /** The first bad rows, by line. */
  badRows: BadRow[];
  elapsedMs: number;
  rowsPerSecond: number;
}

const DEFAULT_BATCH = 2000;
/** Longest line accepted (extraction lines are a few hundred characters). */
const MAX_LINE_CHARS = 1 << 20;
const DEFAULT_REPORTED = 1000;
/** Needed line numbers fetched at a time during the second pass. */
const NEEDED_PAGE = 10_000;
/**
 * Keys remembered to skip repeated practitioners and structures in the same file (bounded memory; a repeat
 * past the limit is deduplicated by the store). A practitioner's rows follow each other; a structure's do not.
 */
const SEEN_PRACTITIONERS = 20_000;
const SEEN_STRUCTURES = 200_000;

/** Lines of a file, in batches (one per chunk read), with the bytes read so far. LF or CRLF. */
async function* lineBatches(file: string, onChunk: (chunk: Buffer) => void): AsyncGenerator<string[]> {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 18 })) {
    const buffer = chunk as Buffer;
    onChunk(buffer);
    const text = rest + decoder.write(buffer);
    const lines = text.split('\n');
    rest = lines.pop() ?? '';
    // Memory stays bounded even for a file without line breaks.
    if (rest.length > MAX_LINE_CHARS) throw new DirectoryFileError(`a line is longer than ${MAX_LINE_CHARS} characters: not a directory extraction`);
    yield lines;
  }
  const tail = rest + decoder.end();
  if (tail !== '') yield [tail];
}

/** A line of nothing but whitespace (as `trim` sees it), checked without trimming the usual line. */
function blank(line: string): boolean {
  if (line.length === 0) return true;
  const first = line.charCodeAt(0);
  return !(first > 32 && first < 127) && line.trim() === '';
}

/** Bounded memory of the keys already staged (cleared when full: a later repeat is then deduplicated by the store). */
class Seen {
  #keys = new Set<string>();
  /** The key added last: consecutive repeats (a practitioner's rows) are told without hashing. */
  #last = '';

  constructor(private readonly limit: number) {}

  has(key: string): boolean {
    return key === this.#last || this.#keys.has(key);
  }

  add(key: string): void {
    if (this.#keys.size >= this.limit) this.#keys.clear();
    this.#last = detach(key);
    this.#keys.add(this.#last);
  }
}

interface Batch<E extends DirectoryEntity> {
  entity: E;
  key(record: EntityRecords[E]): string;
  keys: string[];
  lines: number[];
  hashes: number[];
  records: Staged<E>[];
}

function batch<E extends DirectoryEntity>(entity: E, key: (r: EntityRecords[E]) => string): Batch<E> {
  return { entity, key, keys: [], lines: [], hashes: [], records: [] };
}

/** Files one row's record: in full when the session stages everything now (it stands for its key), else its key. */
function take<E extends DirectoryEntity>(session: DirectoryImportSession, b: Batch<E>, line: number, record: EntityRecords[E]): void {
  if (session.stagesAll(b.entity)) {
    b.records.push({ line, record });
    return;
  }
  b.keys.push(b.key(record));
  b.lines.push(line);
  b.hashes.push(record.hash);
}

async function flushBatch<E extends DirectoryEntity>(session: DirectoryImportSession, b: Batch<E>): Promise<void> {
  if (b.keys.length > 0) await session.stageKeys(b.entity, b.keys, b.lines, b.hashes);
  if (b.records.length > 0) await session.stageRecords(b.entity, b.records);
  b.keys = [];
  b.lines = [];
  b.hashes = [];
  b.records = [];
}

/** A parsed row: the records of each entity it holds. */
type RowRecords = { [E in DirectoryEntity]?: EntityRecords[E] };

export async function importDirectoryFile(directory: DirectoryStore, file: string, options: ImportOptions = {}): Promise<ImportReport> {
  const started = Date.now();
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  const maxReported = options.maxReportedBadRows ?? DEFAULT_REPORTED;
  const maxBadRatio = options.maxBadRatio ?? 0.5;
  const bytesTotal = (await stat(file)).size;

  // Set by the first pass when it reads the header (a holder, since closures assign them).
  const state: { layout: Layout | null; session: DirectoryImportSession | null } = { layout: null, session: null };
  let rows = 0;
  let badRowCount = 0;
  const badRows: BadRow[] = [];
  const refuse = (line: number, reason: string) => {
    badRowCount++;
    if (badRows.length < maxReported) badRows.push({ line, reason });
  };
  const seenPractitioners = new Seen(SEEN_PRACTITIONERS);
  const seenOrganisations = new Seen(SEEN_STRUCTURES);

  const fields = new LineFields();
  /** The records of a data line, or the reason it is bad (in the first pass, only the records `unseen` asks for). */
  const parse = (l: Layout, line: string, firstPass: boolean): { ok: true; records: RowRecords } | { ok: false; reason: string } => {
    // PostgreSQL text cannot hold U+0000, and no extraction has one: a broken line.
    if (line.includes('\0')) return { ok: false, reason: 'a NUL character in the line' };
    fields.set(line);
    if (l.format === 'mss') {
      const r = mssRow(fields, l, firstPass ? unseen.searchKeys.mailbox : true);
      return r.ok ? { ok: true, records: { mailbox: r.value } } : r;
    }
    const r = firstPass ? psRow(fields, l, unseen) : psRow(fields, l);
    if (!r.ok) return r;
    return { ok: true, records: { practitioner: r.value.practitioner ?? undefined, activity: r.value.activity, organisation: r.value.organisation ?? undefined } };
  };
  /**
   * In the first pass, a practitioner's or structure's record is built for its first line only, and names are
   * folded into search keys only for the records staged in full (set once the session has begun).
   */
  const unseen: PsWanted & { searchKeys: { mailbox: boolean } } = {
    practitioner: (idNatPs) => !seenPractitioners.has(idNatPs),
    organisation: (idNatStruct) => !seenOrganisations.has(idNatStruct),
    searchKeys: { mailbox: true, practitioner: true, organisation: true },
  };

  const batches = {
    mailbox: batch('mailbox', (r) => r.address),
    practitioner: batch('practitioner', (r) => r.idNatPs),
    activity: batch('activity', (r) => r.activityKey),
    organisation: batch('organisation', (r) => r.idNatStruct),
  };
  const flushAll = async (s: DirectoryImportSession) => {
    for (const b of Object.values(batches)) await flushBatch(s, b as Batch<DirectoryEntity>);
  };

  /** Reads the file, line by line, in batches; returns its SHA-256. */
  /** `onLine` says whether the line counts towards the batch; it returns a promise only when it must wait. */
  const readFile = async (phase: ImportProgress['phase'], onLine: (lineNo: number, line: string) => boolean | Promise<boolean>) => {
    const sha256 = createHash('sha256');
    let bytesRead = 0;
    let lineNo = 0;
    let inBatch = 0;
    for await (const lines of lineBatches(file, (chunk) => {
      bytesRead += chunk.length;
      sha256.update(chunk);
    })) {
      for (const raw of lines) {
        lineNo++;
        const counted = onLine(lineNo, raw.endsWith('\r') ? raw.slice(0, -1) : raw);
        if (typeof counted === 'boolean' ? counted : await counted) inBatch++;
        if (inBatch >= batchSize) {
          await flushAll(state.session!);
          inBatch = 0;
          options.onProgress?.({ phase, bytesRead, bytesTotal, rows, badRows: badRowCount, elapsedMs: Date.now() - started });
        }
      }
    }
    if (state.session) await flushAll(state.session);
    options.onProgress?.({ phase, bytesRead, bytesTotal, rows, badRows: badRowCount, elapsedMs: Date.now() - started });
    return sha256.digest('hex');
  };

  try {
    // First pass: check every row, stage its keys and hashes.
    const digest = await readFile('read', (lineNo, line) => {
      if (state.layout === null) {
        const layout = detectLayout(line);
        state.layout = layout;
        return directory.beginImport({ kind: layout.format, sourceName: path.basename(file) }).then((session) => {
          state.session = session;
          for (const entity of ['mailbox', 'practitioner', 'organisation'] as const) {
            unseen.searchKeys[entity] = ENTITIES_OF_KIND[layout.format].includes(entity) && session.stagesAll(entity);
          }
          return false;
        });
      }
      if (blank(line)) return false;
      rows++;
      const parsed = parse(state.layout, line, true);
      if (!parsed.ok) {
        refuse(lineNo, parsed.reason);
        return true;
      }
      const s = state.session!;
      const { mailbox, practitioner, activity, organisation } = parsed.records;
      if (mailbox) take(s, batches.mailbox, lineNo, mailbox);
      // A practitioner's rows (one per activity) and a structure's follow each other: stage each key once (the
      // records were built only for keys not seen yet).
      if (practitioner) {
        seenPractitioners.add(practitioner.idNatPs);
        take(s, batches.practitioner, lineNo, practitioner);
      }
      if (activity) take(s, batches.activity, lineNo, activity);
      if (organisation) {
        seenOrganisations.add(organisation.idNatStruct);
        take(s, batches.organisation, lineNo, organisation);
      }
      return true;
    });
    const l = state.layout;
    const s = state.session;
    if (l === null || s === null) throw new DirectoryFileError('the file is empty: no header line');

    // A mailbox address listed twice: the first line wins, the later ones are reported.
    if (l.format === 'mss') {
      const dup = await s.duplicates('mailbox', maxReported);
      for (const d of dup.sample) refuse(d.line, `duplicate Adresse BAL (first at line ${d.firstLine}): ignored`);
      badRowCount += dup.total - dup.sample.length;
    }
    const good = rows - badRowCount;
    if (rows > 0 && (good <= 0 || badRowCount / rows > maxBadRatio)) {
      throw new DirectoryFileError(
        `${badRowCount} of ${rows} rows are bad (more than ${Math.round(maxBadRatio * 100)}%): the file was refused and nothing changed`,
      );
    }

    // Second pass, only if something changed: the full records of the lines the directory lacks.
    let needed = await s.neededLines(0, NEEDED_PAGE);
    if (needed.length > 0) {
      let next = 0;
      const again = await readFile('changes', (lineNo, line) => {
        const want = needed[next];
        if (!want || want.line !== lineNo) return false;
        const parsed = parse(l, line, false);
        if (!parsed.ok) throw new DirectoryFileError(`line ${lineNo} changed while it was being imported: nothing changed`);
        for (const entity of want.entities) {
          const record = parsed.records[entity];
          if (record) (batches[entity] as Batch<DirectoryEntity>).records.push({ line: lineNo, record: record as EntityRecords[DirectoryEntity] });
        }
        if (++next < needed.length) return true;
        return s.neededLines(lineNo, NEEDED_PAGE).then((page) => {
          needed = page;
          next = 0;
          return true;
        });
      });
      if (again !== digest) throw new DirectoryFileError('the file changed while it was being imported: nothing changed');
    }

    const outcome = await s.commit({ rowsTotal: rows, rowsBad: badRowCount, sourceSha256: digest });
    badRows.sort((a, b) => a.line - b.line);
    const elapsedMs = Date.now() - started;
    return {
      file,
      format: l.format,
      snapshot: outcome.snapshot,
      initial: outcome.initial,
      diff: outcome.diff,
      rows,
      badRowCount,
      badRows,
      elapsedMs,
      rowsPerSecond: Math.round((rows * 1000) / Math.max(1, elapsedMs)),
    };
  } catch (err) {
    // The session records the failure; the directory keeps its previous snapshot.
    if (state.session) await state.session.abort(err instanceof Error ? err.message : String(err));
    throw err;
  }
}
