/**
 * Reading a PKCS#12 file (a practitioner's or an application's key and certificates, given by the operator).
 * node-forge is used here and nowhere else: it is the only installed reader of PKCS#12 password-based
 * encryption, and this input is local configuration, not untrusted mail. Certificates are then re-parsed by
 * our own parser and the key handed to node:crypto.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { Certificate } from '../cms/certificate.js';

export class Pkcs12Error extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Pkcs12Error';
  }
}

export interface Pkcs12Contents {
  privateKey: KeyObject;
  /** PKCS#8 PEM of the private key (for callers that seal it or hand it to other tools). */
  privateKeyPem: string;
  /** The certificate of the private key. */
  certificate: Certificate;
  /** The other certificates of the file (intermediates, maybe the root). */
  chain: Certificate[];
}

function bagsOf(p12: forge.pkcs12.Pkcs12Pfx, type: string): forge.pkcs12.Bag[] {
  return p12.getBags({ bagType: type })[type] ?? [];
}

function bagKey(bag: forge.pkcs12.Bag): KeyObject {
  if (bag.key) return createPrivateKey(forge.pki.privateKeyToPem(bag.key));
  if (bag.asn1) {
    // forge only models RSA keys; others (EC) come back as the decrypted PrivateKeyInfo.
    const der = Buffer.from(forge.asn1.toDer(bag.asn1).getBytes(), 'binary');
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  }
  throw new Pkcs12Error('key bag without a key');
}

function bagCertificate(bag: forge.pkcs12.Bag): Certificate {
  const asn1 = bag.cert ? forge.pki.certificateToAsn1(bag.cert) : bag.asn1;
  if (!asn1) throw new Pkcs12Error('certificate bag without a certificate');
  return Certificate.fromDer(Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary'));
}

/** Reads key, certificate and chain. Throws Pkcs12Error for a wrong password or an unusable file. */
export function readPkcs12(data: Buffer, password: string): Pkcs12Contents {
  let p12: forge.pkcs12.Pkcs12Pfx;
  const binary = data.toString('binary');
  try {
    p12 = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(binary, true), password);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (/MAC could not be verified|Invalid password/i.test(message)) throw new Pkcs12Error('wrong password for the PKCS#12 file');
    if (/^[\x20-\x7e]*$/.test(password)) throw new Pkcs12Error(`unreadable PKCS#12 file: ${message}`);
    // forge checked the MAC (password as BMPString) before failing; PBES2 (OpenSSL's default) derives its key
    // from the UTF-8 bytes, which forge reads from a binary string: retry so, without the MAC already checked.
    try {
      const pfx = forge.asn1.fromDer(binary, true);
      if (Array.isArray(pfx.value)) pfx.value.splice(2);
      p12 = forge.pkcs12.pkcs12FromAsn1(pfx, forge.util.encodeUtf8(password));
    } catch (again) {
      throw new Pkcs12Error(`unreadable PKCS#12 file: ${again instanceof Error ? again.message : String(again)}`);
    }
  }
  let keys: KeyObject[];
  let certificates: Certificate[];
  try {
    keys = [...bagsOf(p12, forge.pki.oids.pkcs8ShroudedKeyBag!), ...bagsOf(p12, forge.pki.oids.keyBag!)].map(bagKey);
    certificates = bagsOf(p12, forge.pki.oids.certBag!).map(bagCertificate);
  } catch (err) {
    if (err instanceof Pkcs12Error) throw err;
    throw new Pkcs12Error(`unreadable PKCS#12 content: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (keys.length !== 1) throw new Pkcs12Error(`the PKCS#12 file holds ${keys.length} private keys (expected one)`);
  const privateKey = keys[0]!;
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const certificate = certificates.find((c) => c.spki.equals(spki));
  if (!certificate) throw new Pkcs12Error('no certificate in the PKCS#12 file matches its private key');
  return {
    privateKey,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    certificate,
    chain: certificates.filter((c) => c !== certificate),
  };
}
