import { execFileSync } from 'node:child_process';
import path from 'node:path';

/**
 * Builds dist/ once, before any test file runs, when a source is newer (scripts/build-if-needed.mjs): several
 * files run the built CLI, and building from each of them let two workers write dist/ at once, or one run it
 * half-written.
 */
export default function setup(): void {
  execFileSync(process.execPath, [path.resolve(__dirname, '../scripts/build-if-needed.mjs')], { stdio: 'inherit' });
}
