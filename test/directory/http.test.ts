import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { directorySearchHandler, type AuthenticatedUser } from '../../src/directory/http.js';
import { importDirectoryFile } from '../../src/directory/import.js';
import { openDirectoryStore } from '../../src/store/directory.js';
import { ENGINES, openTestStore, type TestStore } from '../helpers/engines.js';
import { MSS_HEADER, mssRows, writeLines } from '../helpers/directory-files.js';

const MSS_FIXTURE = 'test/fixtures/directory/Extraction_Correspondance_MSSante_synthetic.txt';

/** GET over a real socket; returns the status, headers and parsed JSON body. */
function get(port: number, target: string, method = 'GET'): Promise<{ status: number; type: string | undefined; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: target, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body: text ? JSON.parse(text) : null });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe.each(ENGINES)('address-book completion endpoint (%s)', (engine) => {
  let t: TestStore;
  let server: Server;
  let port: number;
  /** Who the (future) webmail authentication says is calling: from a test header, null when absent. */
  const users: Record<string, AuthenticatedUser> = {
    clinician: { address: 'jean.dupont@h.test', type: 'PER' },
    patient: { address: '279035121518989@patient.test', type: 'PATIENT' },
  };

  beforeEach(async () => {
    t = await openTestStore(engine);
    const dir = openDirectoryStore(t.store);
    await importDirectoryFile(dir, MSS_FIXTURE);
    const handler = directorySearchHandler(dir, { maxLimit: 20 });
    server = createServer((req, res) => {
      const who = req.headers['x-test-user'];
      void handler(req, res, typeof who === 'string' ? (users[who] ?? null) : null);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterEach(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await t.dispose();
  });

  const as = (who: string | null, target: string, method = 'GET') =>
    new Promise<{ status: number; type: string | undefined; body: unknown }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: target, method, headers: who ? { 'x-test-user': who } : {} }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body: text ? JSON.parse(text) : null });
        });
      });
      req.on('error', reject);
      req.end();
    });

  it('completes names without accents or case, and addresses', async () => {
    const r = await as('clinician', `/api/directory/search?q=${encodeURIComponent('lebrun-carpentier anaï')}`);
    expect(r.status).toBe(200);
    expect(r.type).toBe('application/json; charset=utf-8');
    expect(r.body).toEqual({
      query: 'lebrun-carpentier anaï',
      results: [
        {
          address: 'anais.lebrun-carpentier@arbelles.mssante.test',
          type: 'PER',
          name: 'Anaïs LEBRUN-CARPENTIER',
          profession: 'Ergothérapeute',
          specialty: null,
          organisation: 'CLINIQUE DE READAPTATION LES ARBELLES',
          service: null,
          postalCode: '01000',
          city: 'BOURG EN BRESSE',
        },
      ],
    });
    const byFirstName = (await as('clinician', '/api/directory/search?q=ANAIS')).body as { results: { address: string }[] };
    expect(byFirstName.results.map((e) => e.address)).toEqual(['anais.lebrun-carpentier@arbelles.mssante.test']);
    const byService = (await as('clinician', '/api/directory/search?q=cardio')).body as { results: { address: string; name: string }[] };
    // The service of an ORG mailbox, and the first name of a PER one.
    expect(byService.results).toMatchObject([
      { address: 'cardiologie@ch-bugey-sud.mssante.test', name: 'Cardiologie — CH BUGEY SUD' },
      { address: 'interne.cardio@ch-bugey-sud.mssante.test', name: 'Cardiologie INTERNE' },
    ]);
    const byAddress = (await as('clinician', '/api/directory/search?q=dpi%40ch-bugey')).body as { results: { address: string }[] };
    expect(byAddress.results.map((e) => e.address)).toEqual(['dpi@ch-bugey-sud.mssante.test']);
    const limited = (await as('clinician', '/api/directory/search?q=ch&limit=2')).body as { results: unknown[] };
    expect(limited.results.length).toBeLessThanOrEqual(2);
  });

  it('hides liste rouge mailboxes', async () => {
    const file = path.join(t.dir, 'MSS_liste_rouge.txt');
    const rows = [...mssRows(30)].map((r, i) => `${r}|${i % 2 === 0 ? 'True' : 'False'}`);
    await writeLines(file, [...MSS_HEADER, 'Liste rouge'], rows, false);
    await importDirectoryFile(openDirectoryStore(t.store), file);
    const hidden = rows[0]!.split('|')[1]!;
    const shown = rows[1]!.split('|')[1]!;
    const r1 = (await as('clinician', `/api/directory/search?q=${encodeURIComponent(hidden)}`)).body as { results: unknown[] };
    expect(r1.results).toEqual([]);
    const r2 = (await as('clinician', `/api/directory/search?q=${encodeURIComponent(shown)}`)).body as { results: { address: string }[] };
    expect(r2.results.map((e) => e.address)).toEqual([shown]);
  });

  it('answers only authenticated professionals, with clear errors', async () => {
    expect(await as(null, '/api/directory/search?q=chepy')).toMatchObject({ status: 401, body: { error: 'authentication required' } });
    expect((await as('patient', '/api/directory/search?q=chepy')).status).toBe(403);
    expect((await as('clinician', '/api/directory/search?q=c')).status).toBe(400);
    expect((await as('clinician', '/api/directory/search')).status).toBe(400);
    expect((await as('clinician', `/api/directory/search?q=${'a'.repeat(101)}`)).status).toBe(400);
    expect((await as('clinician', '/api/directory/search?q=chepy&limit=0')).status).toBe(400);
    expect((await as('clinician', '/api/directory/search?q=chepy&limit=21')).status).toBe(400);
    expect((await as('clinician', '/api/directory/search?q=chepy&limit=x')).status).toBe(400);
    const post = await as('clinician', '/api/directory/search?q=chepy', 'POST');
    expect(post.status).toBe(405);
    expect((await as('clinician', '/api/directory/search?q=nobody-here')).body).toEqual({ query: 'nobody-here', results: [] });
    expect(await get(port, '/api/directory/search?q=chepy')).toMatchObject({ status: 401 });
  });
});
