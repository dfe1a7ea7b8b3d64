import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { AuditEvent } from '../audit/journal.js';
import { Certificate, KEY_USAGE } from '../crypto/cms/certificate.js';
import { KeystoreError } from '../crypto/keystore.js';
import { certificateMatchesAddress, protectOutbound, type TrustOptions } from '../crypto/smime/index.js';
import { headerValue, readHeader } from '../mime/headers.js';
import type { QueueSealer } from '../queue/envelope.js';
import type { EncryptPolicy, FederationConfig } from '../smtp/outbound-config.js';
import type { DirectoryReads } from '../store/directory-types.js';
import type { MailboxRow, NewQueueItem } from '../store/types.js';
import { refusalForSmime } from './open-secured.js';
import { Refusal } from './refusal.js';
import type { RemoteDomains } from './route.js';
import type { SecurityContext } from './security-context.js';
import type { RemoteRoute } from './types.js';

/**
 * The outbound stage: mail from our users to other operators of the trust space. The message is signed with
 * the sender's certificate and, per policy (`federation.encrypt`, stricter for health mail), encrypted to the
 * recipients' certificates and the sender's — once per destination domain, so each operator receives only what
 * its own recipients can open. The result is sealed into one queue item per domain, which the submission's
 * unit of work commits with its local copies and audit records (durable before 250); the queue worker
 * (src/queue/) hands it over.
 *
 * Recipients' certificates come from, in order: the keystore's correspondents, the practitioner directory
 * (certificates of the mailbox's owner) and the per-domain resolver of `federation.certificates`.
 */

export interface OutboundDeps {
  /** The trust space: routing's lookup, and the CA bundle recipients' certificates may chain to. */
  trust: RemoteDomains & { anchors(): Promise<Certificate[]> };
  security: SecurityContext;
  sealer: QueueSealer;
  config: Pick<FederationConfig, 'encrypt' | 'encryptHealthMail' | 'certificates'>;
  directory?: Pick<DirectoryReads, 'getMailbox' | 'listCertificates'>;
  /** Called after the commit of a submission that queued items (wakes the queue worker). */
  onQueued?: () => void;
  now?: () => number;
}

export interface OutboundInput {
  sender: MailboxRow;
  mailFrom: string;
  /** The submission's transaction id. */
  queueId: string;
  receivedAt: Date;
  /** Our trace header, put above the protected message. */
  received: Buffer;
  /** The message as submitted (Bcc removed), before any local protection. */
  body: Buffer;
  /** The client signed or encrypted it itself: it goes as it is. */
  protectedByClient: boolean;
  routes: readonly RemoteRoute[];
}

export interface Prepared {
  items: NewQueueItem[];
  /** One `enqueue` record per item, for the submission's unit of work. */
  audit: AuditEvent[];
}

const STRICTNESS: Record<EncryptPolicy, number> = { never: 0, preferred: 1, required: 2 };

const EKU_EMAIL = '1.3.6.1.5.5.7.3.4';
const EKU_ANY = '2.5.29.37.0';

/** A certificate we may encrypt to now: an RSA end-entity certificate for e-mail protection with keyEncipherment. */
function canEncryptTo(cert: Certificate, now: number): boolean {
  if (cert.basicConstraints?.ca) return false;
  if (cert.notBefore.getTime() > now || cert.notAfter.getTime() < now) return false;
  if (cert.publicKey.asymmetricKeyType !== 'rsa') return false;
  if (cert.keyUsage !== null && (cert.keyUsage & KEY_USAGE.keyEncipherment) === 0) return false;
  return cert.extKeyUsage === null || cert.extKeyUsage.includes(EKU_EMAIL) || cert.extKeyUsage.includes(EKU_ANY);
}

/** The certificates in a PEM file, or in the PEM files of a directory (`federation.certificates`). */
function certificatesAt(location: string): Certificate[] {
  if (!existsSync(location)) throw new Error(`federation.certificates: ${location} does not exist`);
  const files = statSync(location).isDirectory()
    ? readdirSync(location)
        .filter((f) => /\.(pem|crt|cer)$/i.test(f))
        .sort()
        .map((f) => path.join(location, f))
    : [location];
  return files.flatMap((f) => Certificate.parseAll(readFileSync(f)));
}

export class OutboundStage implements RemoteDomains {
  readonly #now: () => number;

  constructor(private readonly deps: OutboundDeps) {
    this.#now = deps.now ?? Date.now;
  }

  lookup(domain: string): Promise<readonly unknown[]> {
    return this.deps.trust.lookup(domain);
  }

  /** At RCPT TO: when every message must be encrypted, a recipient without a certificate is refused at once. */
  async checkRecipient(route: RemoteRoute): Promise<void> {
    if (this.deps.config.encrypt !== 'required') return;
    if ((await this.recipientCertificates(route.address)).length === 0) throw new Refusal('remote-recipient-no-certificate', route.address);
  }

  /** The certificates to encrypt to `address`, from the first source that has any. */
  async recipientCertificates(address: string): Promise<Certificate[]> {
    const now = this.#now();
    const usable = (certs: Certificate[]) => certs.filter((c, i) => canEncryptTo(c, now) && certs.findIndex((d) => d.equals(c)) === i);
    const correspondents = usable(await this.deps.security.keystore.correspondentCertificates(address, new Date(now)));
    if (correspondents.length > 0) return correspondents;
    const entry = await this.deps.directory?.getMailbox(address);
    if (entry?.active && entry.ownerId) {
      const owned = usable((await this.deps.directory!.listCertificates(entry.ownerId)).map((c) => Certificate.fromDer(c.der)));
      if (owned.length > 0) return owned;
    }
    const location = this.deps.config.certificates[address.slice(address.lastIndexOf('@') + 1)];
    if (!location) return [];
    return usable(certificatesAt(location).filter((c) => certificateMatchesAddress(c, address).match));
  }

  /** The encryption policy for this message: health mail is held to the stricter of the two settings. */
  policyFor(sender: MailboxRow, body: Buffer): EncryptPolicy {
    const { encrypt, encryptHealthMail } = this.deps.config;
    const fields = readHeader(body, 0, body.length).fields;
    const health = sender.type === 'PATIENT' || headerValue(fields, 'x-mss-codecda') !== null;
    return health && STRICTNESS[encryptHealthMail] > STRICTNESS[encrypt] ? encryptHealthMail : encrypt;
  }

  /**
   * Protects the message once per destination domain and seals each result into a queue item. Refuses (before
   * anything is committed) when the policy requires encryption and a recipient has no certificate, when the
   * sender cannot sign, or when a certificate is not trusted.
   */
  async prepare(input: OutboundInput): Promise<Prepared> {
    const byDomain = new Map<string, RemoteRoute[]>();
    for (const r of input.routes) byDomain.set(r.domain, [...(byDomain.get(r.domain) ?? []), r]);
    const policy = this.policyFor(input.sender, input.body);
    const prepared: Prepared = { items: [], audit: [] };
    for (const [domain, routes] of byDomain) {
      const { message, protection } = input.protectedByClient
        ? { message: input.body, protection: 'client' as const }
        : await this.protect(input, routes, policy);
      const item = this.deps.sealer.item(
        domain,
        {
          submissionId: input.queueId,
          sender: input.sender.address,
          mailFrom: input.mailFrom,
          recipients: routes.map((r) => r.address),
          receivedAt: input.receivedAt.getTime(),
          protection,
        },
        Buffer.concat([input.received, message]),
        this.#now(),
      );
      prepared.items.push(item);
      prepared.audit.push({
        actor: input.sender.address,
        action: 'enqueue',
        object: item.id,
        outcome: 'queued',
        detail: { queueId: input.queueId, destination: domain, recipients: routes.length, protection },
      });
    }
    return prepared;
  }

  /** After the commit. */
  queued(): void {
    this.deps.onQueued?.();
  }

  private async protect(input: OutboundInput, routes: readonly RemoteRoute[], policy: EncryptPolicy) {
    const { keystore, trust, config } = this.deps.security;
    const certificates: Certificate[] = [];
    let encrypt = policy !== 'never';
    for (const r of encrypt ? routes : []) {
      const found = await this.recipientCertificates(r.address);
      if (found.length === 0 && policy === 'required') throw new Refusal('remote-recipient-no-certificate', r.address);
      if (found.length === 0) encrypt = false;
      certificates.push(...found);
    }
    let signer;
    try {
      signer = await keystore.credentialsFor(input.sender.address, 'sign');
    } catch (err) {
      if (err instanceof KeystoreError) throw new Refusal('security-no-signing-credential', err.message);
      throw err;
    }
    // Recipients' certificates may chain to the trust space's CAs as well as to our own anchors.
    const remoteTrust: TrustOptions = { ...trust, anchors: [...trust.anchors, ...(await this.deps.trust.anchors())] };
    const result = await protectOutbound({
      message: input.body,
      signer,
      recipients: encrypt ? certificates : [],
      senderCertificate: encrypt ? await keystore.encryptionCertificate(input.sender.address) : null,
      trust: remoteTrust,
      options: { encrypt, digest: config.digest, contentEncryption: config.contentEncryption, keyTransport: config.keyTransport },
    });
    if (!result.ok) throw new Refusal(refusalForSmime(result.code), `${result.party}: ${result.detail}`);
    return { message: result.message, protection: encrypt ? ('signed+encrypted' as const) : ('signed' as const) };
  }
}
