import { KeystoreError } from '../crypto/keystore.js';
import { signAndEncryptMessage } from '../crypto/pgp/index.js';
import { protectOutbound } from '../crypto/smime/agent.js';
import { headerValue, readHeader } from '../mime/headers.js';
import type { MailboxRow } from '../store/types.js';
import { refusalForPgp, refusalForSmime, type Protection } from './open-secured.js';
import { Refusal } from './refusal.js';
import type { SecurityContext } from './security-context.js';

/**
 * Outbound security stage: signs and encrypts a message with the sender's keystore credentials to every
 * recipient's certificate (S/MIME, Direct profile: the whole message wrapped, signed, then encrypted, to the
 * recipients and the sender) or OpenPGP key (PGP/MIME). Federation uses it for mail leaving the operator;
 * between local mailboxes it runs on request (`X-MSS-Protection`) or always, per `security.localProtection`.
 */

export const PROTECTION_HEADER = 'X-MSS-Protection';

/** The protection the sender asked for, or the configured default; null for none. */
export function requestedProtection(raw: Buffer, mode: 'off' | 'on-request' | 'always'): Protection | null {
  if (mode === 'off') return null;
  const asked = headerValue(readHeader(raw, 0, raw.length).fields, PROTECTION_HEADER.toLowerCase())?.trim().toLowerCase();
  if (asked === 'smime' || asked === 's/mime') return 'smime';
  if (asked === 'pgp' || asked === 'openpgp') return 'pgp';
  return mode === 'always' ? 'smime' : null;
}

export async function protectMessage(ctx: SecurityContext, kind: Protection, raw: Buffer, sender: MailboxRow, recipients: readonly MailboxRow[]): Promise<Buffer> {
  if (kind === 'smime') {
    let signer;
    try {
      signer = await ctx.keystore.credentialsFor(sender.address, 'sign');
    } catch (err) {
      if (err instanceof KeystoreError) throw new Refusal('security-no-signing-credential', err.message);
      throw err;
    }
    const certificates = [];
    for (const r of recipients) {
      const cert = await ctx.keystore.encryptionCertificate(r.address);
      if (!cert) throw new Refusal('security-no-recipient-certificate', r.address);
      certificates.push(cert);
    }
    const result = await protectOutbound({
      message: raw,
      signer,
      recipients: certificates,
      senderCertificate: await ctx.keystore.encryptionCertificate(sender.address),
      trust: ctx.trust,
      options: { digest: ctx.config.digest, contentEncryption: ctx.config.contentEncryption, keyTransport: ctx.config.keyTransport },
    });
    if (!result.ok) throw new Refusal(refusalForSmime(result.code), `${result.party}: ${result.detail}`);
    return result.message;
  }
  let own;
  try {
    own = await ctx.keystore.credentialsFor(sender.address, 'openpgp');
  } catch (err) {
    if (err instanceof KeystoreError) throw new Refusal('security-no-signing-credential', err.message);
    throw err;
  }
  const result = await signAndEncryptMessage(raw, {
    signingKey: own.privateKey,
    recipients: recipients.map((r) => r.address),
    resolver: ctx.keystore.pgpResolver(),
  });
  if (!result.ok) throw new Refusal(refusalForPgp(result.code), result.detail);
  return result.value;
}
