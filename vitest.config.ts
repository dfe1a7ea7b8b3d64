import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Most test files wait on sockets, child processes and fsync more than they compute: one worker per core
    // (vitest's default keeps one core free) halves the suite's wall time on two cores.
    maxWorkers: Math.max(2, availableParallelism()),
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
