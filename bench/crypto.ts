/**
 * S/MIME security agent: sign+encrypt (protectOutbound: wrap as message/rfc822, SHA-256 RSA signature,
 * AES-256-CBC, RSA PKCS#1 v1.5 key transport to the recipient and the sender) and decrypt+verify
 * (processInbound: decrypt, verify the signature, build and check the path to the dev root, compare the outer
 * headers, check the signer's identity) of 5 KB, 100 KB and 1 MB messages, with the dev PKI's practitioner
 * certificates (RSA-2048). Ours: the median of many in-process runs (keys loaded once, as a running gateway has them).
 *
 * Peer: `openssl cms` doing the same work on the same files: `-sign` then `-encrypt` (to the same two
 * certificates), and `-decrypt` then `-verify -CAfile root` (chain checked; neither side checks CRLs here).
 * OpenSSL is a process per operation, so its time per message is measured without process start: one shell
 * loop runs the N message pipelines, another runs the same number of `openssl version` (process start,
 * library and configuration loading), and peer_ms = (T_loop − T_baseline) / N; the median of 3 such pairs.
 * OpenSSL still parses its key and certificate files in every command; we do not count that for us.
 *
 *   npm run bench -- crypto [--runs-5KB=300] [--runs-100KB=150] [--runs-1MB=40] [--peer-n=40] [--only=1MB]
 *
 * Output: one line per operation and size: RESULT <op>_<size> ms=<ours> peer_ms=<openssl> ratio=<ours/openssl>.
 */
import { execFile } from 'node:child_process';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { devPkiPaths, ensureDevPki, issuePractitionerCertificates, loadMailboxCredential } from '../src/crypto/devpki.js';
import { Keyring } from '../src/crypto/seal.js';
import { Certificate, processInbound, protectOutbound, type TrustOptions } from '../src/crypto/smime/index.js';

const run = promisify(execFile);
const arg = (name: string, dflt: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt);
const PEER_REPEATS = 3;
const ONLY = process.argv.find((a) => a.startsWith('--only='))?.split('=')[1];
const ALL_SIZES = [
  { name: '5KB', bytes: 5 * 1024, runs: arg('runs-5KB', 300), peerN: arg('peer-n', 40) },
  { name: '100KB', bytes: 100 * 1024, runs: arg('runs-100KB', 150), peerN: arg('peer-n', 40) },
  { name: '1MB', bytes: 1024 * 1024, runs: arg('runs-1MB', 40), peerN: Math.max(10, Math.floor(arg('peer-n', 40) / 2)) },
];
const SIZES = ALL_SIZES.filter((s) => !ONLY || s.name === ONLY);

const JEAN = { address: 'jean.dupont@hopital-demo.mssante.test', rpps: '10001234567', givenName: 'Jean', surname: 'Dupont', organisation: 'Hôpital Démo' };
const CLAIRE = { address: 'claire.martin@hopital-demo.mssante.test', rpps: '10007654321', givenName: 'Claire', surname: 'Martin', organisation: 'Hôpital Démo' };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A realistic message: headers and a base64 attachment-like body in 76-character CRLF lines. */
function message(bytes: number): Buffer {
  const head =
    `From: Jean Dupont <${JEAN.address}>\r\nTo: Claire Martin <${CLAIRE.address}>\r\nSubject: XDM/1.0/DDM+CR DUPONT Pierre 19500101\r\n` +
    `Date: Tue, 24 Nov 2026 10:00:00 +0100\r\nMessage-ID: <bench@hopital-demo.mssante.test>\r\nMIME-Version: 1.0\r\n` +
    `Content-Type: application/pdf; name=cr.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n`;
  const lines = Math.ceil((bytes - head.length) / 78);
  const b64 = randomBytes(lines * 57).toString('base64');
  const body = (b64.match(/.{1,76}/g) ?? []).join('\r\n') + '\r\n';
  return Buffer.from(head + body, 'latin1');
}

async function shell(script: string, cwd: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  await run('bash', ['-c', script], { cwd, maxBuffer: 16 * 1024 * 1024 });
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'mss-bench-crypto-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const certsDir = path.join(dir, 'certs');
  const opts = { certsDir, keyring: new Keyring(randomBytes(32)), keyAlgorithm: 'RSA-2048', hash: 'SHA-256', caValidityDays: 3650, leafValidityDays: 825, serverNames: [] } as const;
  await ensureDevPki({ ...opts, serverNames: [] });
  await issuePractitionerCertificates({ ...opts, serverNames: [] }, JEAN);
  await issuePractitionerCertificates({ ...opts, serverNames: [] }, CLAIRE);
  const cred = (address: string, use: 'sign' | 'encrypt') => loadMailboxCredential(certsDir, opts.keyring, address, use);
  const jeanSign = cred(JEAN.address, 'sign');
  const jeanAuth = cred(JEAN.address, 'encrypt');
  const claireAuth = cred(CLAIRE.address, 'encrypt');
  const p = devPkiPaths(certsDir);
  // Files for openssl (keys in clear in a private temp dir removed at exit).
  const w = (name: string, text: string) => writeFileSync(path.join(dir, name), text, { mode: 0o600 });
  w('jean-sign.pem', jeanSign.cert);
  w('jean-sign.key', jeanSign.key);
  w('jean-auth.pem', jeanAuth.cert);
  w('claire-auth.pem', claireAuth.cert);
  w('claire-auth.key', claireAuth.key);
  w('persons.pem', jeanSign.chain);
  w('root.pem', readFileSync(p.caCert('root'), 'utf8'));

  const signer = { key: createPrivateKey(jeanSign.key), certificate: Certificate.from(jeanSign.cert), chain: Certificate.parseAll(jeanSign.chain) };
  const jeanEnc = Certificate.from(jeanAuth.cert);
  const claire = { key: createPrivateKey(claireAuth.key), certificate: Certificate.from(claireAuth.cert) };
  const trust: TrustOptions = { anchors: Certificate.parseAll(readFileSync(p.caCert('root'))) };

  const results: string[] = [];
  for (const size of SIZES) {
    const msg = message(size.bytes);
    // ---- ours
    const protect = async () => {
      const r = await protectOutbound({ message: msg, signer, recipients: [claire.certificate], senderCertificate: jeanEnc });
      if (!r.ok) throw new Error(`protectOutbound: ${r.code} ${r.detail}`);
      return r.message;
    };
    const sample = await protect();
    const inbound = async () => {
      const r = await processInbound({ message: sample, decryptionKeys: [claire], trust });
      if (!r.ok) throw new Error(`processInbound: ${r.code} ${r.detail}`);
      if (r.message.length !== msg.length) throw new Error('round trip changed the message');
    };
    const timeIt = async (fn: () => Promise<unknown>, runs: number) => {
      for (let i = 0; i < Math.min(20, runs); i++) await fn(); // warm-up
      const times: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t0 = process.hrtime.bigint();
        await fn();
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      return median(times);
    };
    const oursOut = await timeIt(protect, size.runs);
    const oursIn = await timeIt(inbound, size.runs);

    // ---- openssl
    writeFileSync(path.join(dir, 'wrapped.eml'), Buffer.concat([Buffer.from('Content-Type: message/rfc822\r\n\r\n'), msg]));
    const signEncrypt =
      'openssl cms -sign -binary -md sha256 -in wrapped.eml -signer jean-sign.pem -inkey jean-sign.key -certfile persons.pem -out signed.eml && ' +
      'openssl cms -encrypt -binary -aes-256-cbc -in signed.eml -out enc.eml claire-auth.pem jean-auth.pem';
    const decryptVerify =
      'openssl cms -decrypt -in enc.eml -recip claire-auth.pem -inkey claire-auth.key -out dec.eml && ' +
      'openssl cms -verify -in dec.eml -CAfile root.pem -purpose smimesign -out verified.eml 2>/dev/null';
    await shell(`${signEncrypt} && ${decryptVerify}`, dir); // check it works, and warm the page cache
    const N = size.peerN;
    const loop = (body: string) => `for i in $(seq ${N}); do ${body} || exit 1; done`;
    const baseline = loop('openssl version >/dev/null && openssl version >/dev/null');
    const peer = async (body: string) => {
      const per: number[] = [];
      let start = 0;
      for (let r = 0; r < PEER_REPEATS; r++) {
        const tOps = await shell(loop(body), dir);
        const tBase = await shell(baseline, dir);
        per.push((tOps - tBase) / N);
        start = tBase / N / 2;
      }
      return { ms: median(per), start };
    };
    const peerOut = await peer(signEncrypt);
    const peerIn = await peer(decryptVerify);
    const line = (op: string, ours: number, theirs: { ms: number; start: number }) =>
      `RESULT ${op}_${size.name} ms=${ours.toFixed(2)} peer_ms=${theirs.ms.toFixed(2)} ratio=${(ours / theirs.ms).toFixed(2)} ` +
      `bytes=${msg.length} runs=${size.runs} peer=openssl-cms peer_n=${N} peer_process_start_ms=${theirs.start.toFixed(2)}`;
    results.push(line('sign_encrypt', oursOut, peerOut), line('decrypt_verify', oursIn, peerIn));
    console.log(results.slice(-2).join('\n'));
  }
  console.log('\nours: in-process median; peer: openssl cms per message = (loop of N pipelines − loop of N×2 `openssl version`) / N, median of 3');
  for (const r of results) console.log(r);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
