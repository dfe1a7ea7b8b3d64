import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Keyring } from '../crypto/seal.js';
import { CrlProvider } from '../crypto/smime/crl.js';
import { OutboundStage } from '../pipeline/outbound.js';
import type { SecurityContext } from '../pipeline/security-context.js';
import { TrustSpace } from '../policy/trust-store.js';
import { SmtpQueueTransport, type SmtpQueueTransportOptions } from '../smtp/outbound.js';
import { DAY_MS, retryDelayMs } from '../smtp/outbound-config.js';
import { openDirectoryStore } from '../store/directory.js';
import type { SealedMail } from '../store/sealed-mail.js';
import { openTrustStore } from '../store/trust.js';
import type { Notifier, Store } from '../store/types.js';
import { QueueSealer } from './envelope.js';
import { queueNotices } from './notices.js';
import { QueueWorker } from './worker.js';

/**
 * Mail to other operators, wired for `mss start`: the outbound stage the pipeline calls, and the queue worker
 * that hands items over (`federation` section of the configuration).
 */

export interface FederationDeps {
  /** `relay` and `security`: the CRLs of the trust space's CAs, to check the peers' server certificates too. */
  config: Pick<Config, 'federation' | 'hostname' | 'relay' | 'security'>;
  store: Store;
  keyring: Keyring;
  mail: SealedMail;
  notifier: Notifier;
  security: SecurityContext;
  /** Our server certificate and key: the client certificate we present to peers. */
  tls: { key: string; cert: string };
  log: Logger;
  /** Tests inject a resolver instead of the DNS. */
  resolveMx?: SmtpQueueTransportOptions['resolveMx'];
}

export interface Federation {
  outbound: OutboundStage;
  worker: QueueWorker;
  /** Stops the worker (deliveries in flight go back to the queue) and closes pooled connections. */
  close(): Promise<void>;
}

export function startFederation(deps: FederationDeps): Federation {
  const f = deps.config.federation;
  const trust = new TrustSpace(openTrustStore(deps.store));
  const sealer = new QueueSealer(deps.keyring);
  const maxAgeMs = f.maxAgeDays * DAY_MS;
  const { relay, security } = deps.config;
  const transport = new SmtpQueueTransport({
    config: f,
    hostname: deps.config.hostname,
    client: deps.tls,
    trust,
    sealer,
    resolveMx: deps.resolveMx,
    revocation: { crls: new CrlProvider({ files: relay.crlFiles, urls: relay.crlUrls, refreshMs: security.crlRefreshMs }), mode: relay.revocation },
  });
  const worker = new QueueWorker({
    store: deps.store,
    transport,
    batch: f.batch,
    leaseMs: f.leaseSeconds * 1000,
    idleMs: f.idleSeconds * 1000,
    retryDelayMs: retryDelayMs(f.retry),
    maxAgeMs,
    ...queueNotices({
      mail: deps.mail,
      sealer,
      notifier: deps.notifier,
      hostname: deps.config.hostname,
      delayNoticeAfterMs: f.delayNoticeAfterMinutes * 60_000,
      maxAgeMs,
      log: deps.log,
    }),
    onError: (err, item) => deps.log.warn({ err, item: item?.id }, 'queue delivery step failed; the item is tried again'),
  });
  const outbound = new OutboundStage({
    trust,
    security: deps.security,
    sealer,
    config: f,
    directory: openDirectoryStore(deps.store),
    onQueued: () => worker.kick(),
  });
  worker.start();
  return {
    outbound,
    worker,
    async close() {
      await worker.stop();
      await transport.close();
    },
  };
}
