import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO, passwordOf, startOperator, type TestOperator } from './helpers/operator.js';

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? filesUnder(full) : [full];
  });
}

/** Looks for the marker as UTF-8, UTF-16LE and base64 of the UTF-8 (as a MIME encoder would write it). */
function leaks(file: string, marker: string): boolean {
  const data = readFileSync(file);
  const forms = [Buffer.from(marker), Buffer.from(marker, 'utf16le'), Buffer.from(Buffer.from(marker).toString('base64').slice(0, 12))];
  return forms.some((f) => data.includes(f));
}

describe('sealed at rest', () => {
  let op: TestOperator;
  beforeAll(async () => {
    op = await startOperator();
  });
  afterAll(() => op?.dispose());

  it('leaves no trace of subject, header addresses or body in any file under the data dir', async () => {
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

    const check = () => {
      const files = filesUnder(op.config.dataDir);
      expect(files.some((f) => f.endsWith('mss.sqlite-wal') || f.endsWith('mss.sqlite'))).toBe(true);
      for (const file of files) {
        for (const marker of [subjectMarker, addressMarker, bodyMarker]) {
          expect(leaks(file, marker), `${marker} found in ${path.basename(file)}`).toBe(false);
        }
      }
    };
    check(); // while running: database, WAL and shared memory
    await op.stop();
    check(); // after the WAL is checkpointed into the database on close
  });
});
