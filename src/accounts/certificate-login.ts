import { X509Certificate } from 'node:crypto';
import { audit } from '../audit/journal.js';
import type { CredentialInfo } from '../crypto/keystore.js';
import type { MailboxRow, Store } from '../store/types.js';

/** What the login needs of the keystore: the credentials of one mailbox (`Keystore.list`). */
export interface CredentialLister {
  list(address: string): Promise<CredentialInfo[]>;
}

/** A certificate presented in a TLS handshake: the leaf, and the other certificates that came with it. */
export interface PresentedCertificate {
  der: Buffer;
  chain: readonly Buffer[];
}

export type CertificateLoginResult =
  | { ok: true; mailbox: MailboxRow }
  | { ok: false; reason: 'untrusted' | 'unknown-certificate' | 'authorization' | 'disabled' };

/** Longest path from a leaf to its trust anchor. */
const MAX_DEPTH = 8;

/**
 * Login with a TLS client certificate (SASL EXTERNAL, RFC 4422 appendix A), shared by the protocols that offer
 * it. The TLS handshake proved that the client holds the certificate's private key; here the certificate must
 * chain to a trust anchor (through the configured intermediates or those the client sent) and be one of the
 * mailbox's keystore credentials of usage `auth`, currently valid (not revoked, not expired). The mailbox is the
 * authorization identity when one is given, else an e-mail address the certificate names. Every attempt is
 * audited; failures do not count towards the password lockout (a certificate cannot be guessed).
 *
 * The chain is checked here rather than by the TLS layer because a socket upgraded by STARTTLS does not report
 * OpenSSL's verdict (Node sets `authorized` only on sockets its TLS server accepted).
 */
export class CertificateAuthenticator {
  readonly #anchors: X509Certificate[];
  readonly #intermediates: X509Certificate[];

  constructor(
    private readonly store: Store,
    private readonly keystore: CredentialLister,
    trust: { anchors: readonly string[]; intermediates: readonly string[] },
    private readonly now: () => Date = () => new Date(),
  ) {
    this.#anchors = trust.anchors.map((pem) => new X509Certificate(pem));
    this.#intermediates = trust.intermediates.map((pem) => new X509Certificate(pem));
  }

  async login(certificate: PresentedCertificate, authzid: string, via: { protocol: string; remote: string }): Promise<CertificateLoginResult> {
    const wanted = authzid.trim().toLowerCase();
    const actor = wanted || 'unknown';
    let leaf: X509Certificate;
    try {
      leaf = new X509Certificate(certificate.der);
    } catch {
      await audit(this.store, { actor, action: 'login-failed', object: actor, outcome: 'certificate-malformed', detail: { ...via, method: 'external' } });
      return { ok: false, reason: 'untrusted' };
    }
    const fingerprint = leaf.fingerprint256.replace(/:/g, '').toLowerCase();
    const detail = { protocol: via.protocol, remote: via.remote, method: 'external', fingerprint };
    const untrusted = this.#untrusted(leaf, certificate.chain);
    if (untrusted) {
      await audit(this.store, { actor, action: 'login-failed', object: actor, outcome: 'certificate-untrusted', detail: { ...detail, why: untrusted } });
      return { ok: false, reason: 'untrusted' };
    }
    const named = certificateAddresses(leaf);
    if (wanted && !named.includes(wanted)) {
      await audit(this.store, { actor, action: 'login-failed', object: actor, outcome: 'authorization-mismatch', detail });
      return { ok: false, reason: 'authorization' };
    }
    for (const address of wanted ? [wanted] : named) {
      const held = await this.#credentials(address);
      if (!held.some((c) => c.usage === 'auth' && c.format === 'x509' && c.fingerprint === fingerprint && c.status === 'valid')) continue;
      const mailbox = await this.store.getMailbox(address);
      if (!mailbox) continue;
      if (mailbox.state !== 'active') {
        await audit(this.store, { actor: address, action: 'login-failed', object: address, outcome: `mailbox-${mailbox.state}`, detail });
        return { ok: false, reason: 'disabled' };
      }
      await audit(this.store, { actor: address, action: 'login', object: address, outcome: 'ok', detail });
      return { ok: true, mailbox };
    }
    await audit(this.store, { actor, action: 'login-failed', object: actor, outcome: 'certificate-unknown', detail });
    return { ok: false, reason: 'unknown-certificate' };
  }

  /**
   * Why the leaf does not chain to a trust anchor, or null when it does: each certificate within its validity
   * and signed by the next, every issuer a CA.
   */
  #untrusted(leaf: X509Certificate, presented: readonly Buffer[]): string | null {
    const now = this.now().getTime();
    const current = (c: X509Certificate) => Date.parse(c.validFrom) <= now && now <= Date.parse(c.validTo);
    const issued = (issuer: X509Certificate, c: X509Certificate) => issuer.ca && c.checkIssued(issuer) && c.verify(issuer.publicKey);
    if (leaf.ca) return 'a CA certificate';
    const pool = [...this.#intermediates];
    for (const der of presented) {
      try {
        pool.push(new X509Certificate(der));
      } catch {
        // an unreadable extra certificate is no path
      }
    }
    let cert = leaf;
    for (let depth = 0; depth < MAX_DEPTH; depth++) {
      if (!current(cert)) return `${cert.subject.replace(/\n/g, ', ')} is outside its validity`;
      const anchor = this.#anchors.find((a) => a.raw.equals(cert.raw) || issued(a, cert));
      if (anchor) return current(anchor) ? null : 'the trust anchor is outside its validity';
      const next = pool.find((c) => !c.raw.equals(cert.raw) && issued(c, cert));
      if (!next) return 'no path to a trust anchor';
      cert = next;
    }
    return 'the path is too long';
  }

  async #credentials(address: string): Promise<CredentialInfo[]> {
    try {
      return await this.keystore.list(address);
    } catch {
      return []; // no such mailbox
    }
  }
}

/** The rfc822Name entries of a certificate's subjectAltName, lower-cased. */
export function certificateAddresses(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  if (!san) return [];
  return [...san.matchAll(/(?:^|, )email:([^,\s]+)/g)].map((m) => m[1]!.toLowerCase());
}
