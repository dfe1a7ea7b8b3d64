import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthenticator } from '../../src/accounts/certificate-login.js';
import { createMailbox } from '../../src/accounts/mailboxes.js';
import { devPkiPaths, ensureDevPki, type DevPkiOptions } from '../../src/crypto/devpki.js';
import { Keystore } from '../../src/crypto/keystore.js';
import { Keyring } from '../../src/crypto/seal.js';
import { ENGINES, tempDir } from '../helpers/engines.js';
import { makeLeaf, makeTestCa } from '../helpers/openssl-certs.js';
import { ImapLineClient, startImapServer, tlsMaterial, type ImapTestServer } from './harness.js';

/**
 * AUTHENTICATE EXTERNAL (RFC 4422) with TLS client certificates from the dev PKI: the practitioner's `auth`
 * certificate, exported from the keystore, logs in on both listeners; a certificate the dev CA did not issue
 * (even one the keystore holds), one that is not the mailbox's, a revoked one, or another authorization identity
 * are refused.
 */

const JEAN = 'jean.dupont@hopital-demo.mssante.test';
const PAUL = 'paul.durand@hopital-demo.mssante.test';
const b64 = (s: string) => Buffer.from(s).toString('base64');

const tmp = tempDir('mss-imap-external-');
const pkiKeyring = new Keyring(randomBytes(32));
const pki: DevPkiOptions = {
  certsDir: path.join(tmp.dir, 'certs'),
  keyring: pkiKeyring,
  keyAlgorithm: 'ECDSA-P256',
  hash: 'SHA-256',
  caValidityDays: 30,
  leafValidityDays: 30,
  serverNames: ['localhost'],
};
let ca: string[] = [];

beforeAll(async () => {
  await ensureDevPki(pki);
  const paths = devPkiPaths(pki.certsDir);
  ca = (['root', 'persons', 'organisations'] as const).map((name) => readFileSync(paths.caCert(name), 'utf8'));
});
afterAll(() => tmp.dispose());

describe.each(ENGINES)('AUTHENTICATE EXTERNAL (%s)', (engine) => {
  let server: ImapTestServer | null = null;
  let keystore: Keystore;
  const clients: ImapLineClient[] = [];
  /** Each practitioner's auth certificate (with its chain) and private key, as a client presents them. */
  const identities = new Map<string, { cert: string; key: string; fingerprint: string }>();

  const start = async () => {
    server = await startImapServer(engine, {}, undefined, {
      clientAuth: (store) => ({
        ca,
        certificates: new CertificateAuthenticator(store, new Keystore({ store, keyring: pkiKeyring, pki }), { anchors: ca.slice(0, 1), intermediates: ca.slice(1) }),
      }),
    });
    keystore = new Keystore({ store: server.store, keyring: pkiKeyring, pki });
    for (const [address, rpps] of [
      [JEAN, '810001234567'],
      [PAUL, '810007654321'],
    ] as const) {
      await createMailbox(server.store, server.keyring, { address, type: 'PER', ownerId: rpps });
      await keystore.issueDev(address, { openpgp: false });
      const auth = await keystore.credentialsFor(address, 'auth');
      identities.set(address, {
        cert: auth.certificate.pem + (auth.chain ?? []).map((c) => c.pem).join(''),
        key: auth.key.export({ type: 'pkcs8', format: 'pem' }) as string,
        fingerprint: auth.certificate.fingerprint256,
      });
    }
  };
  const connect = async (identity: { cert?: string; key?: string } = {}, listener: 'tls' | 'plain' = 'tls') => {
    const c = await ImapLineClient.connect(listener === 'tls' ? server!.ports.tls : server!.ports.plain, { tls: listener === 'tls', ...identity });
    clients.push(c);
    return c;
  };
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await server?.dispose();
    server = null;
  });

  it('logs the practitioner in with the auth certificate of the keystore, on the TLS listener and after STARTTLS', async () => {
    await start();
    const jean = identities.get(JEAN)!;
    const a = await connect(jean);
    expect(await a.line()).toMatch(/^\* OK \[CAPABILITY .* SASL-IR AUTH=PLAIN AUTH=EXTERNAL\] /);
    expect(await a.command('a1', 'AUTHENTICATE EXTERNAL =')).toEqual([expect.stringMatching(/^a1 OK \[CAPABILITY (?!.*AUTH=).*\] Logged in$/)]);
    expect(await a.command('a2', 'NAMESPACE')).toEqual(['* NAMESPACE (("" "/")) NIL NIL', 'a2 OK NAMESPACE completed']);
    expect(await a.command('a3', 'UNAUTHENTICATE')).toEqual(['a3 OK UNAUTHENTICATE completed']);
    // Again after UNAUTHENTICATE, naming the mailbox as authorization identity after an empty challenge.
    a.send('a4 AUTHENTICATE EXTERNAL');
    expect(await a.line()).toBe('+ ');
    a.send(b64(JEAN));
    expect(await a.until('a4')).toEqual([expect.stringMatching(/^a4 OK \[CAPABILITY .*\] Logged in$/)]);

    const b = await connect({}, 'plain');
    await b.line();
    expect(await b.command('b1', 'AUTHENTICATE EXTERNAL =')).toEqual(['b1 NO [PRIVACYREQUIRED] Use STARTTLS or the TLS port before logging in']);
    await b.command('b2', 'STARTTLS');
    await b.startTls(jean);
    expect((await b.command('b3', 'CAPABILITY'))[0]).toMatch(/ AUTH=EXTERNAL$/);
    expect(await b.command('b4', 'AUTHENTICATE EXTERNAL =')).toEqual([expect.stringMatching(/^b4 OK \[CAPABILITY .*\] Logged in$/)]);

    const audit = (await server!.store.readAudit(0, 1000)).filter((r) => r.action === 'login' && r.object === JEAN);
    expect(audit).toHaveLength(3);
    expect(JSON.parse(audit[0]!.detail)).toMatchObject({ protocol: 'imap', method: 'external', fingerprint: jean.fingerprint });
  });

  it('refuses without a certificate, with one the dev CA did not issue, for another mailbox, or once revoked', async () => {
    await start();
    const none = await connect();
    expect(await none.line()).not.toContain('AUTH=EXTERNAL');
    expect(await none.command('a1', 'AUTHENTICATE EXTERNAL =')).toEqual(['a1 NO [AUTHENTICATIONFAILED] No client certificate was presented']);

    // A self-signed certificate: presented (so EXTERNAL is offered) but not trusted.
    const stranger = await connect(tlsMaterial());
    expect(await stranger.line()).toContain('AUTH=EXTERNAL');
    expect(await stranger.command('a1', 'AUTHENTICATE EXTERNAL =')).toEqual(['a1 NO [AUTHENTICATIONFAILED] The client certificate is not trusted']);

    // Held by the keystore as Jean's, naming Jean, but issued by another CA.
    const foreignCa = await makeTestCa(tmp.dir, `foreign-${engine}`);
    const foreign = await makeLeaf(tmp.dir, foreignCa, `foreign-jean-${engine}`, { email: JEAN });
    await keystore.importPem(JEAN, 'auth', foreign.certPem, foreign.keyPem);
    const imposter = await connect({ cert: foreign.certPem, key: foreign.keyPem });
    await imposter.line();
    expect(await imposter.command('a1', `AUTHENTICATE EXTERNAL ${b64(JEAN)}`)).toEqual(['a1 NO [AUTHENTICATIONFAILED] The client certificate is not trusted']);

    const paul = await connect(identities.get(PAUL)!);
    await paul.line();
    expect(await paul.command('a1', `AUTHENTICATE EXTERNAL ${b64(JEAN)}`)).toEqual(['a1 NO [AUTHORIZATIONFAILED] The client certificate does not name this mailbox']);
    expect(await paul.command('a2', 'AUTHENTICATE EXTERNAL *')).toEqual(['a2 BAD Authentication cancelled']);
    expect(await paul.command('a3', 'AUTHENTICATE EXTERNAL =')).toEqual([expect.stringMatching(/^a3 OK /)]);
    expect(await paul.command('a4', 'GETQUOTAROOT INBOX')).toEqual(['* QUOTAROOT "INBOX"', 'a4 OK GETQUOTAROOT completed']);

    await keystore.revoke(JEAN, identities.get(JEAN)!.fingerprint, 'keyCompromise');
    const revoked = await connect(identities.get(JEAN)!);
    await revoked.line();
    expect(await revoked.command('a1', 'AUTHENTICATE EXTERNAL =')).toEqual([
      'a1 NO [AUTHENTICATIONFAILED] The client certificate is not a valid authentication certificate of a mailbox',
    ]);
    // A password still works on that connection.
    await revoked.login();
    const failures = (await server!.store.readAudit(0, 1000)).filter((r) => r.action === 'login-failed').map((r) => r.outcome);
    expect(failures).toEqual(['certificate-untrusted', 'certificate-untrusted', 'authorization-mismatch', 'certificate-unknown']);
  });
});
