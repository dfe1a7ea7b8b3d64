import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINE_BLOBS } from './helpers/engines.js';
import { DEMO, passwordOf, startOperator, type TestOperator } from './helpers/operator.js';

const execFileAsync = promisify(execFile);

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? filesUnder(full) : [full];
  });
}

/**
 * Looks for the marker as UTF-8, UTF-16LE, base64 of the UTF-8 (as a MIME encoder would write it) and hex of
 * the UTF-8 (as pg_dump writes bytea: `\\x…`), both cases.
 */
function leaksIn(data: Buffer, marker: string): boolean {
  const hex = Buffer.from(marker).toString('hex');
  const forms = [marker, Buffer.from(marker, 'utf16le'), Buffer.from(marker).toString('base64').slice(0, 12), hex, hex.toUpperCase()];
  return forms.some((f) => data.includes(typeof f === 'string' ? Buffer.from(f) : f));
}

function leaks(file: string, marker: string): boolean {
  return leaksIn(readFileSync(file), marker);
}

/** Every row of the test database as `pg_dump --data-only` writes it (COPY text, bytea as `\\x` hex). */
async function dumpDatabase(url: string): Promise<Buffer> {
  const { stdout } = await execFileAsync('pg_dump', ['--data-only', '--no-owner', '--dbname', url], { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 });
  return stdout;
}

describe.each(ENGINE_BLOBS)('sealed at rest (%s, blobs in the %s)', (engine, location) => {
  let op: TestOperator;
  beforeAll(async () => {
    op = await startOperator({ store: { blobs: { location } } }, engine);
  });
  afterAll(() => op?.dispose());

  it('leaves no trace of subject, header addresses or body in any file under the data dir, nor in the database dump', async () => {
    const subjectMarker = 'SUBJMARK7q3z';
    const addressMarker = 'addrmark9k2w';
    const bodyMarker = 'BODYMARK4x8v';
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: op.ports.submission,
      requireTLS: true,
      auth: { user: DEMO.jean, pass: passwordOf(op, DEMO.jean) },
      tls: { ca: op.ca, servername: 'localhost' },
    });
    const info = await transport.sendMail({
      from: { name: `Dr Jean ${addressMarker}`, address: DEMO.jean },
      to: DEMO.claire,
      replyTo: `${addressMarker}@clinique.test`,
      subject: `Résultats ${subjectMarker}`,
      text: `Patient ${bodyMarker}: résultats normaux.\n`,
      attachments: [{ filename: 'cr.txt', content: `Compte rendu ${bodyMarker}` }],
    });
    expect(info.accepted).toEqual([DEMO.claire]);

    const markers = [subjectMarker, addressMarker, bodyMarker];
    const check = async () => {
      const files = filesUnder(op.config.dataDir);
      if (engine === 'sqlite') expect(files.some((f) => f.endsWith('mss.sqlite-wal') || f.endsWith('mss.sqlite'))).toBe(true);
      else expect(files.some((f) => f.endsWith('master.key'))).toBe(true);
      // The body is in a blob file when the directory holds them: the scan below covers it.
      const blobFiles = files.filter((f) => f.startsWith(path.join(op.config.dataDir, 'blobs') + path.sep));
      expect(blobFiles.length > 0).toBe(location === 'directory');
      for (const file of files) {
        for (const marker of markers) {
          expect(leaks(file, marker), `${marker} found in ${path.basename(file)}`).toBe(false);
        }
      }
      if (engine === 'postgres') {
        const dump = await dumpDatabase(op.config.store.url!);
        // The dump holds the delivered message (sealed, as bytea hex), so an absence below means something.
        expect(dump.toString('latin1')).toMatch(/^COPY public\.messages /m);
        expect(dump.toString('latin1')).toMatch(/\\\\x[0-9a-f]{256,}/); // a sealed blob, as COPY writes bytea
        expect(dump.toString('utf8')).toContain(DEMO.claire); // plain where it must be: the mailbox address
        expect(leaksIn(dump, DEMO.claire)).toBe(true); // the scan sees what is stored in clear (mailbox addresses)
        for (const marker of markers) expect(leaksIn(dump, marker), `${marker} found in pg_dump --data-only`).toBe(false);
      }
    };
    await check(); // while running: database, WAL and shared memory (SQLite); every table (PostgreSQL)
    await op.stop();
    await check(); // after the WAL is checkpointed into the database on close
  });
});
