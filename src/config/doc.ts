import { z } from 'zod';
import { configSchema } from './schema.js';

interface JsonSchemaNode {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, JsonSchemaNode>;
  items?: JsonSchemaNode;
}

/** Every leaf key of the configuration with its type, default and description, from the zod schema. */
export function configKeys(): { key: string; type: string; default: string; description: string }[] {
  const root = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchemaNode;
  const out: { key: string; type: string; default: string; description: string }[] = [];
  const walk = (node: JsonSchemaNode, prefix: string, inherited: string) => {
    if (node.properties) {
      for (const [name, child] of Object.entries(node.properties)) {
        walk(child, prefix ? `${prefix}.${name}` : name, child.description ?? (node.properties && inherited ? inherited : ''));
      }
      return;
    }
    const type = node.enum ? node.enum.map((v) => JSON.stringify(v)).join(' \\| ') : node.const !== undefined ? JSON.stringify(node.const) : Array.isArray(node.type) ? node.type.join(' \\| ') : (node.type ?? 'any') + (node.items?.type ? ` of ${node.items.type}` : '');
    out.push({ key: prefix, type, default: node.default === undefined ? '—' : JSON.stringify(node.default), description: node.description ?? inherited });
  };
  walk(root, '', '');
  return out;
}

export function configMarkdown(): string {
  const rows = configKeys().map((k) => `| \`${k.key}\` | ${k.type} | \`${k.default}\` | ${k.description} |`);
  return [
    '# Configuration',
    '',
    'Generated from `src/config/schema.ts` (the single source of truth) by `npm run config-doc`; a test fails when it is stale.',
    '`mss` reads `./config.json` (or `--config <file>`); every key is optional and defaults as below.',
    'Relative paths are resolved against the directory of the config file. `config.example.json` lists every key with its default.',
    '',
    '| key | type | default | meaning |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}

/** Every key with its default value: the content of config.example.json. */
export function configExample(): Record<string, unknown> {
  const example = configSchema.parse({}) as Record<string, unknown> & { store: Record<string, unknown> };
  // Optional keys without a default are shown with the value they fall back to.
  // `url` is used only with engine "postgres".
  example.store = {
    ...example.store,
    path: './data/mss.sqlite',
    url: 'postgres://mss@127.0.0.1:5432/mss',
    blobs: { ...(example.store.blobs as Record<string, unknown>), directory: './data/blobs' },
  };
  const trust = example.trust as Record<string, unknown> & { export: Record<string, unknown> };
  example.trust = {
    source: 'https://espacedeconfiance.mssante.fr/listeblanchemssante.xml',
    ...trust,
    caFile: './certs/igc-sante-ca.pem',
    sourceCaFile: './certs/igc-sante-ca.pem',
    export: { domains: ['hopital-demo.mssante.test'], description: 'Opérateur hopital-demo', ...trust.export },
  };
  return example;
}
