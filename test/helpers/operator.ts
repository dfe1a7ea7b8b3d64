import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { parseConfig } from '../../src/config/load.js';
import type { Config, ConfigInput } from '../../src/config/schema.js';
import { initOperator, type InitReport } from '../../src/init.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { createTestDatabase, tempDir, type Engine } from './engines.js';

export interface TestOperator {
  dir: string;
  config: Config;
  /** The demo accounts and their passwords. */
  accounts: InitReport['accounts'];
  server: RunningServer;
  /** `relay` is 0 when the relay listener is disabled (`relay.enabled: false`). */
  ports: { submission: number; submissionTls: number; relay: number; imap: number; imaps: number; https: number };
  /** The dev root CA, to verify the server's certificate. */
  ca: string;
  /**
   * Stops and starts the server again on the same ports (same data). `changes` replace top-level sections of
   * the configuration from then on (e.g. `{ federation: { ...before, maxAgeDays: 0.0001 } }`).
   */
  restart(changes?: ConfigInput): Promise<void>;
  stop(): Promise<void>;
  dispose(): Promise<void>;
}

export const DEMO = {
  jean: 'jean.dupont@hopital-demo.mssante.test',
  claire: 'claire.martin@hopital-demo.mssante.test',
  dpi: 'dpi@hopital-demo.mssante.test',
  patient: '279035121518989@patient.mssante.test',
} as const;

function ephemeral(overrides: ConfigInput): ConfigInput {
  const any = { host: '127.0.0.1', port: 0 };
  return {
    ...overrides,
    smtp: { submission: any, submissionTls: any, ...overrides.smtp },
    relay: { ...overrides.relay, listener: { ...any, ...overrides.relay?.listener } },
    imap: { plain: any, tls: any, ...overrides.imap },
    http: { listener: any, ...overrides.http },
    log: { level: 'silent', ...overrides.log },
  };
}

/**
 * A whole operator in a temp dir: init (dev PKI, demo accounts), then the real listeners on ephemeral ports.
 * With the postgres engine, the operator gets a fresh database, dropped by `dispose`.
 */
export async function startOperator(overrides: ConfigInput = {}, engine: Engine = 'sqlite'): Promise<TestOperator> {
  const tmp = tempDir('mss-op-');
  const db = engine === 'postgres' ? await createTestDatabase() : null;
  const store: ConfigInput['store'] = db ? { engine: 'postgres', url: db.url, poolSize: 5 } : undefined;
  const merged = store || overrides.store ? { store: { ...store, ...overrides.store } } : {};
  let input = ephemeral({ dataDir: 'data', certsDir: 'certs', ...overrides, ...merged });
  writeFileSync(path.join(tmp.dir, 'config.json'), JSON.stringify(input, null, 2));
  const config = parseConfig(input, tmp.dir);
  const report = await initOperator(config);
  const log = pino({ level: config.log.level });
  const op: TestOperator = {
    dir: tmp.dir,
    config,
    accounts: report.accounts,
    server: await startServer(config, log),
    ports: { submission: 0, submissionTls: 0, relay: 0, imap: 0, imaps: 0, https: 0 },
    ca: readFileSync(path.join(config.certsDir, 'ca', 'root.pem'), 'utf8'),
    async restart(changes: ConfigInput = {}) {
      await op.server.close();
      input = { ...input, ...changes };
      // Same ports again, so clients configured before the restart still work.
      const again = parseConfig(
        {
          ...input,
          smtp: { ...input.smtp, submission: { host: '127.0.0.1', port: op.ports.submission }, submissionTls: { host: '127.0.0.1', port: op.ports.submissionTls } },
          relay: { ...input.relay, listener: { host: '127.0.0.1', port: op.ports.relay } },
          imap: { ...input.imap, plain: { host: '127.0.0.1', port: op.ports.imap }, tls: { host: '127.0.0.1', port: op.ports.imaps } },
          http: { ...input.http, listener: { host: '127.0.0.1', port: op.ports.https } },
        },
        tmp.dir,
      );
      op.config = again;
      op.server = await startServer(again, log);
    },
    stop: () => op.server.close(),
    async dispose() {
      await op.server.close();
      await db?.drop();
      tmp.dispose();
    },
  };
  const port = (p: string) => op.server.listeners.find((l) => l.protocol === p)!.port;
  op.ports = {
    submission: port('smtp-submission (STARTTLS)'),
    submissionTls: port('smtp-submission (TLS)'),
    relay: op.server.listeners.find((l) => l.protocol === 'smtp-relay (STARTTLS)')?.port ?? 0,
    imap: port('imap (STARTTLS)'),
    imaps: port('imap (TLS)'),
    https: port('https (webmail, API)'),
  };
  return op;
}

export function passwordOf(op: TestOperator, address: string): string {
  const account = op.accounts.find((a) => a.address === address);
  if (!account) throw new Error(`no demo account ${address}`);
  return account.password;
}
