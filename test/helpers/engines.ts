import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/types.js';

/** A fresh, real database per call; `dispose` closes it and removes its files. */
export interface TestStore {
  store: Store;
  dir: string;
  reopen(): Promise<Store>;
  dispose(): Promise<void>;
}

export const ENGINES = ['sqlite'] as const;
export type Engine = (typeof ENGINES)[number];

export async function openTestStore(engine: Engine): Promise<TestStore> {
  switch (engine) {
    case 'sqlite': {
      const dir = mkdtempSync(path.join(tmpdir(), 'mss-store-'));
      const file = path.join(dir, 'mss.sqlite');
      const handle: TestStore = {
        store: await openSqliteStore(file),
        dir,
        async reopen() {
          await handle.store.close();
          handle.store = await openSqliteStore(file);
          return handle.store;
        },
        async dispose() {
          await handle.store.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
      return handle;
    }
  }
}

export function tempDir(prefix = 'mss-'): { dir: string; dispose(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}
