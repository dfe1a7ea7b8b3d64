import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import type { DevPkiOptions } from '../crypto/devpki.js';
import { devPkiPaths } from '../crypto/devpki.js';
import { Keystore } from '../crypto/keystore.js';
import type { Keyring } from '../crypto/seal.js';
import { Certificate } from '../crypto/cms/certificate.js';
import { CrlProvider } from '../crypto/smime/crl.js';
import type { TrustOptions } from '../crypto/smime/trust.js';
import type { Store } from '../store/types.js';

/**
 * What the security stages need, built once at start: the keystore (our mailboxes' keys, correspondents'
 * certificates), the trust anchors with their intermediates, the CRLs, and the algorithm policy.
 */
export interface SecurityContext {
  keystore: Keystore;
  trust: TrustOptions;
  config: Config['security'];
}

function certificatesIn(file: string): Certificate[] {
  return Certificate.parseAll(readFileSync(file));
}

export function buildSecurityContext(config: Config, store: Store, keyring: Keyring, pki: DevPkiOptions): SecurityContext {
  const sec = config.security;
  const dev = devPkiPaths(config.certsDir);
  const anchors = sec.trustAnchors.length > 0 ? sec.trustAnchors.flatMap(certificatesIn) : certificatesIn(dev.caCert('root'));
  const intermediates =
    sec.intermediates.length > 0 ? sec.intermediates.flatMap(certificatesIn) : [...certificatesIn(dev.caCert('persons')), ...certificatesIn(dev.caCert('organisations'))];
  const crlFiles = sec.crlFiles.length > 0 ? sec.crlFiles : [dev.caCrl('root'), dev.caCrl('persons'), dev.caCrl('organisations')];
  const revocation = new CrlProvider({ files: crlFiles, urls: sec.crlUrls, refreshMs: sec.crlRefreshMs });
  return {
    keystore: new Keystore({ store, keyring, pki }),
    trust: { anchors, intermediates, revocation, revocationMode: sec.revocation, policy: { allowSha1: sec.allowSha1 } },
    config: sec,
  };
}
