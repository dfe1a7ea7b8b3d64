/** Certificates made with the openssl CLI (run asynchronously), for keystore imports: a test CA, leaves, PKCS#12. */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CommandResult {
  code: number;
  out: string;
}

/** Runs a command; never throws for a non-zero exit (the status and stdout+stderr are returned). */
export async function command(file: string, args: string[], cwd: string): Promise<CommandResult> {
  try {
    const { stdout, stderr } = await run(file, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, out: `${stdout}${stderr}` };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: `${e.stdout ?? ''}${e.stderr ?? String(err)}` };
  }
}

export async function openssl(args: string[], cwd: string): Promise<string> {
  const r = await command('openssl', args, cwd);
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} exited ${r.code}: ${r.out}`);
  return r.out;
}

export interface TestCa {
  certFile: string;
  keyFile: string;
  certPem: string;
}

export interface TestLeaf {
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
}

export async function makeTestCa(dir: string, name: string): Promise<TestCa> {
  const keyFile = path.join(dir, `${name}-ca.key`);
  const certFile = path.join(dir, `${name}-ca.pem`);
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-subj', `/O=Test/CN=${name} CA`, '-days', '30'], dir);
  return { certFile, keyFile, certPem: readFileSync(certFile, 'utf8') };
}

export interface LeafOptions {
  email: string;
  bits?: number;
  keyUsage?: string;
  extKeyUsage?: string;
}

/** A leaf issued by `ca`, with the address as rfc822Name; default RSA-2048, digitalSignature + keyEncipherment. */
export async function makeLeaf(dir: string, ca: TestCa, name: string, o: LeafOptions): Promise<TestLeaf> {
  const keyFile = path.join(dir, `${name}.key`);
  const certFile = path.join(dir, `${name}.pem`);
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  writeFileSync(
    ext,
    [
      'basicConstraints = critical, CA:FALSE',
      `keyUsage = critical, ${o.keyUsage ?? 'digitalSignature, keyEncipherment'}`,
      `extendedKeyUsage = ${o.extKeyUsage ?? 'clientAuth, emailProtection'}`,
      `subjectAltName = email:${o.email}`,
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
      '',
    ].join('\n'),
  );
  await openssl(['req', '-new', '-newkey', `rsa:${o.bits ?? 2048}`, '-nodes', '-keyout', keyFile, '-out', csr, '-subj', `/O=Test/CN=${name}`], dir);
  await openssl(
    ['x509', '-req', '-in', csr, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '30', '-extfile', ext, '-out', certFile],
    dir,
  );
  return { certFile, keyFile, certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') };
}

/** `openssl pkcs12 -export` of a leaf, its key and the CA certificate (OpenSSL 3 defaults: PBES2, AES-256). */
export async function makeP12(dir: string, leaf: TestLeaf, ca: TestCa, password: string, name: string): Promise<string> {
  const file = path.join(dir, `${name}.p12`);
  await openssl(['pkcs12', '-export', '-in', leaf.certFile, '-inkey', leaf.keyFile, '-certfile', ca.certFile, '-out', file, '-passout', `pass:${password}`], dir);
  return file;
}
