/**
 * The environment a server process starts with, on top of the operator's. glibc's malloc raises its mmap threshold
 * after freeing a large mapped block, so the 16 MB each login's scrypt takes then comes from the hashing thread's
 * arena and stays resident after it is freed (16 MB steps, and about 30 MB more after a burst of logins, on the
 * IMAP bench's (c)). A fixed threshold (`MALLOC_MMAP_THRESHOLD_`, read by glibc when the process starts) gives such
 * blocks back at once. `npm start` sets it for the process it starts (package.json), the primary for its workers
 * (src/cluster.ts); an operator's own value is kept. Other C libraries ignore the variable.
 */
export function serverEnvironment(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return { MALLOC_MMAP_THRESHOLD_: env.MALLOC_MMAP_THRESHOLD_ ?? '131072' };
}
