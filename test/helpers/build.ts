import { execFileSync } from 'node:child_process';
import path from 'node:path';

const repo = path.resolve(__dirname, '../..');

/** Builds dist/ if a source is newer (scripts/build-if-needed.mjs), for the tests that run the built CLI. */
export function buildIfNeeded(): void {
  execFileSync(process.execPath, [path.join(repo, 'scripts/build-if-needed.mjs')], { stdio: 'inherit' });
}
