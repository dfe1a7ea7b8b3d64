import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { configSchema, type Config, type ConfigInput } from './schema.js';

export class ConfigError extends Error {}

/** Validates raw config input; relative paths are resolved against `baseDir`. */
export function parseConfig(input: unknown, baseDir = process.cwd()): Config {
  const result = configSchema.safeParse(input ?? {});
  if (!result.success) {
    const problems = result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n');
    throw new ConfigError(`invalid configuration:\n${problems}`);
  }
  const config = result.data;
  config.dataDir = path.resolve(baseDir, config.dataDir);
  config.certsDir = path.resolve(baseDir, config.certsDir);
  if (config.store.path) config.store.path = path.resolve(baseDir, config.store.path);
  if (config.store.blobs.directory) config.store.blobs.directory = path.resolve(baseDir, config.store.blobs.directory);
  const trust = config.trust;
  if (trust.source && !/^[a-z][a-z0-9+.-]*:\/\//i.test(trust.source)) trust.source = path.resolve(baseDir, trust.source);
  if (trust.caFile) trust.caFile = path.resolve(baseDir, trust.caFile);
  if (trust.sourceCaFile) trust.sourceCaFile = path.resolve(baseDir, trust.sourceCaFile);
  return config;
}

/**
 * Reads the config file if it exists. The default file (`./config.json`) may be absent, in which case the
 * built-in defaults apply; a file named explicitly must exist.
 */
export function loadConfig(file: string | undefined, overrides: ConfigInput = {}): Config {
  const chosen = path.resolve(file ?? 'config.json');
  let raw: Record<string, unknown> = {};
  if (existsSync(chosen)) {
    try {
      raw = JSON.parse(readFileSync(chosen, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`cannot read ${chosen}: ${(err as Error).message}`);
    }
  } else if (file !== undefined) {
    throw new ConfigError(`config file not found: ${chosen}`);
  }
  return parseConfig({ ...raw, ...overrides }, path.dirname(chosen));
}

export function sqlitePath(config: Config): string {
  return config.store.path ?? path.join(config.dataDir, 'mss.sqlite');
}

/** The blob directory: read whenever a blob row names a file, written when `store.blobs.location` is "directory". */
export function blobDirectory(config: Config): string {
  return config.store.blobs.directory ?? path.join(config.dataDir, 'blobs');
}
