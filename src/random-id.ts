import { randomBytes } from 'node:crypto';

/**
 * An unguessable id of `bytes` random bytes in base64url that never begins with '-', so that an operator can pass it
 * to `mss queue show <id>` without the command line taking it for an option. Redrawing keeps the draw uniform over
 * the ids allowed and costs one bit in 64 of entropy at most.
 */
export function randomId(bytes: number): string {
  for (;;) {
    const id = randomBytes(bytes).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}
