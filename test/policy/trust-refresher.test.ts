import { writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { describeSource, TrustRefresher, type TrustRefresherOptions } from '../../src/policy/trust-refresher.js';
import { openTrustStore } from '../../src/store/trust.js';
import type { TrustStore } from '../../src/store/trust-types.js';
import { ENGINES, openTestStore, tempDir, type TestStore } from '../helpers/engines.js';
import { makeCa, makeServerLeaf, type MadeCert } from './certs.js';
import { entry, listXml, WHITELIST } from './lists.js';

let dir: { dir: string; dispose(): void };
let ca: MadeCert;
let web: MadeCert;
let server: https.Server;
let served: { status: number; body: Buffer } = { status: 200, body: WHITELIST };
let baseUrl: string;

beforeAll(async () => {
  dir = tempDir('mss-trust-refresh-');
  ca = await makeCa(dir.dir, 'web-ca', '/O=Test/CN=Test web CA');
  web = await makeServerLeaf(dir.dir, ca, 'web', '/CN=localhost');
  server = https.createServer({ key: web.keyPem, cert: web.pem }, (req, res) => {
    res.writeHead(served.status, { 'content-type': 'application/xml' });
    res.end(served.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  dir.dispose();
});

/** A pino logger whose records land in `records`. */
function capture(): { log: pino.Logger; records: { msg: string; [k: string]: unknown }[] } {
  const records: { msg: string }[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void records.push(JSON.parse(line) as { msg: string }) });
  return { log, records };
}

describe('describeSource', () => {
  it('keeps credentials and query strings out of logs and the stored list', () => {
    expect(describeSource('https://user:secret@lists.example.test/liste.xml?token=abc')).toBe('https://lists.example.test/liste.xml');
    expect(describeSource('./lists/liste.xml')).toBe('./lists/liste.xml');
  });
});

describe.each(ENGINES)('TrustRefresher (%s)', (engine) => {
  let t: TestStore;
  let trust: TrustStore;
  const refreshers: TrustRefresher[] = [];

  function refresher(o: Partial<TrustRefresherOptions> & Pick<TrustRefresherOptions, 'source' | 'log'>): TrustRefresher {
    const r = new TrustRefresher({ trust, intervalMs: 3_600_000, baseDir: dir.dir, ...o });
    refreshers.push(r);
    return r;
  }

  beforeEach(async () => {
    t = await openTestStore(engine);
    trust = openTrustStore(t.store);
    served = { status: 200, body: WHITELIST };
  });
  afterEach(async () => {
    await Promise.all(refreshers.splice(0).map((r) => r.stop()));
    await t.dispose();
  });

  it('loads a file, keeps the last good list when the file goes bad, and takes the next good one', async () => {
    const file = `list-${engine}.xml`;
    writeFileSync(path.join(dir.dir, file), WHITELIST);
    const caFile = path.join(dir.dir, 'web-ca.pem');
    const { log, records } = capture();
    const imported: number[] = [];
    const r = refresher({ source: file, caFile, log, onImported: (report) => void imported.push(report.list.id) });

    const first = await r.refreshNow();
    expect(first).toMatchObject({ ok: true, report: { replaced: true, list: { source: file, domainCount: 20 } } });
    expect((await trust.activeList())!.caBundle).toContain('BEGIN CERTIFICATE');
    expect(records.find((l) => l.msg === 'trust list imported')).toMatchObject({ domains: 20, skipped: 0 });
    expect((await r.refreshNow()).ok).toBe(true); // unchanged: nothing written, nothing announced
    expect(imported).toHaveLength(1);

    writeFileSync(path.join(dir.dir, file), '<ListeBlancheMSSante>truncated');
    const failed = await r.refreshNow();
    expect(failed).toMatchObject({ ok: false, error: expect.stringMatching(/not well-formed XML/) });
    expect(r.status()).toMatchObject({ lastError: expect.stringMatching(/not well-formed XML/), lastSuccessAt: expect.any(Number) });
    expect(records.at(-1)).toMatchObject({ msg: 'trust list refresh failed; the last good list stays in force', keeping: { list: first.ok ? first.report.list.id : 0 } });
    expect(await trust.listDomains()).toHaveLength(20);

    writeFileSync(path.join(dir.dir, file), listXml([entry('a.test'), entry('bad..test'), ...Array.from({ length: 10 }, (_, i) => entry(`n${i}.test`))]));
    const next = await r.refreshNow();
    expect(next).toMatchObject({ ok: true, report: { replaced: true, skipped: [{ index: 2, name: 'bad..test' }] } });
    expect(records.find((l) => l.msg === 'trust list entry skipped')).toMatchObject({ domain: 'bad..test' });
    expect(r.status().lastError).toBeNull();
    expect(imported).toHaveLength(2);
    expect((await trust.listDomains()).map((d) => d.name)).toContain('a.test');
  });

  it('fetches over https with the configured CA, and keeps the list on HTTP errors, size and TLS failures', async () => {
    const { log } = capture();
    const sourceCaFile = ca.certFile;
    const good = refresher({ source: `${baseUrl}/listeblanchemssante.xml`, sourceCaFile, log });
    expect(await good.refreshNow()).toMatchObject({ ok: true, report: { list: { source: `${baseUrl}/listeblanchemssante.xml`, domainCount: 20 } } });

    served = { status: 404, body: Buffer.from('not here') };
    expect(await good.refreshNow()).toEqual({ ok: false, error: `HTTP 404 from ${baseUrl}/listeblanchemssante.xml` });
    served = { status: 200, body: WHITELIST };
    expect(await refresher({ source: `${baseUrl}/l.xml`, sourceCaFile, log, maxBytes: 4096 }).refreshNow()).toMatchObject({ ok: false, error: /over the 4096-byte limit/ });
    // Without the CA that issued the server's certificate, Node's default CAs do not trust it.
    expect(await refresher({ source: `${baseUrl}/l.xml`, log }).refreshNow()).toMatchObject({ ok: false, error: expect.stringMatching(/certificate/i) });
    expect(await trust.listDomains()).toHaveLength(20);
  });

  it('refreshes on its timer and stops cleanly; refuses a plain-http source', async () => {
    const file = `timer-${engine}.xml`;
    writeFileSync(path.join(dir.dir, file), listXml([entry('timer.test')]));
    const { log } = capture();
    const r = refresher({ source: file, intervalMs: 50, log });
    r.start();
    await expect.poll(async () => (await trust.activeList())?.source, { timeout: 10_000 }).toBe(file);
    const attempt = r.status().lastAttemptAt!;
    await expect.poll(() => r.status().lastAttemptAt! > attempt, { timeout: 10_000 }).toBe(true);
    await r.stop();
    expect(() => new TrustRefresher({ trust, source: 'http://lists.example.test/l.xml', intervalMs: 1000, log })).toThrow(/https:\/\/ URL or a file path/);
  });
});
