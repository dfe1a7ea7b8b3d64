/**
 * Our side of the relay bench: two operators, A (sender) and B (receiver), each an `mss init` directory with its
 * own domain, host name and dev PKI, set up the way two operators of the trust space are, through the real CLI:
 *
 * - each exports its trust entries and CA bundle (`mss trust export --out … --ca-out …`) and imports the other's
 *   (`mss trust import <xml> --ca <pem>`), so A's transport checks B's server certificate (chain + trust DN) and
 *   B's relay checks A's client certificate (chain, validity, revocation against A's CRLs, trust DN of the MAIL
 *   FROM domain);
 * - A routes B's domain to B's relay listener on 127.0.0.1 (`federation.routes`) and encrypts to B's recipient's
 *   certificate (`federation.certificates`: B's dev PKI file of that mailbox, the one B's keystore decrypts with);
 * - S/MIME trust (`security.trustAnchors`, `intermediates`, `crlFiles`) covers both dev PKIs on both sides, with
 *   revocation `require` (the default): A checks B's recipient certificate, B verifies A's signature;
 * - B's directory knows A's practitioner: B's demo MSSanté extraction plus one row for A's sender (same RPPS as
 *   the demo practitioner), imported with `mss directory import`, so B's relay sender check (`directory.senderCheck`
 *   left at `enforce`) passes with the signer's RPPS as the directory owner of the From address.
 *
 * Every message A's practitioner submits to B's practitioner is signed and encrypted by A's outbound stage before
 * the 250 (queued sealed, durable), handed over by A's queue worker over STARTTLS with A's client certificate, and
 * decrypted, verified, sender-checked and delivered sealed into B's mailbox by B's relay before its 250.
 *
 * Both servers are the real CLI (`mss start`) in their own processes (bench/_operator.ts).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { loadConfig } from '../src/config/load.js';
import { devPkiPaths } from '../src/crypto/devpki.js';
import { federationConfigSchema } from '../src/smtp/outbound-config.js';
import { openStore } from '../src/store/open.js';
import type { Store } from '../src/store/types.js';
import { createOperator, startServer, type Operator, type Server } from './_operator.js';

export const A_DOMAIN = 'hopital-a.mssante.test';
export const B_DOMAIN = 'clinique-b.mssante.test';
/** A's demo practitioner sends; B's demo practitioner receives. */
export const SENDER = `jean.dupont@${A_DOMAIN}`;
export const RECIPIENT = `claire.martin@${B_DOMAIN}`;
/** federation.maxPerDestination by default: connections from A to B. */
export const DEFAULT_MAX_PER_DESTINATION = federationConfigSchema.parse({}).maxPerDestination;
/** RPPS of the demo practitioner jean.dupont (src/init.ts), the signer of A's messages. */
const SENDER_RPPS = '10001234565';

export interface RelayPairOptions {
  /**
   * Park the items in A's queue after one failed attempt (B not yet listening) until `release()`: the retry delay
   * is one day. Otherwise the federation retry schedule is the default one.
   */
  park: boolean;
  /** federation.maxPerDestination of A (connections to B); default: the configuration default. */
  maxPerDestination?: number;
}

export interface RelayPair {
  a: Operator;
  b: Operator;
  /** Password of SENDER at A. */
  senderPassword: string;
  /** CA of A's submission certificate. */
  aCa: string;
  startA(): Promise<Server>;
  startB(): Promise<Server>;
  /** Messages in RECIPIENT's INBOX at B, over IMAP (implicit TLS; B must be running): `count` as pushed in IDLE, `exact` by STATUS. */
  counter(): Promise<{ count(): Promise<number>; exact(): Promise<number>; close(): Promise<void> }>;
  /** A's store opened in this process (works while A runs, like `mss queue …`). */
  openA(): Promise<Store>;
  remove(): void;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function writeConfig(op: Operator, merge: Record<string, unknown>): void {
  const file = path.join(op.dir, 'config.json');
  const current = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  writeFileSync(file, JSON.stringify({ ...current, ...merge }, null, 2));
}

/** The S/MIME trust of an operator that also trusts the other's dev PKI (its own stays first). */
function smimeTrust(own: ReturnType<typeof devPkiPaths>, other: ReturnType<typeof devPkiPaths>) {
  const cas = ['persons', 'organisations'] as const;
  return {
    trustAnchors: [own.caCert('root'), other.caCert('root')],
    intermediates: [...cas.map((c) => own.caCert(c)), ...cas.map((c) => other.caCert(c))],
    crlFiles: [...(['root', ...cas] as const).map((c) => own.caCrl(c)), ...(['root', ...cas] as const).map((c) => other.caCrl(c))],
  };
}

/** Creates and wires both operators (nothing is started). */
export async function createRelayPair(o: RelayPairOptions): Promise<RelayPair> {
  const bRelayPort = await freePort();
  const bImapPort = await freePort();
  const base = (domain: string, host: string, patient: string) => ({
    hostname: host,
    localDomains: [domain, patient],
    demo: { domain },
    patients: { domain: patient },
    trust: { export: { domains: [domain], description: `Opérateur ${host}` } },
  });
  // A's own relay listener is not used; port 0 keeps it off the default port.
  const a = createOperator({ ...base(A_DOMAIN, `mx.${A_DOMAIN}`, 'patient-a.mssante.test'), relay: { listener: { host: '127.0.0.1', port: 0 } } });
  let b: Operator | undefined;
  try {
    b = createOperator({
      ...base(B_DOMAIN, `mx.${B_DOMAIN}`, 'patient-b.mssante.test'),
      imap: { plain: { host: '127.0.0.1', port: 0 }, tls: { host: '127.0.0.1', port: bImapPort } },
    });
    const aPki = devPkiPaths(path.join(a.dir, 'certs'));
    const bPki = devPkiPaths(path.join(b.dir, 'certs'));

    writeConfig(a, {
      security: smimeTrust(aPki, bPki),
      // B's server certificate is checked against B's CRLs when A sends (A's own relay listener stays off).
      relay: { listener: { host: '127.0.0.1', port: 0 }, crlFiles: (['root', 'persons', 'organisations'] as const).map((c) => bPki.caCrl(c)) },
      federation: {
        routes: { [B_DOMAIN]: `127.0.0.1:${bRelayPort}` },
        certificates: { [B_DOMAIN]: bPki.mailboxCert(RECIPIENT, 'auth') },
        maxPerDestination: o.maxPerDestination ?? DEFAULT_MAX_PER_DESTINATION,
        // A released item is claimed within this (the bench's release does not wake the worker).
        idleSeconds: 0.1,
        ...(o.park ? { retry: { firstSeconds: 86_400, factor: 1, maxSeconds: 86_400 } } : {}),
      },
    });
    writeConfig(b, {
      security: smimeTrust(bPki, aPki),
      relay: {
        listener: { host: '127.0.0.1', port: bRelayPort },
        // A's server certificate (its TLS client certificate) is checked against A's CRLs.
        crlFiles: (['root', 'persons', 'organisations'] as const).map((c) => aPki.caCrl(c)),
      },
    });

    // The trust space: each imports the other's entries and CA bundle.
    const files = { aXml: path.join(a.dir, 'trust-a.xml'), aCa: path.join(a.dir, 'trust-a-ca.pem'), bXml: path.join(b.dir, 'trust-b.xml'), bCa: path.join(b.dir, 'trust-b-ca.pem') };
    await Promise.all([
      a.cli(['trust', 'export', '--out', files.aXml, '--ca-out', files.aCa]),
      b.cli(['trust', 'export', '--out', files.bXml, '--ca-out', files.bCa]),
    ]);
    await Promise.all([a.cli(['trust', 'import', files.bXml, '--ca', files.bCa]), b.cli(['trust', 'import', files.aXml, '--ca', files.aCa])]);

    // B's directory: its demo MSSanté extraction plus A's sender (owner 8 + the demo RPPS), as one new snapshot.
    const demo = readFileSync(path.join(b.dir, 'data/demo-directory/Extraction_Correspondance_MSSante_demo.txt'), 'utf8');
    const jeanRow = demo.split('\n').find((l) => l.includes(`jean.dupont@${B_DOMAIN}`) && l.includes(SENDER_RPPS));
    if (!jeanRow) throw new Error(`no row for jean.dupont@${B_DOMAIN} in B's demo directory`);
    const directoryFile = path.join(b.dir, 'Extraction_Correspondance_MSSante_relay.txt');
    writeFileSync(directoryFile, demo.replace(/\n*$/, '\n') + jeanRow.replace(`jean.dupont@${B_DOMAIN}`, SENDER) + '\n');
    await b.cli(['directory', 'import', directoryFile]);

    const recipientPassword = 'relay-bench-password';
    await b.cli(['mailbox', 'passwd', RECIPIENT, '--password-stdin'], recipientPassword);

    const aOp = a;
    const bOp = b;
    return {
      a,
      b,
      senderPassword: a.password,
      aCa: a.ca,
      startA: () => startServer(aOp.dir),
      startB: () => startServer(bOp.dir),
      async counter() {
        const client = new ImapFlow({
          host: '127.0.0.1',
          port: bImapPort,
          secure: true,
          auth: { user: RECIPIENT, pass: recipientPassword },
          tls: { ca: bOp.ca, servername: 'localhost' },
          logger: false,
        });
        await client.connect();
        // INBOX selected and in IDLE: B pushes EXISTS as messages arrive (what a mail client sees), so counting
        // costs B one notification per message instead of a STATUS per poll.
        const box = await client.mailboxOpen('INBOX');
        let exists = box.exists;
        client.on('exists', (d: { count: number }) => (exists = d.count));
        const idling = client.idle().catch(() => undefined);
        return {
          count: async () => exists,
          async exact() {
            const status = await client.status('INBOX', { messages: true }); // ends the IDLE
            await idling;
            if (!status) throw new Error(`IMAP STATUS of ${RECIPIENT}'s INBOX at B failed`);
            return status.messages ?? 0;
          },
          close: async () => {
            await client.logout().catch(() => client.close());
          },
        };
      },
      openA: () => openStore(loadConfig(path.join(aOp.dir, 'config.json'))),
      remove() {
        aOp.remove();
        bOp.remove();
      },
    };
  } catch (err) {
    a.remove();
    b?.remove();
    throw err;
  }
}

/**
 * Waits (bounded) until `n` items are in A's queue, each attempted once and given back (parked): nothing is in
 * delivery any more. Returns the queue length.
 */
export async function waitParked(store: Store, n: number, timeoutMs: number): Promise<number> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    // queueLength is cheap; listQueue reads every sealed body, so it is only polled once all items are in.
    if ((await store.queueLength()) < n) {
      if (Date.now() > until) throw new Error(`A's queue: fewer than ${n} items after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    const items = await store.listQueue(n + 1);
    const now = Date.now();
    const settled = items.filter((i) => i.attempts >= 1 && (i.leaseUntil === null || i.leaseUntil <= now) && i.nextAttemptAt > now);
    if (items.length >= n && settled.length === items.length) return items.length;
    if (Date.now() > until) throw new Error(`A's queue: ${items.length}/${n} items, ${settled.length} parked after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Makes every parked item due now, in one unit of work (what `mss queue retry <id>` does, for all of them). */
export async function releaseAll(store: Store, n: number): Promise<number> {
  const items = await store.listQueue(n + 1);
  const now = Date.now();
  let released = 0;
  await store.transaction(async (tx) => {
    released = 0;
    for (const item of items) if (await tx.rescheduleQueueItem(item.id, now)) released++;
  });
  return released;
}
