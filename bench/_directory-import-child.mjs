// The measured directory import (bench/directory-import.ts): the built code that `mss directory import` runs, in a
// process of its own, as the command runs, so that its peak RSS is this import's alone, without the TypeScript
// loader the bench itself runs under, nor what an earlier import in the same process left to the allocator. Imports
// the file once and prints one JSON line.
//   node bench/_directory-import-child.mjs <sqlite|postgres> <database file or URL> <extraction file>
import os from 'node:os';

const [engine, location, file] = process.argv.slice(2);
const dist = new URL('../dist/src/', import.meta.url);
const { importDirectoryFile } = await import(new URL('directory/import.js', dist).href);
const { openDirectoryStore } = await import(new URL('store/directory.js', dist).href);
const store =
  engine === 'sqlite'
    ? await (await import(new URL('store/sqlite/index.js', dist).href)).openSqliteStore(location)
    : await (await import(new URL('store/postgres/index.js', dist).href)).openPostgresStore(location, { poolSize: 4 });
try {
  const dir = openDirectoryStore(store);
  const cpu = process.cpuUsage();
  const report = await importDirectoryFile(dir, file);
  const used = process.cpuUsage(cpu);
  console.log(
    JSON.stringify({
      rows: report.rows,
      bad: report.badRowCount,
      ms: report.elapsedMs,
      rowsPerS: report.rowsPerSecond,
      cpuS: (used.user + used.system) / 1e6,
      diff: report.diff,
      rssMb: process.resourceUsage().maxRSS / 1024,
      load: os.loadavg()[0],
    }),
  );
} finally {
  await store.close();
}
