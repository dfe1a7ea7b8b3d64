import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devPkiPaths } from '../../src/crypto/devpki.js';
import { Keystore } from '../../src/crypto/keystore.js';
import { type Certificate, protectOutbound, type SigningCredential } from '../../src/crypto/smime/index.js';
import { seedDemoDirectory } from '../../src/directory/demo.js';
import { openKeyring, pkiOptions } from '../../src/init.js';
import { headerValue, readHeader } from '../../src/mime/headers.js';
import { buildMdn, parseMdn, type ParsedMdn } from '../../src/mime/mdn.js';
import { buildXdm } from '../../src/mime/xdm/build.js';
import { openSecured } from '../../src/pipeline/open-secured.js';
import { buildSecurityContext } from '../../src/pipeline/security-context.js';
import { exportTrustList } from '../../src/policy/trust-list.js';
import { importTrustList } from '../../src/policy/trust-store.js';
import { QueueSealer, type QueueEnvelope } from '../../src/queue/envelope.js';
import { openTrustStore } from '../../src/store/trust.js';
import type { AuditRow, Store } from '../../src/store/types.js';
import { rppsOf } from '../helpers/directory-files.js';
import { tempDir } from '../helpers/engines.js';
import { devPkiFiles, smimeTrust, withOperatorStore } from '../helpers/federation.js';
import { DEMO, passwordOf, startOperator, type TestOperator } from '../helpers/operator.js';
import { tamperedXdm } from '../mime/xdm-test-message.js';
import { relay } from '../relay/client.js';
import { makePeerOperator, type PeerOperator } from '../relay/peer.js';

/**
 * MDNs across the relay: a signed and encrypted message from another operator asking for an MDN gets one back,
 * itself signed with the recipient's certificate and encrypted, queued for the peer from the null sender; a
 * document that cannot be integrated gets an error MDN and a 250 instead of a refusal; an MDN the peer relays back
 * settles the tracking of the message our practitioner sent. The peer's SMTP server is down, so what we send stays
 * in our queue, where the test reads it.
 */

const PEER_DOMAIN = 'clinique-paire.test';
const PAUL = `paul.durand@${PEER_DOMAIN}`;
const CDA = readFileSync(path.join(import.meta.dirname, '../fixtures/cda/fr/BIO-CR-BIO_2024.01_TSH_1.xml'));

describe('MDNs over the relay between operators', () => {
  const dirs: { dispose(): void }[] = [];
  let op: TestOperator;
  let peer: PeerOperator;
  let paul: SigningCredential;
  const certs: Record<string, Certificate> = {};
  const paulRpps = rppsOf(4242);

  const withStore = <T>(work: (store: Store) => Promise<T>): Promise<T> => withOperatorStore(op, work);

  beforeAll(async () => {
    const peerDir = tempDir('mss-peer-');
    const ours = tempDir('mss-receipts-op-');
    dirs.push(peerDir, ours);
    peer = await makePeerOperator(peerDir.dir, PEER_DOMAIN);
    paul = await peer.practitioner({ address: PAUL, rpps: paulRpps, givenName: 'Paul', surname: 'Durand' });
    const certsDir = path.join(ours.dir, 'certs');
    op = await startOperator({
      certsDir,
      security: smimeTrust(devPkiFiles(certsDir), [peer.files]),
      relay: { crlFiles: peer.files.crls },
      // Paul's encryption certificate from a per-domain resolver; the peer's SMTP server does not answer.
      federation: { certificates: { [PEER_DOMAIN]: devPkiPaths(peer.certsDir).mailboxCert(PAUL, 'auth') }, routes: { [PEER_DOMAIN]: '127.0.0.1:1' } },
    });
    await withStore(async (store) => {
      const list = exportTrustList({
        generatedAt: Date.now(),
        domains: [{ name: PEER_DOMAIN, description: 'Clinique paire', operatorDn: peer.dn, responsableContact: '', supportContact: '', updatedAt: Date.now() }],
      });
      await importTrustList(openTrustStore(store), list, { source: 'test', caBundle: peer.caBundle });
      await seedDemoDirectory(store, path.join(ours.dir, 'directory'), {
        practitioners: [
          { rpps: '10001234565', surname: 'DUPONT', givenName: 'Jean', address: DEMO.jean, profession: ['10', 'Médecin'], specialty: ['SM04', 'Cardiologie'] },
          { rpps: '10007654329', surname: 'MARTIN', givenName: 'Claire', address: DEMO.claire, profession: ['10', 'Médecin'], specialty: ['SM26', 'Médecine générale'] },
          { rpps: paulRpps, surname: 'DURAND', givenName: 'Paul', address: PAUL, profession: ['10', 'Médecin'], specialty: ['SM26', 'Médecine générale'] },
        ],
        organisations: [{ finess: '750000002', name: 'HOPITAL DEMO', address: DEMO.dpi, type: 'APP', service: 'DPI' }],
        structureFiness: '750000002',
        structureName: 'HOPITAL DEMO',
      });
      const keyring = openKeyring(op.config);
      const keystore = new Keystore({ store, keyring, pki: pkiOptions(op.config, keyring) });
      for (const address of [DEMO.claire, DEMO.jean, DEMO.dpi]) certs[address] = (await keystore.encryptionCertificate(address))!;
    });
  });

  afterAll(async () => {
    await op?.dispose();
    for (const d of dirs) d.dispose();
  });

  function plainMessage(to: string, subject: string, extra: string[], body = 'Content-Type: text/plain\r\n\r\nBonjour.\r\n'): Buffer {
    return Buffer.from(
      [`From: ${PAUL}`, `To: ${to}`, `Subject: ${subject}`, `Message-ID: <${randomBytes(8).toString('hex')}@${PEER_DOMAIN}>`, 'Date: Wed, 25 Nov 2026 10:00:00 +0100', ...extra, 'MIME-Version: 1.0', body].join('\r\n'),
    );
  }

  /** What the peer's outbound stage sends: signed by Paul, encrypted to the recipient. */
  async function secured(message: Buffer, to: string): Promise<Buffer> {
    const r = await protectOutbound({ message, signer: paul, recipients: [certs[to]!], senderCertificate: null });
    if (!r.ok) throw new Error(`${r.code}: ${r.detail}`);
    return r.message;
  }

  async function count(user: string): Promise<number> {
    const client = new ImapFlow({ host: '127.0.0.1', port: op.ports.imaps, secure: true, auth: { user, pass: passwordOf(op, user) }, tls: { ca: op.ca, servername: 'localhost' }, logger: false });
    await client.connect();
    try {
      return (await client.mailboxOpen('INBOX')).exists;
    } finally {
      await client.logout();
    }
  }

  /** Queue items for the peer, oldest first: the envelope, and the message opened (decrypted and verified) with the issuer's keys. */
  async function queued(): Promise<{ id: string; envelope: QueueEnvelope; raw: Buffer; opened: () => Promise<Buffer> }[]> {
    return withStore(async (store) => {
      const keyring = openKeyring(op.config);
      const sealer = new QueueSealer(keyring);
      const security = buildSecurityContext(op.config, store, keyring, pkiOptions(op.config, keyring));
      const items = await store.listQueue(100);
      return Promise.all(
        items.map(async (item) => {
          const envelope = sealer.openEnvelope(item);
          const raw = sealer.openMessage(item);
          const issuer = (await store.getMailbox(envelope.sender))!;
          const opened = await openSecured(security, raw, 'smime', issuer);
          return { id: item.id, envelope, raw, opened: async () => opened.message };
        }),
      );
    });
  }

  const auditRows = (): Promise<AuditRow[]> => withStore((s) => s.readAudit(0, 100_000));
  const header = (raw: Buffer, name: string) => headerValue(readHeader(raw, 0, raw.length).fields, name);

  async function newMdns(before: Set<string>): Promise<{ envelope: QueueEnvelope; raw: Buffer; mdn: ParsedMdn }[]> {
    const items = (await queued()).filter((i) => !before.has(i.id));
    return Promise.all(items.map(async (i) => ({ envelope: i.envelope, raw: i.raw, mdn: parseMdn(await i.opened()) })));
  }
  const queuedIds = async () => new Set((await queued()).map((i) => i.id));

  it('answers a relayed message asking for an MDN with a signed and encrypted MDN queued for the peer', async () => {
    const before = await queuedIds();
    const original = plainMessage(DEMO.claire, 'Compte rendu', [`Disposition-Notification-To: <${PAUL}>`], 'Content-Type: text/plain; charset=utf-8\r\n\r\nEchographie normale.\r\n');
    const x = await relay(op.ports.relay, { ca: op.ca, certificate: peer.tls, mailFrom: PAUL, rcptTo: [DEMO.claire], message: await secured(original, DEMO.claire) });
    expect(x.data).toMatch(/^250 2\.6\.0 Message accepted/);
    const [sent, ...more] = await newMdns(before);
    expect(more).toEqual([]);
    expect(sent!.envelope).toMatchObject({ sender: DEMO.claire, mailFrom: '', recipients: [PAUL], protection: 'signed+encrypted' });
    expect(header(sent!.raw, 'content-type')).toMatch(/^application\/pkcs7-mime; smime-type=enveloped-data/);
    expect(header(sent!.raw, 'disposition-notification-to')).toBeNull();
    expect(sent!.mdn).toMatchObject({
      disposition: { actionMode: 'automatic-action', type: 'processed', modifiers: [] },
      finalRecipient: DEMO.claire,
      originalMessageId: header(original, 'message-id'),
    });
    expect((await auditRows()).filter((r) => r.action === 'mdn').at(-1)).toMatchObject({ actor: DEMO.claire, outcome: 'sent' });
  });

  it('answers a relayed document that cannot be integrated with an error MDN and a 250, delivering nothing', async () => {
    const before = await queuedIds();
    const claireBefore = await count(DEMO.claire);
    const zip = tamperedXdm(buildXdm({ documents: [{ content: CDA }] }));
    const body = [
      'Content-Type: multipart/mixed; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Compte rendu joint.',
      '--b1',
      'Content-Type: application/zip; name="IHE_XDM.ZIP"',
      'Content-Disposition: attachment; filename="IHE_XDM.ZIP"',
      'Content-Transfer-Encoding: base64',
      '',
      zip.toString('base64').replace(/.{76}/g, '$&\r\n'),
      '--b1--',
      '',
    ].join('\r\n');
    const subject = 'XDM/1.0/DDM+Compte rendu de biologie DUPONT Jeanne 19700101';
    const original = plainMessage(DEMO.claire, subject, [`Disposition-Notification-To: ${PAUL}`], body);
    const x = await relay(op.ports.relay, { ca: op.ca, certificate: peer.tls, mailFrom: PAUL, rcptTo: [DEMO.claire], message: await secured(original, DEMO.claire) });
    expect(x.data).toMatch(/^250 2\.6\.0 .*document not integrated, error MDN sent \[xdm-integrity\]/);
    expect(await count(DEMO.claire)).toBe(claireBefore);
    const [sent, ...more] = await newMdns(before);
    expect(more).toEqual([]);
    expect(sent!.mdn.error).toMatchObject({ code: '207' });
    expect(sent!.mdn.message.subject).toBe(`[KO Intégration système !][207] ${subject}`);
    expect(sent!.mdn.finalRecipient).toBe(DEMO.claire);
    const rows = await auditRows();
    expect(rows.filter((r) => r.action === 'refuse').at(-1)).toMatchObject({ actor: PAUL, outcome: 'xdm-integrity' });
    expect(rows.filter((r) => r.action === 'relay-accept').at(-1)).toMatchObject({ actor: PAUL, outcome: 'not-integrated' });
  });

  it('settles the tracking of a message sent to the peer when its MDN is relayed back', async () => {
    const tracked = () => withStore((s) => s.transaction(async (tx) => (await tx.claimOverdueMdn(Number.MAX_SAFE_INTEGER, 100)).length));
    const trackedBefore = await tracked();
    const id = `<${randomBytes(8).toString('hex')}@hopital-demo.mssante.test>`;
    const sent = [`From: ${DEMO.jean}`, `To: ${PAUL}`, 'Subject: Adressage', `Message-ID: ${id}`, `Disposition-Notification-To: ${DEMO.jean}`, '', 'Cher confrère.', ''].join('\r\n');
    const info = await nodemailer
      .createTransport({ host: '127.0.0.1', port: op.ports.submission, requireTLS: true, auth: { user: DEMO.jean, pass: passwordOf(op, DEMO.jean) }, tls: { ca: op.ca, servername: 'localhost' } })
      .sendMail({ envelope: { from: DEMO.jean, to: [PAUL] }, raw: sent });
    expect(info.response).toMatch(/^250 /);
    expect(await tracked()).toBe(trackedBefore + 1);

    const jeanBefore = await count(DEMO.jean);
    const mdn = buildMdn({ original: Buffer.from(sent), from: PAUL, to: DEMO.jean, finalRecipient: PAUL, reportingUa: { name: `mx.${PEER_DOMAIN}` }, disposition: 'processed' });
    const x = await relay(op.ports.relay, { ca: op.ca, certificate: peer.tls, mailFrom: '', rcptTo: [DEMO.jean], message: await secured(mdn.raw, DEMO.jean) });
    expect(x.data).toMatch(/^250 2\.6\.0 Message accepted/);
    expect(await count(DEMO.jean)).toBe(jeanBefore + 1);
    expect(await tracked()).toBe(trackedBefore);
    const received = (await auditRows()).filter((r) => r.action === 'mdn' && r.outcome === 'received').at(-1)!;
    expect(received.actor).toBe(DEMO.jean);
    expect(JSON.parse(received.detail)).toMatchObject({ disposition: 'processed', tracked: 'settled' });
  });
});
