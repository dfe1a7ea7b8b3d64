// The measured directory import (bench/directory-import.ts): the built code that `mss directory import` runs, in a
// process of its own so that its peak RSS is the import's alone, without the TypeScript loader the bench itself
// runs under. Imports the file, then the same file again, and prints one JSON line.
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
  const timed = async () => {
    const cpu = process.cpuUsage();
    const report = await importDirectoryFile(dir, file);
    const used = process.cpuUsage(cpu);
    return { rows: report.rows, bad: report.badRowCount, ms: report.elapsedMs, rowsPerS: report.rowsPerSecond, cpuS: (used.user + used.system) / 1e6, diff: report.diff };
  };
  const first = await timed();
  const again = await timed();
  console.log(JSON.stringify({ first, again, rssMb: process.resourceUsage().maxRSS / 1024, load: os.loadavg()[0] }));
} finally {
  await store.close();
}
