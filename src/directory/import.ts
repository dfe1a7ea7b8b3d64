import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import {
  DIRECTORY_ENTITIES,
  type DirectoryEntity,
  type DirectoryImportSession,
  type DirectoryStore,
  type DirSnapshot,
  type EntityDiff,
  type EntityRecords,
  type SnapshotKind,
} from '../store/directory-types.js';
import { lineBatches, splitLines, withoutCr } from './file-lines.js';
import type { BadRow, FirstPassJob, StagedBatch } from './first-pass.js';
import { DirectoryFileError, LineFields, type Layout } from './formats.js';
import { ParsingThreads } from './parse-thread.js';
import { parseLine } from './row-records.js';
import { needsEscapes, StagedRowsBuilder } from './staged-rows.js';

/**
 * `mss directory import <file>`: streams an extraction file through an import session of the directory store
 * (docs/decisions/0007-directory.md). Memory stays bounded whatever the file's size: lines are read in chunks
 * and handed over in batches.
 *
 * First pass, on a parsing thread of its own (`first-pass.ts`) while this thread stages its batches: every row
 * is parsed and checked; its key, line and content hash are staged (or its full record, while the directory
 * holds nothing of that kind yet). The store then compares keys and hashes with the
 * current snapshot; a second pass reads again only the lines whose record is new or changed and stages their
 * full records; `commit` applies the difference in one unit of work. An unchanged file is thus never written
 * out in full.
 *
 * Bad rows are counted, and the first `maxReportedBadRows` reported with their line number and reason; they
 * do not abort the import. A file whose rows are mostly bad (`maxBadRatio`) is refused as a whole, since
 * importing it would deactivate most of the directory.
 */

export { DirectoryFileError } from './formats.js';

export type { BadRow } from './first-pass.js';

export interface ImportProgress {
  /**
   * `read`: the first pass over the file; `compare`: the store compares what was read with the directory (once);
   * `changes`: reading again the lines that changed; `write`: the store writes the directory (once).
   */
  phase: 'read' | 'compare' | 'changes' | 'write';
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
  /**
   * Threads parsing the first pass when only keys are staged (default: 2, or 1 on a single core), each given at
   * least `bytesPerParsingThread` of the file (default 16 MB).
   */
  parsingThreads?: number;
  bytesPerParsingThread?: number;
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
const DEFAULT_PARSING_THREADS = Math.min(2, availableParallelism());
const BYTES_PER_THREAD = 16 << 20;
const DEFAULT_REPORTED = 1000;
/** Needed line numbers fetched at a time during the second pass. */
const NEEDED_PAGE = 10_000;

/** Stages a batch of the first pass. */
async function stageBatch(session: DirectoryImportSession, staged: readonly StagedBatch[]): Promise<void> {
  for (const { entity, keys, records } of staged) {
    if (keys.count > 0) await session.stageKeys(entity, keys);
    if (records.count > 0) await session.stageRecords(entity, records);
  }
}

export async function importDirectoryFile(directory: DirectoryStore, file: string, options: ImportOptions = {}): Promise<ImportReport> {
  const started = Date.now();
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  const maxReported = options.maxReportedBadRows ?? DEFAULT_REPORTED;
  const maxBadRatio = options.maxBadRatio ?? 0.5;
  const bytesTotal = (await stat(file)).size;

  let session: DirectoryImportSession | null = null;
  let rows = 0;
  let badRowCount = 0;
  const badRows: BadRow[] = [];
  // Each parsing thread reports its first bad rows: the file's first ones are kept once all have arrived.
  const refuse = (line: number, reason: string) => {
    badRowCount++;
    badRows.push({ line, reason });
  };
  const progress = (phase: ImportProgress['phase'], bytesRead: number) =>
    options.onProgress?.({ phase, bytesRead, bytesTotal, rows, badRows: badRowCount, elapsedMs: Date.now() - started });

  const job: FirstPassJob = { file, batchSize, maxReportedBadRows: maxReported };
  const parser = new ParsingThreads(job);
  try {
    // First pass: the parsing threads check every row and encode what is staged; this thread stages it.
    let layout: Layout | null = null;
    let digest: string | null = null;
    const bytesRead: number[] = [];
    for (let ended = 0; ended < parser.parts; ) {
      const { part, message: m } = await parser.next();
      if (m.type === 'end') {
        ended++;
        if (part === 0) digest = m.sha256;
      } else if (m.type === 'layout') {
        const l = (layout = m.layout);
        const s = await directory.beginImport({ kind: l.format, sourceName: path.basename(file) });
        session = s;
        const begin = { type: 'begin', stagesAll: DIRECTORY_ENTITIES.filter((e) => s.stagesAll(e)), format: s.stagingFormat } as const;
        // Staging only keys leaves this thread mostly idle: a second parsing thread takes the second half of a
        // large file. Staging full records (a first load) keeps it busy: another thread would compete with it
        // for the two cores (a first import of a million mailboxes took 20 % longer with it).
        const threads = begin.stagesAll.length > 0 ? 1 : Math.min(options.parsingThreads ?? DEFAULT_PARSING_THREADS, Math.floor(bytesTotal / (options.bytesPerParsingThread ?? BYTES_PER_THREAD)));
        const parts = threads > 1 ? await splitLines(file, bytesTotal, threads) : [{ start: 0, lines: 0 }];
        // Each part's thread stops at the line before the next part.
        const beginPart = (i: number) => (i + 1 < parts.length ? { ...begin, lastLine: parts[i + 1]!.lines } : begin);
        parser.send(0, beginPart(0));
        for (let i = 1; i < parts.length; i++) parser.add({ ...job, part: { ...parts[i]!, layout: l, begin: beginPart(i) } });
      } else if (m.type === 'batch' && session !== null) {
        await stageBatch(session, m.staged);
        parser.send(part, { type: 'ack' });
        rows += m.rows;
        badRowCount += m.badRowCount;
        badRows.push(...m.badRows);
        bytesRead[part] = m.bytesRead;
        progress('read', bytesRead.reduce((a, b) => a + b, 0));
      } else {
        throw new Error(`parsing thread: unexpected ${m.type}`);
      }
    }
    await parser.terminate();
    const l = layout;
    const s = session;
    if (l === null || s === null) throw new DirectoryFileError('the file is empty: no header line');
    const sourceSha256 = digest;
    if (sourceSha256 === null) throw new Error('parsing thread: no digest of the file');

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
    progress('compare', bytesTotal);
    const needed = await s.neededLines(0, NEEDED_PAGE);
    if (needed.length > 0) {
      const again = await stageChangedLines(s, file, l, { needed, batchSize }, (bytesRead) => progress('changes', bytesRead));
      if (again !== sourceSha256) throw new DirectoryFileError('the file changed while it was being imported: nothing changed');
    }

    progress('write', bytesTotal);
    const outcome = await s.commit({ rowsTotal: rows, rowsBad: badRowCount, sourceSha256 });
    badRows.sort((a, b) => a.line - b.line);
    badRows.length = Math.min(badRows.length, maxReported);
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
    await parser.terminate();
    // The session records the failure; the directory keeps its previous snapshot.
    if (session) await session.abort(err instanceof Error ? err.message : String(err));
    throw err;
  }
}

type NeededLines = Awaited<ReturnType<DirectoryImportSession['neededLines']>>;

/**
 * The second pass: reads the file again and stages the full records of the lines `neededLines` lists (on this
 * thread: they are the changed rows only). Returns the file's SHA-256, which must be the first pass's.
 */
async function stageChangedLines(
  session: DirectoryImportSession,
  file: string,
  layout: Layout,
  { needed: firstPage, batchSize }: { needed: NeededLines; batchSize: number },
  onBatch: (bytesRead: number) => void,
): Promise<string> {
  const sha256 = createHash('sha256');
  const builders = new Map<DirectoryEntity, StagedRowsBuilder<DirectoryEntity>>();
  const builder = (e: DirectoryEntity) => {
    let b = builders.get(e);
    if (!b) builders.set(e, (b = new StagedRowsBuilder(e, session.stagingFormat)));
    return b;
  };
  const flush = async () => {
    for (const [entity, b] of builders) {
      const { records } = b.take();
      if (records.count > 0) await session.stageRecords(entity, records);
    }
  };
  const fields = new LineFields();
  let needed = firstPage;
  let next = 0;
  let bytesRead = 0;
  let lineNo = 0;
  let inBatch = 0;
  for await (const lines of lineBatches(file, (chunk) => {
    bytesRead += chunk.length;
    sha256.update(chunk);
  })) {
    for (const raw of lines) {
      lineNo++;
      const want = needed[next];
      if (!want || want.line !== lineNo) continue;
      const line = withoutCr(raw);
      const parsed = parseLine(layout, fields, line);
      if (!parsed.ok) throw new DirectoryFileError(`line ${lineNo} changed while it was being imported: nothing changed`);
      const escape = needsEscapes(line);
      for (const entity of want.entities) {
        const record = parsed.records[entity];
        if (record) builder(entity).addRecord(lineNo, record as EntityRecords[DirectoryEntity], escape);
      }
      if (++next >= needed.length) {
        needed = await session.neededLines(lineNo, NEEDED_PAGE);
        next = 0;
      }
      if (++inBatch >= batchSize) {
        await flush();
        inBatch = 0;
        onBatch(bytesRead);
      }
    }
  }
  await flush();
  onBatch(bytesRead);
  return sha256.digest('hex');
}
