import { scryptSync } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { hashPassword, verifyPassword } from '../../src/accounts/password.js';
import { ScryptThreads } from '../../src/accounts/scrypt-thread.js';

describe('scrypt on its own threads', () => {
  it('gives RFC 7914 test vector 2, and what node:crypto gives', async () => {
    const threads = new ScryptThreads(1);
    const key = await threads.derive('password', Buffer.from('NaCl'), 64, { N: 1024, r: 8, p: 16, maxmem: 32 * 1024 * 1024 });
    expect(key.toString('hex')).toBe(
      'fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640',
    );
    const options = { N: 16384, r: 8, p: 1, maxmem: 256 * 16384 * 8 };
    const salt = Buffer.from('0123456789abcdef');
    expect((await threads.derive('mot de passe é', salt, 32, options)).equals(scryptSync('mot de passe é', salt, 32, options))).toBe(true);
  });

  it('answers each of many concurrent hashes with its own key, on no more threads than its size', async () => {
    const threads = new ScryptThreads(2);
    const options = { N: 1024, r: 8, p: 1, maxmem: 16 * 1024 * 1024 };
    const keys = await Promise.all(Array.from({ length: 12 }, (_, i) => threads.derive(`pw${i}`, Buffer.from(`salt${i}`), 32, options)));
    keys.forEach((key, i) => expect(key.equals(scryptSync(`pw${i}`, Buffer.from(`salt${i}`), 32, options))).toBe(true));
    expect(threads.threads).toBe(2);
  });

  it('rejects bad parameters with a clear error, and keeps working', async () => {
    const threads = new ScryptThreads(1);
    await expect(threads.derive('x', Buffer.from('s'), 32, { N: 3, r: 8, p: 1, maxmem: 1 << 20 })).rejects.toThrow(/scrypt failed/);
    expect((await threads.derive('x', Buffer.from('s'), 16, { N: 16, r: 1, p: 1, maxmem: 1 << 20 })).length).toBe(16);
  });

  it("leaves libuv's threads to file operations while logins hash", async () => {
    // Eight logins' hashes at once: on libuv's four threads they held every file operation behind them.
    const each = Array.from({ length: 8 }, (_, i) => hashPassword(`secret-${i}`));
    let hashed = 0;
    for (const h of each) void h.then(() => hashed++);
    await stat(import.meta.filename);
    expect(hashed).toBe(0);
    const stored = await Promise.all(each);
    expect(await verifyPassword('secret-3', stored[3]!)).toBe(true);
    expect(await verifyPassword('secret-3', stored[4]!)).toBe(false);
  });
});
