/**
 * Another operator, as the relay sees it: its own dev PKI (root, persons and organisations CAs with their
 * CRLs, a server certificate for `mx.<domain>`), the CA bundle it publishes for the trust space, and its
 * practitioners' signing credentials.
 */
import { createPrivateKey, randomBytes } from 'node:crypto';
import path from 'node:path';
import { devPkiPaths, ensureDevPki, issuePractitionerCertificates, loadMailboxCredential, loadServerTls, type DevPkiOptions } from '../../src/crypto/devpki.js';
import { Keyring } from '../../src/crypto/seal.js';
import { Certificate, type SigningCredential } from '../../src/crypto/smime/index.js';
import { certificateSubjectText } from '../../src/policy/dn.js';

export interface PeerOperator {
  domain: string;
  certsDir: string;
  /** Its server certificate (leaf then the organisations CA) and key: the TLS client certificate it relays with. */
  tls: { cert: string; key: string };
  /** The subject DN of that certificate, as `DNCertificatOperateur` publishes it. */
  dn: string;
  /** The CAs its server certificates chain to (root and organisations CA), PEM. */
  caBundle: string;
  /** Its CA certificates and CRL files, for our S/MIME trust (root; persons and organisations intermediates). */
  files: { root: string; intermediates: string[]; crls: string[] };
  /** Issues (once) a practitioner's certificates and returns the signing credential. */
  practitioner(p: { address: string; rpps: string; givenName: string; surname: string }): Promise<SigningCredential>;
}

export async function makePeerOperator(dir: string, domain: string): Promise<PeerOperator> {
  const certsDir = path.join(dir, 'certs');
  const keyring = new Keyring(randomBytes(32));
  const opts: DevPkiOptions = {
    certsDir,
    keyring,
    keyAlgorithm: 'RSA-2048',
    hash: 'SHA-256',
    caValidityDays: 60,
    leafValidityDays: 30,
    serverNames: [`mx.${domain}`],
  };
  await ensureDevPki(opts);
  const paths = devPkiPaths(certsDir);
  const server = loadServerTls(certsDir, keyring);
  const [leaf, ...chain] = Certificate.parseAll(server.cert);
  return {
    domain,
    certsDir,
    tls: { cert: server.cert, key: server.key },
    dn: certificateSubjectText(leaf!),
    caBundle: [server.ca, ...chain.map((c) => c.pem)].join(''),
    files: {
      root: paths.caCert('root'),
      intermediates: [paths.caCert('persons'), paths.caCert('organisations')],
      crls: [paths.caCrl('root'), paths.caCrl('persons'), paths.caCrl('organisations')],
    },
    async practitioner(p) {
      await issuePractitionerCertificates(opts, { ...p, organisation: `Clinique ${domain}` });
      const c = loadMailboxCredential(certsDir, keyring, p.address, 'sign');
      return { key: createPrivateKey(c.key), certificate: Certificate.from(c.cert), chain: Certificate.parseAll(c.chain) };
    },
  };
}
