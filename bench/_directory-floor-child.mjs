// The SQLite floor of a first directory import (bench/directory-import.ts): the least time the engine itself takes
// to hold the records of an extraction file in the directory's empty tables, through better-sqlite3 as the import
// uses it. In one transaction: every index of the entity's table dropped, the records the import would load (the
// first line of each key) inserted by multi-row INSERTs of 200 rows, the indexes created again, the commit. Only
// those calls are timed: reading and parsing the file are not (they run before each batch, untimed), nor is any
// staging. No import can be faster than this on the same machine; the import's rows/s divided by the floor's says
// how much of the time the rest takes. With `required`, only the indexes the directory's lookups need are built
// again (by address, national identifier, name, structure): not the first-name-first search keys (`alt_key`) nor
// the (key, hash, active) index a re-import's comparison reads. Prints one JSON line.
//   node bench/_directory-floor-child.mjs <database file with the schema> <extraction file> [required]
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';

const [location, file, indexSet = 'all'] = process.argv.slice(2);
const dist = new URL('../dist/src/', import.meta.url);
const { ENTITY_SPECS, ENTITIES_OF_KIND } = await import(new URL('store/directory-types.js', dist).href);
const { detectLayout, LineFields } = await import(new URL('directory/formats.js', dist).href);
const { parseLine } = await import(new URL('directory/row-records.js', dist).href);

const ROWS_PER_INSERT = 200;
const db = new Database(location);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');

const bound = (v, kind) => (v === null || v === undefined ? null : kind === 'bool' || kind === 'boolOrNull' ? (v ? 1 : 0) : v);
const elapsed = { insert: 0, index: 0, commit: 0 };
const timed = (phase, work) => {
  const t = process.hrtime.bigint();
  const out = work();
  elapsed[phase] += Number(process.hrtime.bigint() - t) / 1e6;
  return out;
};

let layout = null;
let lines = 0;
const fields = new LineFields();
const tables = {};
const flush = (entity, final) => {
  const t = tables[entity];
  while (t.pending.length >= ROWS_PER_INSERT || (final && t.pending.length > 0)) {
    const rows = t.pending.splice(0, ROWS_PER_INSERT);
    const statement = rows.length === ROWS_PER_INSERT ? t.insertFull : t.prepare(rows.length);
    const params = rows.flat();
    timed('insert', () => statement.run(params));
  }
};

db.exec('BEGIN IMMEDIATE');
for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
  if (layout === null) {
    layout = detectLayout(line);
    for (const entity of ENTITIES_OF_KIND[layout.format]) {
      const spec = ENTITY_SPECS[entity];
      const names = [...spec.columns.map((c) => c.column), 'active', 'added_snapshot', 'changed_snapshot'];
      const prepare = (n) => db.prepare(`INSERT INTO ${spec.table} (${names.join(', ')}) VALUES ${Array(n).fill(`(${names.map(() => '?').join(', ')})`).join(', ')}`);
      const existing = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL").all(spec.table);
      for (const { name } of existing) db.exec(`DROP INDEX ${name}`);
      const notRequired = new Set([`${spec.table}_alt_key`, `${spec.table}_${spec.indexes[spec.indexes.length - 1].join('_')}`]);
      const indexes = existing.filter((r) => indexSet !== 'required' || !notRequired.has(r.name)).map((r) => r.sql);
      tables[entity] = { spec, indexes, prepare, insertFull: prepare(ROWS_PER_INSERT), pending: [], seen: new Set() };
    }
    continue;
  }
  if (line.trim() === '') continue;
  lines++;
  const parsed = parseLine(layout, fields, line);
  if (!parsed.ok) continue;
  for (const [entity, record] of Object.entries(parsed.records)) {
    if (!record) continue;
    const t = tables[entity];
    const key = record[t.spec.key];
    if (t.seen.has(key)) continue;
    t.seen.add(key);
    t.pending.push([...t.spec.columns.map((c) => bound(record[c.field], c.kind)), 1, 1, 1]);
    flush(entity, false);
  }
}
for (const entity of Object.keys(tables)) {
  flush(entity, true);
  tables[entity].seen.clear();
  for (const sql of tables[entity].indexes) timed('index', () => db.exec(sql));
}
timed('commit', () => db.exec('COMMIT'));
db.close();
const ms = elapsed.insert + elapsed.index + elapsed.commit;
console.log(JSON.stringify({ rows: lines, indexes: Object.values(tables).reduce((n, t) => n + t.indexes.length, 0), ms, insertMs: elapsed.insert, indexMs: elapsed.index, commitMs: elapsed.commit, rowsPerS: Math.round((lines * 1000) / ms) }));
