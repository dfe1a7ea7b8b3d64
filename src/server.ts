import 'reflect-metadata';
import type { Logger } from 'pino';
import { Authenticator } from './accounts/authenticator.js';
import { CertificateAuthenticator } from './accounts/certificate-login.js';
import type { Config } from './config/schema.js';
import { loadServerTls } from './crypto/devpki.js';
import { ImapServer } from './imap/server.js';
import { openKeyring, pkiOptions } from './init.js';
import { buildSecurityContext } from './pipeline/security-context.js';
import { openDirectoryStore } from './store/directory.js';
import { directorySearchHandler } from './directory/http.js';
import { HttpServer } from './http/server.js';
import { Pipeline } from './pipeline/index.js';
import { SubmissionServer } from './smtp/submission.js';
import { LocalNotifier } from './store/notifier.js';
import { PgNotifier } from './store/postgres/notifier.js';
import { SealedMail } from './store/sealed-mail.js';
import { openStore, postgresUrl } from './store/open.js';
import type { Notifier } from './store/types.js';

export interface Listener {
  protocol: 'smtp-submission (STARTTLS)' | 'smtp-submission (TLS)' | 'imap (STARTTLS)' | 'imap (TLS)' | 'https (API)';
  host: string;
  port: number;
}

export interface RunningServer {
  listeners: Listener[];
  /** Stops accepting, lets transactions in flight finish, closes the database. */
  close(): Promise<void>;
}

/**
 * How often each process sweeps blobs no message refers to, and blob files no row names past the grace period
 * (a crash between writing a file and committing, or after a commit and before the file was removed).
 */
const BLOB_SWEEP_MS = 60 * 60_000;

/** The mail domains this operator serves: the configured ones plus the demo's. */
export function localDomains(config: Config): string[] {
  const demo = config.demo.enabled ? [config.demo.domain, config.demo.patientDomain] : [];
  return [...new Set([...config.localDomains, ...demo].map((d) => d.toLowerCase()))];
}

/** Wires store, pipeline and listeners for `mss start`. The operator must be initialised. */
export async function startServer(config: Config, log: Logger): Promise<RunningServer> {
  const keyring = openKeyring(config);
  const store = await openStore(config);
  let tls: ReturnType<typeof loadServerTls>;
  let notifier: Notifier;
  try {
    tls = loadServerTls(config.certsDir, keyring);
    notifier = await openNotifier(config, log);
  } catch (err) {
    await store.close();
    throw err;
  }
  const mail = new SealedMail(store, keyring);
  const auth = new Authenticator(store, config.auth);
  const security = buildSecurityContext(config, store, keyring, pkiOptions(config, keyring));
  const pipeline = new Pipeline({
    mail,
    notifier,
    hostname: config.hostname,
    localDomains: localDomains(config),
    limits: config.smtp,
    log: log.child({ component: 'pipeline' }),
    security,
    quota: config.quota,
    directory: { lookups: openDirectoryStore(store), mode: config.directory.senderCheck },
  });
  const smtp = new SubmissionServer({ limits: config.smtp, hostname: config.hostname, tls, auth, pipeline, log: log.child({ component: 'smtp' }) });
  const imap = new ImapServer({
    limits: config.imap,
    quota: config.quota,
    hostname: config.hostname,
    store,
    mail,
    notifier,
    auth,
    tls,
    // AUTHENTICATE EXTERNAL: client certificates chaining to the same trust anchors as S/MIME.
    clientAuth: {
      ca: [...security.trust.anchors, ...(security.trust.intermediates ?? [])].map((c) => c.pem),
      certificates: new CertificateAuthenticator(store, security.keystore, {
        anchors: security.trust.anchors.map((c) => c.pem),
        intermediates: (security.trust.intermediates ?? []).map((c) => c.pem),
      }),
    },
    log: log.child({ component: 'imap' }),
  });

  const directory = openDirectoryStore(store);
  const http = new HttpServer({
    tls,
    auth,
    log: log.child({ component: 'http' }),
    routes: new Map([
      [
        '/api/directory/search',
        directorySearchHandler(directory, { maxLimit: config.directory.searchLimit, onError: (err) => log.error({ err }, 'directory search failed') }),
      ],
    ]),
    maxConnections: config.http.maxConnections,
    requestTimeoutMs: config.http.requestTimeoutMs,
  });
  const listeners: Listener[] = [];
  try {
    const s1 = await smtp.listen('starttls', config.smtp.submission.host, config.smtp.submission.port);
    listeners.push({ protocol: 'smtp-submission (STARTTLS)', host: s1.address, port: s1.port });
    const s2 = await smtp.listen('tls', config.smtp.submissionTls.host, config.smtp.submissionTls.port);
    listeners.push({ protocol: 'smtp-submission (TLS)', host: s2.address, port: s2.port });
    const i1 = await imap.listen('plain', config.imap.plain.host, config.imap.plain.port);
    listeners.push({ protocol: 'imap (STARTTLS)', host: i1.address, port: i1.port });
    const i2 = await imap.listen('tls', config.imap.tls.host, config.imap.tls.port);
    listeners.push({ protocol: 'imap (TLS)', host: i2.address, port: i2.port });
    const h = await http.listen(config.http.listener.host, config.http.listener.port);
    listeners.push({ protocol: 'https (API)', host: h.address, port: h.port });
  } catch (err) {
    await Promise.allSettled([smtp.close(), imap.close(), http.close()]);
    await notifier.close();
    await store.close();
    throw err;
  }

  let sweeping: Promise<void> | null = null;
  const sweeper = setInterval(() => {
    sweeping ??= store
      .sweepBlobs()
      .then(
        (swept) => {
          if (swept.rows + swept.files > 0) log.info({ component: 'store', ...swept }, 'unreferenced blobs swept');
        },
        (err: unknown) => log.warn({ component: 'store', err }, 'blob sweep failed; the next one tries again'),
      )
      .finally(() => (sweeping = null));
  }, BLOB_SWEEP_MS).unref();

  let closing: Promise<void> | null = null;
  return {
    listeners,
    close: () =>
      (closing ??= (async () => {
        clearInterval(sweeper);
        await Promise.allSettled([smtp.close(), imap.close(), http.close()]);
        await sweeping;
        await notifier.close();
        await store.close();
      })()),
  };
}

/**
 * SQLite serves one process: its events stay in it. On PostgreSQL, several processes share the database, so a
 * change committed by one must reach the IMAP sessions of the others (LISTEN/NOTIFY, ADR 0004).
 */
async function openNotifier(config: Config, log: Logger): Promise<Notifier> {
  if (config.store.engine !== 'postgres') return new LocalNotifier();
  return PgNotifier.connect(postgresUrl(config), { log: log.child({ component: 'notifier' }) });
}
