/**
 * Development PKI modelled on the French health PKI (IGC-Santé): a root, an intermediate for persons
 * (practitioner certificates), an intermediate for organisations (application mailboxes and the server's
 * TLS certificate), and one CRL per CA. Every name carries "DEV" so nobody mistakes it for the real thing.
 *
 * Private keys never touch the disk in clear: PKCS#8 DER sealed with the master key (seal.ts), label
 * `aad.privateKey(<path of the sealed file relative to certsDir>)`, so a sealed key cannot be swapped with
 * another file unnoticed. Layout and naming choices: certs/README.md.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { createPrivateKey, createPublicKey, randomBytes, type webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import path from 'node:path';
import { aad, type Keyring } from './seal.js';
import { derInteger, OID, pemBlocks, randomSerialHex, subtle, toPem, x509 } from './x509-util.js';

export interface DevPkiOptions {
  certsDir: string;
  keyring: Keyring;
  keyAlgorithm: 'RSA-2048' | 'RSA-3072' | 'RSA-4096' | 'ECDSA-P256';
  hash: 'SHA-256' | 'SHA-384' | 'SHA-512';
  caValidityDays: number;
  leafValidityDays: number;
  serverNames: string[]; // DNS names for the server certificate; 'localhost' is always added
}

/** `created`: something was written. `files`: every file of the result (absolute). `written`: those written by this call. */
export interface DevPkiResult {
  created: boolean;
  files: string[];
  written: string[];
}

export type CaName = 'root' | 'persons' | 'organisations';
export type MailboxCertKind = 'auth' | 'sign' | 'org';

export class DevPkiError extends Error {}

type Key = webcrypto.CryptoKey;
type KeyPair = webcrypto.CryptoKeyPair;

const DAY_MS = 86_400_000;
/** Certificates and CRLs start slightly in the past so a peer whose clock lags a little accepts them. */
const BACKDATE_MS = 10 * 60_000;
export const CRL_VALIDITY_DAYS = 7;
/** ensureDevPki re-signs a CRL whose nextUpdate is closer than this. */
const CRL_REFRESH_MARGIN_MS = DAY_MS;
/** ensureDevPki reissues the server certificate when it expires within this (or a third of its lifetime if shorter). */
const SERVER_RENEW_MARGIN_MS = 7 * DAY_MS;

export const DEV_ORGANISATION = 'MSS DEV';
export const DEV_UNIT = 'DEV IGC-SANTE';

const CA_SPECS: Record<CaName, { cn: string; issuer: CaName | null; pathLen: number }> = {
  root: { cn: 'DEV AC RACINE IGC-SANTE', issuer: null, pathLen: 1 },
  persons: { cn: 'DEV AC IGC-SANTE PERSONNES', issuer: 'root', pathLen: 0 },
  organisations: { cn: 'DEV AC IGC-SANTE ORGANISATIONS', issuer: 'root', pathLen: 0 },
};
const CA_NAMES: CaName[] = ['root', 'persons', 'organisations'];

// ---------------------------------------------------------------------------------------------------------
// Paths

/** Paths relative to certsDir. The sealing label of a key is its relative path. */
const rel = {
  caCert: (ca: CaName) => `ca/${ca}.pem`,
  caKey: (ca: CaName) => `ca/${ca}.key.sealed`,
  caCrl: (ca: CaName) => `ca/${ca}.crl.pem`,
  chain: 'ca/chain.pem',
  serverCert: 'server/server.pem',
  serverKey: 'server/server.key.sealed',
  mailboxCert: (address: string, kind: MailboxCertKind) => `users/${mailboxDirName(address)}/${kind}.pem`,
  mailboxKey: (address: string, kind: MailboxCertKind) => `users/${mailboxDirName(address)}/${kind}.key.sealed`,
};

/** Absolute paths of the dev PKI files, for callers (CLI, server, tests). */
export function devPkiPaths(certsDir: string) {
  const abs = (r: string) => path.join(certsDir, r);
  return {
    caCert: (ca: CaName) => abs(rel.caCert(ca)),
    caKey: (ca: CaName) => abs(rel.caKey(ca)),
    caCrl: (ca: CaName) => abs(rel.caCrl(ca)),
    chain: abs(rel.chain),
    serverCert: abs(rel.serverCert),
    serverKey: abs(rel.serverKey),
    mailboxCert: (address: string, kind: MailboxCertKind) => abs(rel.mailboxCert(address, kind)),
    mailboxKey: (address: string, kind: MailboxCertKind) => abs(rel.mailboxKey(address, kind)),
  };
}

/** The directory name of a mailbox: the lower-cased address, refused if it could escape certsDir. */
function mailboxDirName(address: string): string {
  const a = address.trim().toLowerCase();
  if (a.length > 254 || !/^[a-z0-9!#$%&'*+=?^_`{|}~.-]+@[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?$/.test(a) || a.includes('..') || a.startsWith('.')) {
    throw new DevPkiError(`not a usable mailbox address: ${JSON.stringify(address)}`);
  }
  return a;
}

// ---------------------------------------------------------------------------------------------------------
// Files: atomic writes, sealed keys, a lock

function writeAtomic(file: string, data: string | Buffer, mode: number): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, data, { mode, flag: 'wx' });
    chmodSync(tmp, mode);
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw err;
  }
}

class Ctx {
  readonly written: string[] = [];
  constructor(readonly opts: DevPkiOptions) {}

  abs(r: string): string {
    return path.join(this.opts.certsDir, r);
  }
  exists(r: string): boolean {
    return existsSync(this.abs(r));
  }
  read(r: string): string {
    return readFileSync(this.abs(r), 'utf8');
  }
  writePublic(r: string, text: string): void {
    writeAtomic(this.abs(r), text, 0o644);
    this.written.push(this.abs(r));
  }
  async writeKey(r: string, privateKey: Key): Promise<void> {
    const der = Buffer.from(await subtle.exportKey('pkcs8', privateKey));
    try {
      writeAtomic(this.abs(r), this.opts.keyring.sealWithMaster(der, aad.privateKey(r)), 0o600);
    } finally {
      der.fill(0);
    }
    this.written.push(this.abs(r));
  }
  result(files: string[]): DevPkiResult {
    return { created: this.written.length > 0, files: files.map((f) => this.abs(f)), written: [...this.written] };
  }
}

function openSealedKey(certsDir: string, keyring: Keyring, r: string): Buffer {
  const file = path.join(certsDir, r);
  try {
    return keyring.openWithMaster(readFileSync(file), aad.privateKey(r));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new DevPkiError(`private key missing: ${file}`);
    throw new DevPkiError(`cannot open ${file}: ${(err as Error).message} (is this the master key that sealed it?)`);
  }
}

/** The certificates of a PEM file (a leaf file may hold leaf + chain). */
function readCerts(file: string): x509.X509Certificate[] {
  const blocks = pemBlocks(readFileSync(file, 'utf8'), 'CERTIFICATE');
  if (blocks.length === 0) throw new DevPkiError(`no certificate in ${file}`);
  return blocks.map((der) => new x509.X509Certificate(der));
}

const inProcessLocks = new Map<string, Promise<void>>();
const LOCK_STALE_MS = 120_000;
const LOCK_WAIT_MS = 180_000;

/** Serialises writers of one certsDir: in this process by a promise chain, across processes by an O_EXCL lock file. */
async function withLock<T>(certsDir: string, fn: () => Promise<T>): Promise<T> {
  const dir = path.resolve(certsDir);
  const previous = inProcessLocks.get(dir) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((resolve) => (release = resolve));
  const tail = previous.then(() => mine);
  inProcessLocks.set(dir, tail);
  await previous;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const lockFile = path.join(dir, '.devpki.lock');
    const started = Date.now();
    for (;;) {
      try {
        const fd = openSync(lockFile, 'wx', 0o600);
        writeSync(fd, `${process.pid}\n`);
        closeSync(fd);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        try {
          if (Date.now() - statSync(lockFile).mtimeMs > LOCK_STALE_MS) unlinkSync(lockFile);
        } catch {
          /* released meanwhile */
        }
        if (Date.now() - started > LOCK_WAIT_MS) {
          throw new DevPkiError(`another process holds ${lockFile}; if none is running, delete that file`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    try {
      return await fn();
    } finally {
      try {
        unlinkSync(lockFile);
      } catch {
        /* ignore */
      }
    }
  } finally {
    release();
    if (inProcessLocks.get(dir) === tail) inProcessLocks.delete(dir);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Keys and algorithms

function validateOptions(opts: DevPkiOptions): void {
  if (!['RSA-2048', 'RSA-3072', 'RSA-4096', 'ECDSA-P256'].includes(opts.keyAlgorithm)) {
    throw new DevPkiError(`unsupported key algorithm ${String(opts.keyAlgorithm)}`);
  }
  if (!['SHA-256', 'SHA-384', 'SHA-512'].includes(opts.hash)) throw new DevPkiError(`unsupported hash ${String(opts.hash)}`);
  for (const k of ['caValidityDays', 'leafValidityDays'] as const) {
    if (!Number.isInteger(opts[k]) || opts[k] <= 0) throw new DevPkiError(`${k} must be a positive integer`);
  }
}

async function generateKeyPair(alg: DevPkiOptions['keyAlgorithm'], hash: DevPkiOptions['hash']): Promise<KeyPair> {
  if (alg === 'ECDSA-P256') {
    return (await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as KeyPair;
  }
  const modulusLength = Number(alg.slice('RSA-'.length));
  return (await subtle.generateKey(
    { name: 'RSASSA-PKCS1-v1_5', modulusLength, publicExponent: new Uint8Array([1, 0, 1]), hash },
    true,
    ['sign', 'verify'],
  )) as KeyPair;
}

function isRsa(key: Key): boolean {
  return key.algorithm.name.startsWith('RSA');
}

function signingAlgorithm(key: Key, hash: DevPkiOptions['hash']): { name: string; hash: string } {
  return { name: isRsa(key) ? 'RSASSA-PKCS1-v1_5' : 'ECDSA', hash };
}

const CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

/** A PKCS#8 DER private key as a WebCrypto signing key (RSA or EC, whatever it is). */
async function importSigningKey(der: Buffer, hash: DevPkiOptions['hash']): Promise<Key> {
  const ko = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  if (ko.asymmetricKeyType === 'rsa') {
    return subtle.importKey('pkcs8', der, { name: 'RSASSA-PKCS1-v1_5', hash }, false, ['sign']);
  }
  const namedCurve = CURVES[ko.asymmetricKeyDetails?.namedCurve ?? ''];
  if (ko.asymmetricKeyType === 'ec' && namedCurve) {
    return subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve }, false, ['sign']);
  }
  throw new DevPkiError(`unsupported CA key type ${String(ko.asymmetricKeyType)}`);
}

/** Whether a PKCS#8 private key is the one of a certificate. */
function keyMatchesCert(der: Buffer, cert: x509.X509Certificate): boolean {
  const spki = createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).export({ type: 'spki', format: 'der' });
  return Buffer.from(cert.publicKey.rawData).equals(spki);
}

// ---------------------------------------------------------------------------------------------------------
// Names and certificates

type Rdn = [oid: string, value: string, type?: 'printable'];

/** A DN from RDNs in order (most significant first). Values are UTF8String except where X.520 wants PrintableString. */
function dn(rdns: Rdn[]): x509.Name {
  return new x509.Name(
    rdns.map(([oid, value, type]) => ({ [oid]: [type === 'printable' ? { printableString: value } : { utf8String: value }] })),
  );
}

function caSubject(ca: CaName): x509.Name {
  return dn([
    [OID.country, 'FR', 'printable'],
    [OID.organisation, DEV_ORGANISATION],
    [OID.organisationalUnit, DEV_UNIT],
    [OID.commonName, CA_SPECS[ca].cn],
  ]);
}

function checkText(what: string, value: string, max = 64): string {
  const v = value.normalize('NFC').trim();
  if (!v || v.length > max || /[\u0000-\u001f\u007f]/.test(v)) {
    throw new DevPkiError(`${what} must be 1 to ${max} printable characters: ${JSON.stringify(value)}`);
  }
  return v;
}

interface Authority {
  ca: CaName;
  cert: x509.X509Certificate;
  pem: string;
  key: Key;
  keyId: string;
}

function subjectKeyId(cert: x509.X509Certificate): string {
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  if (!ski) throw new DevPkiError(`certificate ${cert.subject} has no subjectKeyIdentifier`);
  return ski.keyId;
}

function authorityKeyId(cert: x509.X509Certificate): string | undefined {
  return cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
}

async function loadAuthority(ctx: Ctx, ca: CaName): Promise<Authority> {
  const certFile = ctx.abs(rel.caCert(ca));
  const [cert] = readCerts(certFile);
  const der = openSealedKey(ctx.opts.certsDir, ctx.opts.keyring, rel.caKey(ca));
  try {
    if (!keyMatchesCert(der, cert!)) throw new DevPkiError(`${rel.caKey(ca)} is not the key of ${certFile}`);
    const key = await importSigningKey(der, ctx.opts.hash);
    return { ca, cert: cert!, pem: cert!.toString('pem') + '\n', key, keyId: subjectKeyId(cert!) };
  } finally {
    der.fill(0);
  }
}

interface IssueParams {
  subject: x509.Name;
  keys: KeyPair;
  issuer: Authority | null; // null: self-signed
  days: number;
  extensions: x509.Extension[];
  hash: DevPkiOptions['hash'];
}

async function issue(p: IssueParams): Promise<x509.X509Certificate> {
  const ski = await x509.SubjectKeyIdentifierExtension.create(p.keys.publicKey);
  const now = Date.now();
  let notAfter = new Date(now + p.days * DAY_MS);
  if (p.issuer && notAfter > p.issuer.cert.notAfter) notAfter = p.issuer.cert.notAfter; // never outlive the issuer
  const signingKey = p.issuer ? p.issuer.key : p.keys.privateKey;
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: p.subject,
    issuer: p.issuer ? p.issuer.cert.subjectName : p.subject,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter,
    publicKey: p.keys.publicKey,
    signingKey: signingKey,
    signingAlgorithm: signingAlgorithm(signingKey, p.hash),
    extensions: [...p.extensions, ski, new x509.AuthorityKeyIdentifierExtension(p.issuer ? p.issuer.keyId : ski.keyId)],
  });
}

const { KeyUsageFlags: KU, ExtendedKeyUsage: EKU } = x509;

function leafBasics(usages: number, ekus: string[]): x509.Extension[] {
  return [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(usages, true),
    new x509.ExtendedKeyUsageExtension(ekus, false),
  ];
}

/** The usage that lets a key receive encrypted mail: RSA key transport, or ECDH key agreement for EC keys. */
function encipherUsage(keys: KeyPair): number {
  return isRsa(keys.publicKey) ? KU.keyEncipherment : KU.keyAgreement;
}

// ---------------------------------------------------------------------------------------------------------
// CRLs

export interface RevokedEntry {
  /** Hex serial number, as `X509Certificate.serialNumber` gives it. */
  serialNumber: string;
  revocationDate?: Date;
  reason?: x509.X509CrlReason;
}

function parseCrl(file: string): x509.X509Crl {
  const [der] = pemBlocks(readFileSync(file, 'utf8'), 'X509 CRL');
  if (!der) throw new DevPkiError(`no X509 CRL in ${file}`);
  return new x509.X509Crl(der);
}

function crlNumberOf(crl: x509.X509Crl): bigint {
  const ext = crl.getExtension(OID.crlNumber);
  if (!ext) return 0n;
  const v = Buffer.from(ext.value);
  if (v[0] !== 0x02 || v.length < 3) return 0n;
  return BigInt('0x' + v.subarray(2).toString('hex'));
}

/** The entries of a CA's current CRL (empty when it has none yet). */
export function readCrlEntries(certsDir: string, ca: CaName): RevokedEntry[] {
  const file = path.join(certsDir, rel.caCrl(ca));
  if (!existsSync(file)) return [];
  return parseCrl(file).entries.map((e) => {
    const entry: RevokedEntry = { serialNumber: e.serialNumber, revocationDate: e.revocationDate };
    if (e.reason !== undefined) entry.reason = e.reason;
    return entry;
  });
}

async function signCrl(ctx: Ctx, auth: Authority, revoked: RevokedEntry[], validityDays: number): Promise<void> {
  const r = rel.caCrl(auth.ca);
  const previous = ctx.exists(r) ? crlNumberOf(parseCrl(ctx.abs(r))) : 0n;
  const now = Date.now();
  // Monotonic CRL number (RFC 5280 §5.2.3): one more than the last, and never below the clock in seconds.
  const seconds = BigInt(Math.floor(now / 1000));
  const number = previous + 1n > seconds ? previous + 1n : seconds;
  const seen = new Set<string>();
  const entries = revoked.filter((e) => {
    const s = e.serialNumber.toLowerCase().replace(/^(00)+(?=[0-9a-f])/, '');
    if (seen.has(s)) return false;
    seen.add(s);
    return true;
  });
  const crl = await x509.X509CrlGenerator.create({
    issuer: auth.cert.subjectName,
    thisUpdate: new Date(now - BACKDATE_MS),
    nextUpdate: new Date(now + validityDays * DAY_MS),
    signingKey: auth.key,
    signingAlgorithm: signingAlgorithm(auth.key, ctx.opts.hash),
    entries: entries.map((e) => {
      const entry: x509.X509CrlEntryParams = { serialNumber: e.serialNumber, revocationDate: e.revocationDate ?? new Date(now) };
      if (e.reason !== undefined) entry.reason = e.reason;
      return entry;
    }),
    extensions: [new x509.AuthorityKeyIdentifierExtension(auth.keyId), new x509.Extension(OID.crlNumber, false, derInteger(number))],
  });
  ctx.writePublic(r, toPem(crl.rawData, 'X509 CRL'));
}

/**
 * (Re)writes the CRL of a CA with exactly these revoked certificates, valid `validityDays` (default 7).
 * Returns the CRL file.
 */
export async function writeCrl(
  opts: DevPkiOptions,
  ca: CaName,
  revoked: RevokedEntry[],
  validityDays: number = CRL_VALIDITY_DAYS,
): Promise<string> {
  validateOptions(opts);
  return withLock(opts.certsDir, async () => {
    const ctx = new Ctx(opts);
    requireCa(ctx, ca);
    await signCrl(ctx, await loadAuthority(ctx, ca), revoked, validityDays);
    return ctx.abs(rel.caCrl(ca));
  });
}

/**
 * Revokes a certificate issued by one of the dev CAs: adds it to its issuer's CRL (once) and re-signs the CRL.
 */
export async function revokeCertificate(
  opts: DevPkiOptions,
  certPem: string,
  reason: x509.X509CrlReason = x509.X509CrlReason.unspecified,
): Promise<{ ca: CaName; crlFile: string; alreadyRevoked: boolean }> {
  validateOptions(opts);
  const [der] = pemBlocks(certPem, 'CERTIFICATE');
  if (!der) throw new DevPkiError('no certificate to revoke');
  const cert = new x509.X509Certificate(der);
  return withLock(opts.certsDir, async () => {
    const ctx = new Ctx(opts);
    const aki = authorityKeyId(cert);
    const ca = CA_NAMES.find((name) => {
      if (!ctx.exists(rel.caCert(name))) return false;
      const [caCert] = readCerts(ctx.abs(rel.caCert(name)));
      return caCert!.subject === cert.issuer && (!aki || subjectKeyId(caCert!) === aki);
    });
    if (!ca) throw new DevPkiError(`${cert.subject} was not issued by a CA of ${opts.certsDir}`);
    const entries = readCrlEntries(opts.certsDir, ca);
    const crlFile = ctx.abs(rel.caCrl(ca));
    if (entries.some((e) => sameSerial(e.serialNumber, cert.serialNumber))) return { ca, crlFile, alreadyRevoked: true };
    entries.push({ serialNumber: cert.serialNumber, revocationDate: new Date(), reason });
    await signCrl(ctx, await loadAuthority(ctx, ca), entries, CRL_VALIDITY_DAYS);
    return { ca, crlFile, alreadyRevoked: false };
  });
}

function sameSerial(a: string, b: string): boolean {
  const norm = (s: string) => s.toLowerCase().replace(/^(00)+(?=[0-9a-f])/, '');
  return norm(a) === norm(b);
}

// ---------------------------------------------------------------------------------------------------------
// ensureDevPki

function requireCa(ctx: Ctx, ca: CaName): void {
  if (!ctx.exists(rel.caCert(ca)) || !ctx.exists(rel.caKey(ca))) {
    throw new DevPkiError(`the dev PKI is not initialised in ${ctx.opts.certsDir} (missing ${rel.caCert(ca)}): run \`mss init\` or \`mss pki\` first`);
  }
}

async function ensureCa(ctx: Ctx, ca: CaName, parent: Authority | null): Promise<Authority> {
  const hasCert = ctx.exists(rel.caCert(ca));
  const hasKey = ctx.exists(rel.caKey(ca));
  if (hasCert && hasKey) {
    const auth = await loadAuthority(ctx, ca);
    if (parent && authorityKeyId(auth.cert) !== parent.keyId) {
      throw new DevPkiError(`${ctx.abs(rel.caCert(ca))} was not issued by ${ctx.abs(rel.caCert(parent.ca))}: delete ${ctx.abs('ca')} to start over`);
    }
    return auth;
  }
  if (hasCert !== hasKey) {
    throw new DevPkiError(
      `incomplete CA ${ca} in ${ctx.opts.certsDir}: ${hasCert ? rel.caKey(ca) : rel.caCert(ca)} is missing; delete ${ctx.abs('ca')} to start over (this invalidates every certificate issued so far)`,
    );
  }
  if (!parent && CA_NAMES.some((c) => c !== 'root' && ctx.exists(rel.caCert(c)))) {
    throw new DevPkiError(`the root CA is missing but intermediates exist in ${ctx.abs('ca')}: delete that directory to start over`);
  }
  const spec = CA_SPECS[ca];
  const keys = await generateKeyPair(ctx.opts.keyAlgorithm, ctx.opts.hash);
  const cert = await issue({
    subject: caSubject(ca),
    keys,
    issuer: parent,
    days: ctx.opts.caValidityDays,
    hash: ctx.opts.hash,
    extensions: [new x509.BasicConstraintsExtension(true, spec.pathLen, true), new x509.KeyUsagesExtension(KU.keyCertSign | KU.cRLSign, true)],
  });
  await ctx.writeKey(rel.caKey(ca), keys.privateKey);
  ctx.writePublic(rel.caCert(ca), cert.toString('pem') + '\n');
  const auth: Authority = { ca, cert, pem: cert.toString('pem') + '\n', key: keys.privateKey, keyId: subjectKeyId(cert) };
  // A new CA starts with an empty CRL (replacing any left over from a previous key).
  await signCrl(ctx, auth, [], CRL_VALIDITY_DAYS);
  return auth;
}

async function ensureCrl(ctx: Ctx, auth: Authority): Promise<void> {
  const r = rel.caCrl(auth.ca);
  if (!ctx.exists(r)) return signCrl(ctx, auth, [], CRL_VALIDITY_DAYS);
  const crl = parseCrl(ctx.abs(r));
  const stale = !crl.nextUpdate || crl.nextUpdate.getTime() - Date.now() < CRL_REFRESH_MARGIN_MS;
  const foreign = crl.issuer !== auth.cert.subject || crl.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId !== auth.keyId;
  if (foreign) throw new DevPkiError(`${ctx.abs(r)} is not signed by ${ctx.abs(rel.caCert(auth.ca))}`);
  if (stale) await signCrl(ctx, auth, readCrlEntries(ctx.opts.certsDir, auth.ca), CRL_VALIDITY_DAYS);
}

function serverSan(serverNames: string[]): { dns: string[]; ips: string[] } {
  const dns = new Set<string>();
  const ips = new Set<string>();
  for (const raw of [...serverNames, 'localhost']) {
    const name = raw.trim().toLowerCase().replace(/\.$/, '');
    if (!name) continue;
    if (isIP(name)) ips.add(name);
    else if (/^(\*\.)?[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/.test(name)) dns.add(name);
    else throw new DevPkiError(`not a host name or IP address: ${JSON.stringify(raw)}`);
  }
  ips.add('127.0.0.1');
  ips.add('::1');
  return { dns: [...dns], ips: [...ips] };
}

function sanNames(cert: x509.X509Certificate): { type: string; value: string }[] {
  return cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.items.map((n) => ({ type: n.type, value: n.value })) ?? [];
}

/** Whether the existing server certificate is still fit: key opens and matches, issuer, names, not near expiry. */
function serverCertIsCurrent(ctx: Ctx, issuer: Authority, want: { dns: string[]; ips: string[] }): boolean {
  if (!ctx.exists(rel.serverCert) || !ctx.exists(rel.serverKey)) return false;
  const [leaf] = readCerts(ctx.abs(rel.serverCert));
  const der = openSealedKey(ctx.opts.certsDir, ctx.opts.keyring, rel.serverKey);
  try {
    if (!keyMatchesCert(der, leaf!)) return false;
  } finally {
    der.fill(0);
  }
  if (authorityKeyId(leaf!) !== issuer.keyId) return false;
  // Renew within 7 days of expiry, or the last third of a shorter lifetime (so short test validities stay idempotent).
  const lifetime = leaf!.notAfter.getTime() - leaf!.notBefore.getTime();
  if (leaf!.notAfter.getTime() - Date.now() < Math.min(SERVER_RENEW_MARGIN_MS, lifetime / 3)) return false;
  const have = sanNames(leaf!);
  const hasName = (type: string, value: string) => have.some((n) => n.type === type && n.value.toLowerCase() === value);
  return want.dns.every((d) => hasName('dns', d)) && want.ips.every((ip) => have.some((n) => n.type === 'ip' && sameIp(n.value, ip)));
}

function sameIp(a: string, b: string): boolean {
  const expand = (ip: string) => (isIP(ip) === 6 ? new URL(`http://[${ip}]/`).hostname : ip);
  try {
    return expand(a) === expand(b);
  } catch {
    return false;
  }
}

async function ensureServer(ctx: Ctx, issuer: Authority): Promise<void> {
  const want = serverSan(ctx.opts.serverNames);
  if (serverCertIsCurrent(ctx, issuer, want)) return;
  const keys = await generateKeyPair(ctx.opts.keyAlgorithm, ctx.opts.hash);
  const cert = await issue({
    subject: dn([
      [OID.country, 'FR', 'printable'],
      [OID.organisation, DEV_ORGANISATION],
      [OID.organisationalUnit, DEV_UNIT],
      [OID.commonName, want.dns.find((d) => d !== 'localhost') ?? 'localhost'],
    ]),
    keys,
    issuer,
    days: ctx.opts.leafValidityDays,
    hash: ctx.opts.hash,
    extensions: [
      ...leafBasics(KU.digitalSignature | (isRsa(keys.publicKey) ? KU.keyEncipherment : 0), [EKU.serverAuth, EKU.clientAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...want.dns.map((value) => ({ type: 'dns' as const, value })),
        ...want.ips.map((value) => ({ type: 'ip' as const, value })),
      ]),
    ],
  });
  await ctx.writeKey(rel.serverKey, keys.privateKey);
  ctx.writePublic(rel.serverCert, cert.toString('pem') + '\n' + issuer.pem);
}

function devPkiFiles(): string[] {
  return [
    ...CA_NAMES.flatMap((ca) => [rel.caCert(ca), rel.caKey(ca), rel.caCrl(ca)]),
    rel.chain,
    rel.serverCert,
    rel.serverKey,
  ];
}

/**
 * Creates the CAs, CRLs and server certificate if absent; idempotent (returns created=false and changes
 * nothing when all exists). Also repairs what is missing or stale: a CRL within a day of its nextUpdate is
 * re-signed with the same entries, and the server certificate is reissued when a configured name is not in
 * it or it expires within 7 days (or the last third of a shorter lifetime).
 */
export async function ensureDevPki(opts: DevPkiOptions): Promise<DevPkiResult> {
  validateOptions(opts);
  serverSan(opts.serverNames); // refuse bad names before writing anything
  return withLock(opts.certsDir, async () => {
    const ctx = new Ctx(opts);
    const root = await ensureCa(ctx, 'root', null);
    const persons = await ensureCa(ctx, 'persons', root);
    const organisations = await ensureCa(ctx, 'organisations', root);
    for (const auth of [root, persons, organisations]) await ensureCrl(ctx, auth);
    const chain = root.pem + persons.pem + organisations.pem;
    if (!ctx.exists(rel.chain) || ctx.read(rel.chain) !== chain) ctx.writePublic(rel.chain, chain);
    await ensureServer(ctx, organisations);
    return ctx.result(devPkiFiles());
  });
}

// ---------------------------------------------------------------------------------------------------------
// Mailbox certificates

/** Issues a leaf for a mailbox unless its cert and key are both present. */
async function ensureMailboxCert(
  ctx: Ctx,
  issuer: Authority,
  address: string,
  kind: MailboxCertKind,
  subject: x509.Name,
  extensions: (keys: KeyPair) => x509.Extension[],
): Promise<void> {
  if (ctx.exists(rel.mailboxCert(address, kind)) && ctx.exists(rel.mailboxKey(address, kind))) return;
  const keys = await generateKeyPair(ctx.opts.keyAlgorithm, ctx.opts.hash);
  const cert = await issue({ subject, keys, issuer, days: ctx.opts.leafValidityDays, hash: ctx.opts.hash, extensions: extensions(keys) });
  await ctx.writeKey(rel.mailboxKey(address, kind), keys.privateKey);
  ctx.writePublic(rel.mailboxCert(address, kind), cert.toString('pem') + '\n');
}

/** Refuses to add certificates to a mailbox directory that already holds someone else's. */
function checkOwner(ctx: Ctx, address: string, kinds: MailboxCertKind[], nationalId: string): void {
  for (const kind of kinds) {
    if (!ctx.exists(rel.mailboxCert(address, kind))) continue;
    const [cert] = readCerts(ctx.abs(rel.mailboxCert(address, kind)));
    const ids = cert!.subjectName.getField(OID.serialNumber);
    if (!ids.includes(nationalId)) {
      throw new DevPkiError(
        `${ctx.abs(rel.mailboxCert(address, kind))} belongs to ${ids.join(',') || 'another holder'}, not ${nationalId}: revoke it and remove that directory first`,
      );
    }
  }
}

/** Issues (if absent) the auth and signature certificates of a practitioner mailbox. rpps = 11 digits. */
export async function issuePractitionerCertificates(
  opts: DevPkiOptions,
  p: { address: string; rpps: string; givenName: string; surname: string; organisation: string },
): Promise<DevPkiResult> {
  validateOptions(opts);
  if (!/^\d{11}$/.test(p.rpps)) throw new DevPkiError(`RPPS must be 11 digits: ${JSON.stringify(p.rpps)}`);
  const address = mailboxDirName(p.address);
  const idNatPs = `8${p.rpps}`;
  const surname = checkText('surname', p.surname).toUpperCase();
  const givenName = checkText('given name', p.givenName);
  const organisation = checkText('organisation', p.organisation);
  const cn = checkText('common name', `${idNatPs}/${surname} ${givenName}`);
  const subject = dn([
    [OID.country, 'FR', 'printable'],
    [OID.organisation, DEV_ORGANISATION],
    [OID.organisationalUnit, organisation],
    [OID.serialNumber, idNatPs, 'printable'],
    [OID.surname, surname],
    [OID.givenName, givenName],
    [OID.commonName, cn],
  ]);
  const san = () => new x509.SubjectAlternativeNameExtension([{ type: 'email', value: address }]);
  return withLock(opts.certsDir, async () => {
    const ctx = new Ctx(opts);
    requireCa(ctx, 'persons');
    checkOwner(ctx, address, ['auth', 'sign'], idNatPs);
    const kinds: MailboxCertKind[] = ['auth', 'sign'];
    if (kinds.some((k) => !ctx.exists(rel.mailboxCert(address, k)) || !ctx.exists(rel.mailboxKey(address, k)))) {
      const persons = await loadAuthority(ctx, 'persons');
      await ensureMailboxCert(ctx, persons, address, 'auth', subject, (keys) => [
        ...leafBasics(KU.digitalSignature | encipherUsage(keys), [EKU.clientAuth, EKU.emailProtection]),
        san(),
      ]);
      await ensureMailboxCert(ctx, persons, address, 'sign', subject, () => [
        ...leafBasics(KU.nonRepudiation | KU.digitalSignature, [EKU.emailProtection]),
        san(),
      ]);
    }
    return ctx.result(kinds.flatMap((k) => [rel.mailboxCert(address, k), rel.mailboxKey(address, k)]));
  });
}

/** Issues (if absent) the certificate of an application/organisation mailbox. idNatStruct e.g. '1' + 9-digit FINESS. */
export async function issueOrganisationCertificate(
  opts: DevPkiOptions,
  o: { address: string; idNatStruct: string; name: string },
): Promise<DevPkiResult> {
  validateOptions(opts);
  if (!/^[0-9][0-9A-Za-z]{1,29}$/.test(o.idNatStruct)) {
    throw new DevPkiError(`idNat_Struct must be a type digit then letters/digits (e.g. 1 + FINESS): ${JSON.stringify(o.idNatStruct)}`);
  }
  const address = mailboxDirName(o.address);
  const name = checkText('organisation name', o.name);
  const subject = dn([
    [OID.country, 'FR', 'printable'],
    [OID.organisation, name],
    [OID.organisationalUnit, o.idNatStruct],
    [OID.serialNumber, o.idNatStruct, 'printable'],
    [OID.commonName, checkText('common name', address)],
  ]);
  return withLock(opts.certsDir, async () => {
    const ctx = new Ctx(opts);
    requireCa(ctx, 'organisations');
    checkOwner(ctx, address, ['org'], o.idNatStruct);
    if (!ctx.exists(rel.mailboxCert(address, 'org')) || !ctx.exists(rel.mailboxKey(address, 'org'))) {
      const organisations = await loadAuthority(ctx, 'organisations');
      await ensureMailboxCert(ctx, organisations, address, 'org', subject, (keys) => [
        ...leafBasics(KU.digitalSignature | encipherUsage(keys), [EKU.clientAuth, EKU.emailProtection]),
        new x509.SubjectAlternativeNameExtension([{ type: 'email', value: address }]),
      ]);
    }
    return ctx.result([rel.mailboxCert(address, 'org'), rel.mailboxKey(address, 'org')]);
  });
}

// ---------------------------------------------------------------------------------------------------------
// Loading

function unsealPem(certsDir: string, keyring: Keyring, r: string): string {
  const der = openSealedKey(certsDir, keyring, r);
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }) as string;
  } finally {
    der.fill(0);
  }
}

function readOrExplain(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DevPkiError(`missing ${file}: run \`mss init\` (or \`mss pki\`) to create the dev PKI`);
    }
    throw err;
  }
}

/** TLS material for node:tls: key (PEM, unsealed in memory only), cert (leaf+intermediate PEM chain), ca (root PEM). */
export function loadServerTls(certsDir: string, keyring: Keyring): { key: string; cert: string; ca: string } {
  const cert = readOrExplain(path.join(certsDir, rel.serverCert));
  const ca = readOrExplain(path.join(certsDir, rel.caCert('root')));
  return { key: unsealPem(certsDir, keyring, rel.serverKey), cert, ca };
}

/**
 * Key and certificate a mailbox uses for one purpose: a practitioner signs with `sign` and authenticates and
 * decrypts with `auth`; an application mailbox uses its `org` certificate for everything.
 * `chain` is the issuing intermediate (PEM); the trust anchor is ca/root.pem.
 */
export function loadMailboxCredential(
  certsDir: string,
  keyring: Keyring,
  address: string,
  use: 'auth' | 'sign' | 'encrypt',
): { kind: MailboxCertKind; key: string; cert: string; chain: string } {
  const kind: MailboxCertKind = existsSync(path.join(certsDir, rel.mailboxCert(address, 'org')))
    ? 'org'
    : use === 'sign'
      ? 'sign'
      : 'auth';
  const cert = readOrExplain(path.join(certsDir, rel.mailboxCert(address, kind)));
  const chain = readOrExplain(path.join(certsDir, rel.caCert(kind === 'org' ? 'organisations' : 'persons')));
  return { kind, key: unsealPem(certsDir, keyring, rel.mailboxKey(address, kind)), cert, chain };
}

// ---------------------------------------------------------------------------------------------------------
// Reading identities

/**
 * The practitioner's national identifier idNat_PS (`8` + RPPS) from a certificate's subject, or null when
 * the certificate carries none (or cannot be parsed). The attribute and pattern are configurable because the
 * IGC-Santé naming rules still have to be confirmed against the gabarits document (DOMAIN.md §3).
 */
export function practitionerIdFromCertificate(
  pem: string,
  options: { attribute?: string; pattern?: RegExp } = {},
): string | null {
  const attribute = options.attribute ?? OID.serialNumber;
  const pattern = options.pattern ?? /^8\d{11}$/;
  try {
    const [der] = pemBlocks(pem, 'CERTIFICATE');
    if (!der) return null;
    const values = new x509.X509Certificate(der).subjectName.getField(attribute);
    return values.find((v) => pattern.test(v)) ?? null;
  } catch {
    return null;
  }
}
