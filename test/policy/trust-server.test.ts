import { writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open.js';
import { openTrustStore } from '../../src/store/trust.js';
import { startOperator, type TestOperator } from '../helpers/operator.js';
import { WHITELIST } from './lists.js';

/** `trust.source` set: `mss start` loads the list at start-up and audits the import. */
describe('trust list refreshed by the running server', () => {
  let op: TestOperator;
  beforeAll(async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mss-trust-src-'));
    const source = path.join(dir, 'liste.xml');
    writeFileSync(source, WHITELIST);
    op = await startOperator({ trust: { source } });
  });
  afterAll(async () => {
    await op?.stop();
  });

  it('imports the list from trust.source at start and audits it', async () => {
    const store = await openStore(op.config);
    try {
      const trust = openTrustStore(store);
      await expect.poll(async () => (await trust.activeList())?.domainCount ?? 0, { timeout: 20_000 }).toBeGreaterThan(0);
      await expect.poll(async () => (await store.readAudit(0, 10_000)).filter((r) => r.action === 'trust-import').length, { timeout: 20_000 }).toBe(1);
    } finally {
      await store.close();
    }
  });
});
