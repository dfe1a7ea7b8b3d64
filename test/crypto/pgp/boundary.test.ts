import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/** STYLE §7: the security agent is a library; the mail server binding is the pipeline's business. */
describe('src/crypto/pgp dependencies', () => {
  it('imports nothing from the SMTP, IMAP, pipeline or store code', () => {
    const dir = path.resolve('src/crypto/pgp');
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      const imports = [...readFileSync(path.join(dir, file), 'utf8').matchAll(/from '([^']+)'/g)].map((m) => m[1]!);
      for (const spec of imports) expect(spec, `${file} imports ${spec}`).not.toMatch(/\/(smtp|imap|pipeline|store)\//);
    }
  });
});
