import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { ENTITIES_OF_KIND, type DirectoryEntity, type EntityRecords, type StagedRows, type StagingFormat } from '../store/directory-types.js';
import { blank, lineBatches, withoutCr, type ReadWindow } from './file-lines.js';
import { detectLayout, DirectoryFileError, LineFields, type Layout } from './formats.js';
import { detach } from './normalize.js';
import { parseLine, type Wanted } from './row-records.js';
import { needsEscapes, StagedRowsBuilder } from './staged-rows.js';

/**
 * The first pass of an import (docs/decisions/0007-directory.md), run on the parsing thread (`parse-worker.ts`):
 * reads the file, checks every row and encodes what the import session stages — every key with its line and
 * hash, or, for an entity the session `stagesAll`, every full record — in batches of `StagedRows`. The main
 * thread stages one batch while this thread parses the next ones; it acknowledges each batch staged, and at
 * most `MAX_UNACKNOWLEDGED` wait (bounded memory).
 *
 * The conversation: the parser reads the header and sends `layout`; the main thread begins the import session
 * and answers `begin` (which entities it stages in full); then `batch` after `batch` (the last one when the
 * file ends, possibly empty), and `end` with the file's SHA-256. A failure is sent as `failed`.
 *
 * The second half of a large file may be parsed by a thread of its own (`import.ts` says when): `begin` then
 * tells the first thread the last line of its part, and the other thread's job names its part (its first byte and
 * the number of lines before it) and the import's `begin`; that thread sends neither `layout` nor a digest. The
 * first thread, done with its part, reads the rest of the file to hash it.
 */

export interface FirstPassJob {
  file: string;
  /** Data lines per batch. */
  batchSize: number;
  /** Bad rows reported with their line and reason (all of them are counted). */
  maxReportedBadRows: number;
  /**
   * A later part of the file, from byte `start` (a line's first) to the end, after `lines` lines, and what the
   * first thread learnt from `layout` and `begin`.
   */
  part?: { start: number; lines: number; layout: Layout; begin: Begin };
}

export interface BadRow {
  line: number;
  reason: string;
}

export interface StagedBatch {
  entity: DirectoryEntity;
  keys: StagedRows;
  records: StagedRows;
}

export type ParserMessage =
  | { type: 'layout'; layout: Layout }
  | { type: 'batch'; bytesRead: number; rows: number; badRowCount: number; badRows: BadRow[]; staged: StagedBatch[] }
  /** `sha256`: of the whole file, from the first thread; null from a later part's. */
  | { type: 'end'; sha256: string | null }
  | { type: 'failed'; message: string; fileError: boolean };

/** `lastLine`: of the first thread's part, when a later part has a thread of its own. */
type Begin = { type: 'begin'; stagesAll: DirectoryEntity[]; format: StagingFormat; lastLine?: number };
export type ParserCommand = Begin | { type: 'ack' };

/** Batches sent and not yet acknowledged by the main thread, at most. */
export const MAX_UNACKNOWLEDGED = 4;

/**
 * Keys remembered to skip repeated practitioners and structures in the same file (bounded memory; a repeat
 * past the limit is deduplicated by the store). A practitioner's rows follow each other; a structure's do not.
 */
const SEEN_PRACTITIONERS = 20_000;
const SEEN_STRUCTURES = 200_000;

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

const KEY_OF: { [E in DirectoryEntity]: (record: EntityRecords[E]) => string } = {
  mailbox: (r) => r.address,
  practitioner: (r) => r.idNatPs,
  activity: (r) => r.activityKey,
  organisation: (r) => r.idNatStruct,
};

export async function firstPass(job: FirstPassJob, post: (message: ParserMessage) => void, next: () => Promise<ParserCommand>): Promise<void> {
  const sha256 = createHash('sha256');
  let bytesRead = 0;
  let lineNo = 0;
  let layout: Layout | null = null;
  let stagesAll: ReadonlySet<DirectoryEntity> = new Set();
  let builders: { [E in DirectoryEntity]: StagedRowsBuilder<E> } | null = null;
  const seenPractitioners = new Seen(SEEN_PRACTITIONERS);
  const seenOrganisations = new Seen(SEEN_STRUCTURES);
  // A practitioner's or structure's record is built for its first line only, and names are folded into search
  // keys only for the records staged in full (a comparison needs keys and hashes; search keys are not hashed).
  const wanted: Wanted = {
    practitioner: (idNatPs) => !seenPractitioners.has(idNatPs),
    organisation: (idNatStruct) => !seenOrganisations.has(idNatStruct),
    searchKeys: { mailbox: true, practitioner: true, organisation: true },
  };
  let escape = false;
  let copyFormat = false;
  const take = <E extends DirectoryEntity>(entity: E, line: number, record: EntityRecords[E]) => {
    const b = builders![entity] as StagedRowsBuilder<E>;
    if (stagesAll.has(entity)) b.addRecord(line, record, escape);
    else b.addKey(KEY_OF[entity](record), line, record.hash, escape);
  };

  let rows = 0;
  let badRowCount = 0;
  let badRows: BadRow[] = [];
  let reported = 0;
  let unacknowledged = 0;
  const flush = async () => {
    // The builders' arrays are filled again after this: posting copies them.
    const staged: StagedBatch[] = [];
    for (const b of Object.values(builders!)) {
      const { keys, records } = b.take();
      if (keys.count > 0 || records.count > 0) staged.push({ entity: b.entity, keys, records });
    }
    post({ type: 'batch', bytesRead, rows, badRowCount, badRows, staged });
    rows = 0;
    badRowCount = 0;
    badRows = [];
    unacknowledged++;
    while (unacknowledged >= MAX_UNACKNOWLEDGED) {
      if ((await next()).type === 'ack') unacknowledged--;
    }
  };

  const window: ReadWindow = { start: job.part?.start ?? 0, read: 0 };
  let lastLine = Infinity;
  const begin = (command: ParserCommand, fileLayout: Layout) => {
    if (command.type !== 'begin') throw new Error(`parsing thread: ${command.type} before begin`);
    layout = fileLayout;
    lastLine = command.lastLine ?? Infinity;
    stagesAll = new Set(command.stagesAll);
    copyFormat = command.format === 'copy';
    builders = {
      mailbox: new StagedRowsBuilder('mailbox', command.format, true),
      practitioner: new StagedRowsBuilder('practitioner', command.format, true),
      activity: new StagedRowsBuilder('activity', command.format, true),
      organisation: new StagedRowsBuilder('organisation', command.format, true),
    };
    for (const entity of ['mailbox', 'practitioner', 'organisation'] as const) {
      wanted.searchKeys[entity] = ENTITIES_OF_KIND[fileLayout.format].includes(entity) && stagesAll.has(entity);
    }
  };
  if (job.part) {
    lineNo = job.part.lines;
    begin(job.part.begin, job.part.layout);
  }
  const hashing = !job.part;

  const fields = new LineFields();
  const onChunk = (chunk: Buffer) => {
    bytesRead += chunk.length;
    if (hashing) sha256.update(chunk);
  };
  read: for await (const lines of lineBatches(job.file, onChunk, window)) {
    for (const raw of lines) {
      if (lineNo === lastLine) break read;
      lineNo++;
      const line = withoutCr(raw);
      if (layout === null) {
        const detected = detectLayout(line);
        post({ type: 'layout', layout: detected });
        begin(await next(), detected);
        continue;
      }
      if (blank(line)) continue;
      rows++;
      const parsed = parseLine(layout, fields, line, wanted);
      if (!parsed.ok) {
        badRowCount++;
        if (reported++ < job.maxReportedBadRows) badRows.push({ line: lineNo, reason: parsed.reason });
      } else {
        escape = copyFormat && needsEscapes(line);
        const { mailbox, practitioner, activity, organisation } = parsed.records;
        if (mailbox) take('mailbox', lineNo, mailbox);
        // A practitioner's rows (one per activity) and a structure's follow each other: stage each key once (the
        // records were built only for keys not seen yet).
        if (practitioner) {
          seenPractitioners.add(practitioner.idNatPs);
          take('practitioner', lineNo, practitioner);
        }
        if (activity) take('activity', lineNo, activity);
        if (organisation) {
          seenOrganisations.add(organisation.idNatStruct);
          take('organisation', lineNo, organisation);
        }
      }
      if (rows >= job.batchSize) await flush();
    }
  }
  if (layout !== null) await flush();
  if (!hashing) {
    post({ type: 'end', sha256: null });
    return;
  }
  // The rest of the file, parsed by another thread: only hashed here.
  if (lastLine !== Infinity) for await (const chunk of createReadStream(job.file, { start: window.read, highWaterMark: 1 << 20 })) sha256.update(chunk as Buffer);
  post({ type: 'end', sha256: sha256.digest('hex') });
}

/** A failure as the parsing thread reports it: the file's fault (`DirectoryFileError`) or not. */
export function failed(err: unknown): ParserMessage {
  return { type: 'failed', message: err instanceof Error ? err.message : String(err), fileError: err instanceof DirectoryFileError };
}
