import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { serverEnvironment } from '../src/malloc-env.js';

/** `npm start` gives the server process the environment its workers get (src/malloc-env.ts). */
describe('the server environment', () => {
  const start = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: { start: string } }).scripts.start;
  /** What the start script's process sees of `name`: the script run by sh, with its command replaced by a probe. */
  const seen = (name: string, env: NodeJS.ProcessEnv) => {
    expect(start).toMatch(/ node dist\/src\/cli\.js start$/);
    const probe = start.replace(/ node dist\/src\/cli\.js start$/, ` node -e 'process.stdout.write(process.env.${name} ?? "unset")'`);
    return execFileSync('sh', ['-c', probe], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });
  };

  it('is set by npm start for the one process, as by the primary for its workers', () => {
    for (const [name, value] of Object.entries(serverEnvironment({}))) expect(seen(name, {})).toBe(value);
  });

  it("keeps the operator's own values", () => {
    expect(serverEnvironment({ MALLOC_MMAP_THRESHOLD_: '65536' })).toEqual({ MALLOC_MMAP_THRESHOLD_: '65536' });
    expect(seen('MALLOC_MMAP_THRESHOLD_', { MALLOC_MMAP_THRESHOLD_: '65536' })).toBe('65536');
  });
});
