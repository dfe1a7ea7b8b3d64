import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO, passwordOf, startOperator, type TestOperator } from '../helpers/operator.js';
import { activatePatient } from '../patients/helpers.js';

const run = promisify(execFile);

/** Address-book completion over the HTTPS API, with curl: authenticated professionals only, JSON answers. */
describe('HTTPS API: directory search (curl)', () => {
  let op: TestOperator;
  let caFile: string;
  beforeAll(async () => {
    op = await startOperator();
    // The demo patient starts pending (no password): activated here, as the webmail would.
    await activatePatient(op, DEMO.patient, 'le mot de passe du patient');
    caFile = path.join(op.dir, 'ca.pem');
    writeFileSync(caFile, op.ca);
  });
  afterAll(() => op?.dispose());

  async function curl(query: string, user?: string, password?: string): Promise<{ status: number; body: string; headers: string }> {
    const args = ['-sS', '--cacert', caFile, '--connect-to', `localhost:${op.ports.https}:127.0.0.1:${op.ports.https}`, '-D', '-', '-o', '-'];
    if (user) args.push('-u', `${user}:${password ?? passwordOf(op, user)}`);
    args.push(`https://localhost:${op.ports.https}/api/directory/search${query}`);
    const { stdout } = await run('curl', args);
    const split = stdout.indexOf('\r\n\r\n');
    const headers = stdout.slice(0, split);
    return { status: Number(/^HTTP\/\S+ (\d+)/.exec(headers)![1]), headers, body: stdout.slice(split + 4) };
  }

  it('finds the demo practitioners by name prefix, accents and case ignored', async () => {
    const r = await curl('?q=dupo', DEMO.claire);
    expect(r.status).toBe(200);
    expect(r.headers).toMatch(/content-type: application\/json/i);
    const body = JSON.parse(r.body) as { results: { address: string }[] };
    expect(body.results.map((e) => e.address)).toContain(DEMO.jean);
    const accents = JSON.parse((await curl('?q=CLAIRE', DEMO.jean)).body) as { results: { address: string }[] };
    expect(accents.results.map((e) => e.address)).toContain(DEMO.claire);
  });

  it('refuses anonymous requests (401), wrong passwords (401 with a challenge), patients (403), bad queries (400), unknown paths (404)', async () => {
    expect((await curl('?q=dupo')).status).toBe(401);
    const bad = await curl('?q=dupo', DEMO.jean, 'wrong password');
    expect(bad.status).toBe(401);
    expect(bad.headers).toMatch(/www-authenticate: Basic realm="mss"/i);
    expect((await curl('?q=dupo', DEMO.patient, 'le mot de passe du patient')).status).toBe(403);
    expect((await curl('?q=', DEMO.jean)).status).toBe(400);
    const { stdout } = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', caFile, '--connect-to', `localhost:${op.ports.https}:127.0.0.1:${op.ports.https}`, `https://localhost:${op.ports.https}/nothing`]);
    expect(stdout).toBe('404');
  });
});
