import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configExample, configKeys, configMarkdown } from '../../src/config/doc.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';

describe('configuration', () => {
  const example: unknown = JSON.parse(readFileSync('config.example.json', 'utf8'));

  it('config.example.json is valid and lists every key of the schema', () => {
    expect(() => parseConfig(example, '/tmp')).not.toThrow();
    expect(example).toEqual(configExample());
    const flat = (o: unknown, prefix = ''): string[] =>
      o && typeof o === 'object' && !Array.isArray(o) && Object.keys(o).length > 0 // an empty map (e.g. federation.routes) is one key
        ? Object.entries(o).flatMap(([k, v]) => flat(v, prefix ? `${prefix}.${k}` : k))
        : [prefix];
    expect(flat(example).sort()).toEqual(configKeys().map((k) => k.key).sort());
  });

  it('documents every key, and docs/configuration.md is current (npm run config-doc)', () => {
    for (const k of configKeys()) expect(k.description, k.key).not.toBe('');
    expect(readFileSync('docs/configuration.md', 'utf8')).toBe(configMarkdown());
  });

  it('rejects unknown keys and bad values with the path of the problem', () => {
    expect(() => parseConfig({ smtp: { maxMesageSize: 10 } })).toThrow(/smtp/);
    expect(() => parseConfig({ imap: { idleTimeoutMs: -1 } })).toThrow(ConfigError);
    expect(() => parseConfig({ imap: { plain: { port: 70000 } } })).toThrow(/imap\.plain\.port/);
  });

  it('resolves relative paths against the config file directory', () => {
    const c = parseConfig({ dataDir: 'd', certsDir: '/abs/certs' }, '/srv/mss');
    expect(c.dataDir).toBe('/srv/mss/d');
    expect(c.certsDir).toBe('/abs/certs');
  });
});
