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
import { cachedDirectoryLookups } from './pipeline/directory-cache.js';
import { describeSource, TrustRefresher } from './policy/trust-refresher.js';
import { openTrustStore } from './store/trust.js';
import { audit } from './audit/journal.js';
import { directorySearchHandler } from './directory/http.js';
import { HttpServer } from './http/server.js';
import { Pipeline } from './pipeline/index.js';
import { Patients } from './policy/patients.js';
import { openWebmailSessions } from './store/webmail-sessions.js';
import { Webmail } from './webmail/app.js';
import { DocumentSpace } from './webmail/documents.js';
import { Receipts } from './pipeline/receipts.js';
import { startFederation } from './queue/federation.js';
import { MDN_SWEEP_MS, MdnTracker } from './queue/mdn-tracker.js';
import { SubmissionServer } from './smtp/submission.js';
import { RelayServer } from './smtp/relay.js';
import { RelayPipeline } from './pipeline/relay.js';
import { TrustSpace } from './policy/trust-store.js';
import { CrlProvider } from './crypto/smime/crl.js';
import cluster from 'node:cluster';
import { adoptImapConnections, IMAP_PROTOCOLS } from './connection-dispatch.js';
import { ClusterNotifier, primaryChannel } from './store/cluster-notifier.js';
import { LocalNotifier } from './store/notifier.js';
import { PgNotifier } from './store/postgres/notifier.js';
import { SealedMail } from './store/sealed-mail.js';
import { openStore, postgresUrl } from './store/open.js';
import type { Notifier } from './store/types.js';

export interface Listener {
  protocol: 'smtp-submission (STARTTLS)' | 'smtp-submission (TLS)' | 'smtp-relay (STARTTLS)' | 'imap (STARTTLS)' | 'imap (TLS)' | 'https (webmail, API)';
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
/** How often each process destroys the messages of opposed patient mailboxes whose grace period is over. */
const PATIENT_PURGE_MS = 60 * 60_000;

/** The mail domains this operator serves: the configured ones, the patient domain and the demo hospital's. */
export function localDomains(config: Config): string[] {
  const demo = config.demo.enabled ? [config.demo.domain] : [];
  return [...new Set([...config.localDomains, config.patients.domain, ...demo].map((d) => d.toLowerCase()))];
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
  const mail = new SealedMail(store, keyring, { metaCacheBytes: Math.round(config.imap.metaCacheMb * 1024 * 1024) });
  const auth = new Authenticator(store, config.auth, { allowImap: config.patients.allowImap });
  const patients = new Patients({ store, mail, keyring, config: config.patients, log: log.child({ component: 'patients' }), limits: config.auth });
  const security = buildSecurityContext(config, store, keyring, pkiOptions(config, keyring));
  const pipelineDeps = {
    mail,
    notifier,
    hostname: config.hostname,
    localDomains: localDomains(config),
    limits: config.smtp,
    log: log.child({ component: 'pipeline' }),
    security,
    quota: config.quota,
    xdm: (({ acceptTestIns, ...limits }) => ({ limits, acceptTestIns }))(config.xdm),
    directory: {
      lookups: cachedDirectoryLookups(openDirectoryStore(store), { ttlSeconds: config.directory.cacheSeconds }),
      mode: config.directory.senderCheck,
    },
    patients,
  };
  // Mail to other operators: the outbound stage of the pipeline and the queue worker.
  const federation = startFederation({ config, store, keyring, mail, notifier, security, tls, log: log.child({ component: 'queue' }) });
  // MDNs: sent for the messages delivered here, awaited for those sent to other operators.
  const mdnDeadlineMs = config.federation.mdnDeadlineMinutes * 60_000;
  const tracker = new MdnTracker({ mail, notifier, hostname: config.hostname, deadlineMs: mdnDeadlineMs, log: log.child({ component: 'mdn' }) });
  const receipts = new Receipts({ mail, hostname: config.hostname, localDomains: pipelineDeps.localDomains, log: log.child({ component: 'mdn' }), outbound: federation.outbound, tracker });
  const pipeline = new Pipeline({ ...pipelineDeps, outbound: federation.outbound, receipts });
  // The inbound relay between operators: the same stages, its own limits, refusals audited by the pipeline.
  const relay = config.relay.enabled
    ? new RelayServer({
        config: config.relay,
        hostname: config.hostname,
        tls,
        trust: new TrustSpace(openTrustStore(store)),
        revocation: new CrlProvider({ files: config.relay.crlFiles, urls: config.relay.crlUrls, refreshMs: config.security.crlRefreshMs }),
        pipeline,
        relay: new RelayPipeline({
          ...pipelineDeps,
          limits: { maxMessageSize: config.relay.maxMessageSize, maxRecipients: config.relay.maxRecipients },
          log: log.child({ component: 'relay' }),
          requireProtection: config.relay.requireProtection,
          reporter: pipeline,
          receipts,
        }),
        log: log.child({ component: 'relay' }),
      })
    : null;
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
  const webmail = config.webmail.enabled
    ? new Webmail({
        store,
        mail,
        notifier,
        auth,
        pipeline,
        patients,
        documents: new DocumentSpace({ store, mail }),
        sessions: openWebmailSessions(store),
        config: config.webmail,
        hostname: config.hostname,
        log: log.child({ component: 'webmail' }),
      })
    : undefined;
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
    app: webmail,
    maxConnections: config.http.maxConnections,
    requestTimeoutMs: config.http.requestTimeoutMs,
  });
  const listeners: Listener[] = [];
  let stopAdopting = () => {};
  try {
    const s1 = await smtp.listen('starttls', config.smtp.submission.host, config.smtp.submission.port);
    listeners.push({ protocol: 'smtp-submission (STARTTLS)', host: s1.address, port: s1.port });
    const s2 = await smtp.listen('tls', config.smtp.submissionTls.host, config.smtp.submissionTls.port);
    listeners.push({ protocol: 'smtp-submission (TLS)', host: s2.address, port: s2.port });
    if (relay) {
      const r = await relay.listen(config.relay.listener.host, config.relay.listener.port);
      listeners.push({ protocol: 'smtp-relay (STARTTLS)', host: r.address, port: r.port });
    }
    // A worker of `processes` > 1 is handed its IMAP connections by the primary, which listens for it (ADR 0017).
    if (cluster.isWorker) {
      stopAdopting = adoptImapConnections(imap);
    } else {
      const i1 = await imap.listen('plain', config.imap.plain.host, config.imap.plain.port);
      listeners.push({ protocol: IMAP_PROTOCOLS.plain, host: i1.address, port: i1.port });
      const i2 = await imap.listen('tls', config.imap.tls.host, config.imap.tls.port);
      listeners.push({ protocol: IMAP_PROTOCOLS.tls, host: i2.address, port: i2.port });
    }
    const h = await http.listen(config.http.listener.host, config.http.listener.port);
    listeners.push({ protocol: 'https (webmail, API)', host: h.address, port: h.port });
  } catch (err) {
    await Promise.allSettled([smtp.close(), relay?.close(), imap.close(), http.close()]);
    await federation.close();
    await notifier.close();
    await store.close();
    throw err;
  }

  const trustRefresher = config.trust.source
    ? new TrustRefresher({
        trust: openTrustStore(store),
        source: config.trust.source,
        intervalMs: config.trust.refreshMinutes * 60_000,
        caFile: config.trust.caFile,
        sourceCaFile: config.trust.sourceCaFile,
        maxBytes: config.trust.maxBytes,
        maxSkippedRatio: config.trust.maxSkippedRatio,
        fetchTimeoutMs: config.trust.fetchTimeoutMs,
        log: log.child({ component: 'trust' }),
        onImported: (report) =>
          audit(store, {
            actor: 'server',
            action: 'trust-import',
            object: describeSource(config.trust.source!),
            outcome: 'ok',
            detail: { domains: report.list.domainCount, sha256: report.list.sha256, skipped: report.skipped.length },
          }),
      })
    : null;
  trustRefresher?.start();
  tracker.start(Math.max(1000, Math.min(MDN_SWEEP_MS, mdnDeadlineMs / 4)));

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

  // Opposed patient mailboxes: their messages are destroyed once the grace period is over (every process may run it:
  // each purge is one unit of work that claims its mailbox).
  let purging: Promise<void> | null = null;
  const purge = () => {
    purging ??= patients
      .purgeDue()
      .then(
        (count) => {
          if (count > 0) log.info({ component: 'patients', count }, 'opposed patient mailboxes purged');
        },
        (err: unknown) => log.warn({ component: 'patients', err }, 'patient purge failed; the next one tries again'),
      )
      .finally(() => (purging = null));
  };
  purge();
  const purger = setInterval(purge, PATIENT_PURGE_MS).unref();

  let closing: Promise<void> | null = null;
  return {
    listeners,
    close: () =>
      (closing ??= (async () => {
        stopAdopting();
        clearInterval(sweeper);
        clearInterval(purger);
        await Promise.allSettled([smtp.close(), relay?.close(), imap.close(), http.close(), trustRefresher?.stop()]);
        await sweeping;
        await purging;
        await tracker.stop();
        await federation.close();
        await notifier.close();
        await store.close();
      })()),
  };
}

/**
 * A change committed by one process must reach the IMAP sessions of the others that share the database. On
 * PostgreSQL, processes on any machine: LISTEN/NOTIFY (ADR 0004). On SQLite, the processes of one `mss start`
 * (`processes` > 1, ADR 0015): through their primary process. One process alone keeps its events.
 */
async function openNotifier(config: Config, log: Logger): Promise<Notifier> {
  if (config.store.engine !== 'postgres') return cluster.isWorker ? new ClusterNotifier(primaryChannel()) : new LocalNotifier();
  return PgNotifier.connect(postgresUrl(config), { log: log.child({ component: 'notifier' }) });
}
