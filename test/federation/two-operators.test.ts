import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.js';
import { devPkiPaths, revokeCertificate } from '../../src/crypto/devpki.js';
import { Keystore } from '../../src/crypto/keystore.js';
import { MSS_HEADER, PS_HEADER } from '../../src/directory/headers.js';
import { openKeyring, pkiOptions } from '../../src/init.js';
import { parseDsn, type ParsedDsn } from '../../src/mime/dsn.js';
import { parseMdn } from '../../src/mime/mdn.js';
import type { AuditRow } from '../../src/store/types.js';
import { tempDir } from '../helpers/engines.js';
import { folderMessages, mss, prepareOperatorPki, smimeTrust, withOperatorStore, type OperatorPki } from '../helpers/federation.js';
import { passwordOf, startOperator, type TestOperator } from '../helpers/operator.js';

/**
 * Issue 7, "Tests that must pass": three `mss` operators in one test, each with its own domains and dev PKI.
 * A and B trust each other through the lists they export (`mss trust export` → `mss trust import`), route to
 * each other's relay port by static routes, and trust each other's practitioner PKI for S/MIME. C trusts B,
 * but B's list does not name C.
 *
 * How each operator learns what it needs, as a real one would:
 * - The trust space: the other's exported list and CA bundle, imported with `mss trust import --ca`. B's bundle
 *   also holds C's CAs: in the real trust space every operator's server certificate chains to the same
 *   authority (IGC-Santé), so an operator outside the list is told apart by the list, not by its CA.
 * - The practitioners: every operator imports the same national directory extraction (`mss directory import`
 *   of a PS_LibreAcces file and an MSSanté correspondence file listing A's and B's mailboxes), which is where
 *   B's sender check finds A's practitioner. The demo of `mss init` gives both operators the same two
 *   practitioners (same RPPS), so the extraction lists each of them with a mailbox at A and one at B, as for a
 *   practitioner who works at two hospitals.
 * - Recipients' encryption certificates: published in the national directory for their owner (`mss directory
 *   cert add <idNat> <pem>`), which is the source `federation` consults after the keystore's correspondents (the
 *   per-domain `federation.certificates` resolver is for peers that publish certificates outside the directory).
 *   B has A's sender's certificate the same way, for the MDN it sends back signed and encrypted.
 *
 * The cases share the three operators and run in order: A→B (with the MDN back and the Sent copy), C refused,
 * B down then up, B's entry for A edited to another DN, A's server certificate revoked, and last B down beyond a
 * maximum age of a few seconds on A (A restarted with it). A refusal by the peer (5xx) is permanent: the sending
 * queue settles the item at once with a failure DSN naming the peer's reply, rather than keeping it.
 */

const A_DOMAIN = 'hopital-a.mssante.test';
const B_DOMAIN = 'clinique-b.mssante.test';
const C_DOMAIN = 'centre-c.mssante.test';
const JEAN_RPPS = '10001234565';
const CLAIRE_RPPS = '10007654329';
const FINESS = '750000002';
const jean = (domain: string) => `jean.dupont@${domain}`;
/** A domain or address as a regular expression. */
const esc = (s: string) => s.replace(/[.]/g, '\\.');
const claire = (domain: string) => `claire.martin@${domain}`;

/**
 * Whether `mss start` sends automatic MDNs: src/pipeline/receipts.ts exists and the server's wiring (server.ts or
 * the federation it starts) builds it. Checked when the test starts: that work is in progress beside this test.
 */
const mdnWired = (() => {
  const src = (file: string) => new URL(`../../src/${file}`, import.meta.url);
  if (!existsSync(src('pipeline/receipts.ts'))) return false;
  return ['server.ts', 'queue/federation.ts'].some((f) => existsSync(src(f)) && readFileSync(src(f), 'utf8').includes('receipts.js'));
})();

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The national directory: one extraction in each public format, naming the mailboxes of `domains`. */
function writeNationalDirectory(dir: string, domains: readonly string[]): { ps: string; mss: string } {
  const line = (header: readonly string[], values: Record<string, string>, trailing: boolean) =>
    header.map((h) => values[h] ?? '').join('|') + (trailing ? '|' : '');
  const practitioners = [
    { rpps: JEAN_RPPS, surname: 'DUPONT', givenName: 'Jean', local: 'jean.dupont', specialty: ['SM04', 'Cardiologie et maladies vasculaires'] },
    { rpps: CLAIRE_RPPS, surname: 'MARTIN', givenName: 'Claire', local: 'claire.martin', specialty: ['SM26', 'Qualifié en Médecine Générale'] },
  ];
  const ps = [
    PS_HEADER.join('|') + '|',
    ...practitioners.map((p) =>
      line(
        PS_HEADER,
        {
          "Type d'identifiant PP": '8',
          'Identifiant PP': p.rpps,
          'Identification nationale PP': `8${p.rpps}`,
          "Nom d'exercice": p.surname,
          "Prénom d'exercice": p.givenName,
          'Code profession': '10',
          'Libellé profession': 'Médecin',
          'Code savoir-faire': p.specialty[0]!,
          'Libellé savoir-faire': p.specialty[1]!,
          'Code mode exercice': 'S',
          'Libellé mode exercice': 'Salarié',
          'Numéro FINESS site': FINESS,
          'Numéro FINESS établissement juridique': FINESS,
          'Raison sociale site': 'HOPITAL DEMO',
          'Code postal (coord. structure)': '75013',
          'Libellé commune (coord. structure)': 'Paris',
        },
        true,
      ),
    ),
  ];
  const mssRows = [MSS_HEADER.join('|')];
  for (const domain of domains) {
    for (const p of practitioners) {
      mssRows.push(
        line(
          MSS_HEADER,
          {
            'Type de BAL': 'PER',
            'Adresse BAL': `${p.local}@${domain}`,
            'Type Identifiant PP': '8',
            'Identifiant PP': p.rpps,
            'Identification nationale PP': `8${p.rpps}`,
            'Type identifiant structure': '1',
            'Identification Structure': FINESS,
            "Nom d'exercice": p.surname,
            "Prénom d'exercice": p.givenName,
            'Code Profession': '10',
            'Libellé Profession': 'Médecin',
            'Dématérialisation': 'True',
            'Raison Sociale structure BAL': 'HOPITAL DEMO',
            'Code postal structure BAL': '75013',
          },
          false,
        ),
      );
    }
    mssRows.push(
      line(
        MSS_HEADER,
        {
          'Type de BAL': 'APP',
          'Adresse BAL': `dpi@${domain}`,
          'Type identifiant structure': '1',
          'Identification Structure': FINESS,
          'Service de rattachement': 'DPI',
          'Dématérialisation': 'True',
          'Raison Sociale structure BAL': 'HOPITAL DEMO',
          'Code postal structure BAL': '75013',
        },
        false,
      ),
    );
  }
  const files = { ps: path.join(dir, 'PS_LibreAcces_Personne_activite.txt'), mss: path.join(dir, 'Extraction_Correspondance_MSSante.txt') };
  writeFileSync(files.ps, ps.join('\n') + '\n');
  writeFileSync(files.mss, mssRows.join('\n') + '\n');
  return files;
}

function message(o: { from: string; to: string; subject: string; body: string; headers?: string[] }): { raw: string; messageId: string } {
  const messageId = `<${randomBytes(8).toString('hex')}@${o.from.slice(o.from.indexOf('@') + 1)}>`;
  const raw = [
    `From: ${o.from}`,
    `To: ${o.to}`,
    `Subject: ${o.subject}`,
    `Message-ID: ${messageId}`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    ...(o.headers ?? []),
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    o.body,
    '',
  ].join('\r\n');
  return { raw, messageId };
}

/** A practitioner's mail client submitting (STARTTLS, password). */
function submit(op: TestOperator, from: string, to: string, raw: string) {
  return nodemailer
    .createTransport({
      host: '127.0.0.1',
      port: op.ports.submission,
      requireTLS: true,
      auth: { user: from, pass: passwordOf(op, from) },
      tls: { ca: op.ca, servername: 'localhost' },
    })
    .sendMail({ envelope: { from, to: [to] }, raw });
}

const auditRows = (op: TestOperator): Promise<AuditRow[]> => withOperatorStore(op, (s) => s.readAudit(0, 100_000));

/** The queue items of `op` for `destination`. */
const queued = (op: TestOperator, destination: string) => withOperatorStore(op, async (s) => (await s.listQueue(1000)).filter((i) => i.destination === destination));

/** The delivery status notifications in `user`'s INBOX (other messages are left out). */
async function dsns(op: TestOperator, user: string): Promise<ParsedDsn[]> {
  const out: ParsedDsn[] = [];
  for (const raw of await folderMessages(op, user)) {
    if (!/report-type="?delivery-status/i.test(raw.toString('latin1'))) continue;
    out.push(parseDsn(raw));
  }
  return out;
}

/** The messages of `user`'s INBOX whose text contains `mark`. */
async function withMark(op: TestOperator, user: string, mark: string): Promise<string[]> {
  return (await folderMessages(op, user)).map((m) => m.toString('utf8')).filter((m) => m.includes(mark));
}

const RETRY = { firstSeconds: 0.2, factor: 2, maxSeconds: 1 };

/** An operator serving `domain` (and a patient domain of its own), trusting the practitioner PKIs of `peers`. */
function operatorConfig(domain: string, pki: OperatorPki, relayPort: number, peers: OperatorPki[], routes: Record<string, string>): ConfigInput {
  const patients = `patients.${domain}`;
  return {
    dataDir: pki.dataDir,
    certsDir: pki.certsDir,
    hostname: `mx.${domain}`,
    localDomains: [domain, patients],
    demo: { domain },
    patients: { domain: patients },
    security: smimeTrust(pki, peers),
    smtp: { shutdownGraceMs: 200 },
    // The peers' server certificates are checked against their CAs' CRLs (revocation: require).
    relay: { listener: { host: '127.0.0.1', port: relayPort }, crlFiles: peers.flatMap((p) => p.crls), shutdownGraceMs: 200 },
    federation: { routes, retry: RETRY, idleSeconds: 0.2 },
  };
}

describe('two operators exchanging mail through the trust space (issue 7)', () => {
  const dirs: { dir: string; dispose(): void }[] = [];
  let work: string;
  let A: TestOperator;
  let B: TestOperator;
  let C: TestOperator;
  let aPki: OperatorPki;
  let aFederation: NonNullable<ConfigInput['federation']>;
  let aList: string;

  beforeAll(async () => {
    const scratch = tempDir('mss-two-ops-');
    dirs.push(scratch);
    work = scratch.dir;
    const [pa, pb, pc] = await Promise.all(
      [A_DOMAIN, B_DOMAIN, C_DOMAIN].map(async (domain) => {
        const d = tempDir(`mss-op-${domain.split('.')[0]}-`);
        dirs.push(d);
        return prepareOperatorPki(d.dir, `mx.${domain}`);
      }),
    );
    aPki = pa!;
    const [relayA, relayB, relayC] = await Promise.all([freePort(), freePort(), freePort()]);
    const configA = operatorConfig(A_DOMAIN, pa!, relayA, [pb!], { [B_DOMAIN]: `127.0.0.1:${relayB}` });
    aFederation = configA.federation!;
    [A, B, C] = await Promise.all([
      startOperator(configA),
      startOperator(operatorConfig(B_DOMAIN, pb!, relayB, [pa!, pc!], { [A_DOMAIN]: `127.0.0.1:${relayA}` })),
      startOperator(operatorConfig(C_DOMAIN, pc!, relayC, [pb!], { [B_DOMAIN]: `127.0.0.1:${relayB}` })),
    ]);
    expect([A.ports.relay, B.ports.relay, C.ports.relay]).toEqual([relayA, relayB, relayC]);

    // Each operator publishes its entries and the CAs its server certificate chains to.
    const exported: Record<string, { xml: string; ca: string }> = {};
    for (const [name, op] of [['a', A], ['b', B], ['c', C]] as const) {
      const xml = path.join(work, `${name}-list.xml`);
      const ca = path.join(work, `${name}-ca.pem`);
      const r = await mss(op, 'trust', 'export', '--out', xml, '--ca-out', ca);
      expect(r.exitCode, r.err.join('\n')).toBe(0);
      exported[name] = { xml, ca };
    }
    aList = exported.a!.xml;
    // B: A's list; the authority bundle holds A's and C's CAs.
    const bBundle = path.join(work, 'b-bundle.pem');
    writeFileSync(bBundle, readFileSync(exported.a!.ca, 'utf8') + readFileSync(exported.c!.ca, 'utf8'));
    for (const [op, list, ca] of [
      [A, exported.b!.xml, exported.b!.ca],
      [B, exported.a!.xml, bBundle],
      [C, exported.b!.xml, exported.b!.ca],
    ] as const) {
      const r = await mss(op, 'trust', 'import', list, '--ca', ca);
      expect(r.exitCode, r.err.join('\n')).toBe(0);
      expect(r.out[0]).toMatch(/^imported /);
    }

    // The national directory, everywhere; the certificates each sender encrypts to, published for their owner.
    const national = writeNationalDirectory(work, [A_DOMAIN, B_DOMAIN]);
    for (const op of [A, B, C]) {
      for (const file of [national.ps, national.mss]) {
        const r = await mss(op, 'directory', 'import', file);
        expect(r.exitCode, r.err.join('\n')).toBe(0);
      }
    }
    const encryptionCertificate = (op: TestOperator, address: string) =>
      withOperatorStore(op, async (store) => {
        const keyring = openKeyring(op.config);
        const cert = await new Keystore({ store, keyring, pki: pkiOptions(op.config, keyring) }).encryptionCertificate(address);
        if (!cert) throw new Error(`no encryption certificate for ${address}`);
        const file = path.join(work, `${address}.pem`);
        writeFileSync(file, cert.pem);
        return file;
      });
    const claireB = await encryptionCertificate(B, claire(B_DOMAIN));
    const jeanA = await encryptionCertificate(A, jean(A_DOMAIN));
    for (const [op, owner, file] of [
      [A, `8${CLAIRE_RPPS}`, claireB],
      [C, `8${CLAIRE_RPPS}`, claireB],
      [B, `8${JEAN_RPPS}`, jeanA],
    ] as const) {
      const r = await mss(op, 'directory', 'cert', 'add', owner, file);
      expect(r.exitCode, r.err.join('\n')).toBe(0);
    }
  }, 180_000);

  afterAll(async () => {
    await Promise.allSettled([A, B, C].filter(Boolean).map((op) => op.dispose()));
    for (const d of dirs) d.dispose();
  });

  let first: { raw: string; messageId: string };

  it('a practitioner on A writes to one on B: B delivers it decrypted and verified; A handed it over once', async () => {
    const before = (await folderMessages(B, claire(B_DOMAIN))).length;
    first = message({
      from: jean(A_DOMAIN),
      to: claire(B_DOMAIN),
      subject: 'Compte rendu de consultation',
      body: 'Echographie cardiaque normale. TWO-OP-FIRST',
      headers: [`Disposition-Notification-To: <${jean(A_DOMAIN)}>`],
    });
    const info = await submit(A, jean(A_DOMAIN), claire(B_DOMAIN), first.raw);
    expect(info.response).toMatch(/^250 /);

    await expect.poll(async () => (await folderMessages(B, claire(B_DOMAIN))).length, { timeout: 30_000, interval: 100 }).toBe(before + 1);
    const got = (await folderMessages(B, claire(B_DOMAIN))).at(-1)!.toString('utf8');
    expect(got).toContain('Echographie cardiaque normale. TWO-OP-FIRST');
    expect(got).toContain('Subject: Compte rendu de consultation');
    expect(got).toContain(`Message-ID: ${first.messageId}`);
    expect(got).toContain(`Disposition-Notification-To: <${jean(A_DOMAIN)}>`);
    expect(got).not.toMatch(/pkcs7-mime/i);
    expect(got).not.toMatch(/X-MSS-Idempotency-Key/i);
    // Decrypted, and signed by A's practitioner, whose certificate names his RPPS (the directory's owner of the address).
    expect(got.match(/^X-MSS-Verification: .*$/gm)).toEqual([
      expect.stringMatching(new RegExp(`^X-MSS-Verification: method=smime; signature=valid; signer=${esc(jean(A_DOMAIN))}; practitioner=8${JEAN_RPPS}; .*encryption=aes-256-cbc`)),
    ]);
    expect(got).toMatch(new RegExp(`^Return-Path: <${esc(jean(A_DOMAIN))}>`));
    expect(got).toMatch(new RegExp(`^Received: from \\S+ \\(\\[127\\.0\\.0\\.1\\]\\)\\r\\n\\t\\(peer certificate "CN=mx\\.${esc(A_DOMAIN)},OU=DEV IGC-SANTE,O=MSS DEV,C=FR" verified\\)\\r\\n\\tby mx\\.${esc(B_DOMAIN)} \\(mss\\)`, 'm'));

    // B's journal: accepted from A's domain and certificate, under the key of A's queue item; A's: queued, handed over.
    const accepted = (await auditRows(B)).filter((r) => r.action === 'relay-accept');
    expect(accepted).toHaveLength(1);
    expect(accepted[0]).toMatchObject({ actor: jean(A_DOMAIN), outcome: 'accepted' });
    const detail = JSON.parse(accepted[0]!.detail) as { peerDomain: string; peerDn: string; idempotencyKey: string };
    expect(detail).toMatchObject({ peerDomain: A_DOMAIN, peerDn: `CN=mx.${A_DOMAIN},OU=DEV IGC-SANTE,O=MSS DEV,C=FR` });
    const trail = (await auditRows(A)).filter((r) => r.object === detail.idempotencyKey).map((r) => `${r.action}:${r.outcome}`);
    expect(trail).toEqual(['enqueue:queued', 'relay:delivered']);
    expect(await queued(A, B_DOMAIN)).toEqual([]);
  });

  it("the sender's client keeps its copy in A's Sent folder (IMAP APPEND, as Thunderbird does) and reads it back", async () => {
    const client = new ImapFlow({
      host: '127.0.0.1',
      port: A.ports.imaps,
      secure: true,
      auth: { user: jean(A_DOMAIN), pass: passwordOf(A, jean(A_DOMAIN)) },
      tls: { ca: A.ca, servername: 'localhost' },
      logger: false,
    });
    await client.connect();
    try {
      const appended = await client.append('Sent', first.raw, ['\\Seen']);
      expect(appended).toMatchObject({ destination: 'Sent' });
    } finally {
      await client.logout();
    }
    const sent = await folderMessages(A, jean(A_DOMAIN), 'Sent');
    expect(sent.map((m) => m.toString('utf8'))).toEqual([first.raw]);
  });

  // The automatic MDNs (src/pipeline/receipts.ts, src/queue/mdn-tracker.ts) are being written beside this test: the
  // case runs once `mss start` wires them (see mdnWired), and is skipped before.
  it.skipIf(!mdnWired)("an MDN comes back from B's recipient to A's sender, over the relay, signed and encrypted", async () => {
    const mdns = async () => {
      const out: { raw: string; mdn: ReturnType<typeof parseMdn> }[] = [];
      for (const raw of await folderMessages(A, jean(A_DOMAIN))) {
        if (/report-type="?disposition-notification/i.test(raw.toString('latin1'))) out.push({ raw: raw.toString('utf8'), mdn: parseMdn(raw) });
      }
      return out.filter((m) => m.mdn.originalMessageId === first.messageId);
    };
    await expect.poll(async () => (await mdns()).length, { timeout: 30_000, interval: 200 }).toBe(1);
    const [{ raw, mdn }] = (await mdns()) as [{ raw: string; mdn: ReturnType<typeof parseMdn> }];
    expect(mdn.disposition).toMatchObject({ actionMode: 'automatic-action', sendingMode: 'mdn-sent-automatically', type: 'processed' });
    expect(mdn.error).toBeNull();
    expect(mdn.finalRecipient).toBe(claire(B_DOMAIN));
    const header = raw.slice(0, raw.indexOf('\r\n\r\n') + 2);
    // From the null sender, issued by B's recipient, who signed it; B encrypted it to A's sender and A opened it.
    expect(header).toMatch(/^Return-Path: <>\r\n/);
    expect(header).toMatch(new RegExp(`^From: ${esc(claire(B_DOMAIN))}\r$`, 'm'));
    expect(header.match(/^X-MSS-Verification: .*$/gm)).toEqual([
      expect.stringMatching(new RegExp(`^X-MSS-Verification: method=smime; signature=valid; signer=${esc(claire(B_DOMAIN))}; practitioner=8${CLAIRE_RPPS}; .*encryption=aes-256-cbc`)),
    ]);
    expect(header).toMatch(new RegExp(`\\(peer certificate "CN=mx\\.${esc(B_DOMAIN)},OU=DEV IGC-SANTE,O=MSS DEV,C=FR" verified\\)`));
    // An MDN never asks for another one.
    expect(header).not.toMatch(/^Disposition-Notification-To:/im);
  });

  it('C, whose domain is not in B\'s list, is refused by B; the sender on C gets a failure notice with the reason', async () => {
    const bAudit = (await auditRows(B)).length;
    const { raw } = message({ from: jean(C_DOMAIN), to: claire(B_DOMAIN), subject: 'Depuis C', body: 'TWO-OP-FROM-C' });
    const info = await submit(C, jean(C_DOMAIN), claire(B_DOMAIN), raw);
    expect(info.response).toMatch(/^250 /);
    // B answers MAIL FROM with a permanent refusal: C's queue settles the item at once with a failure DSN.
    await expect.poll(async () => (await dsns(C, jean(C_DOMAIN))).length, { timeout: 30_000, interval: 100 }).toBe(1);
    const [dsn] = await dsns(C, jean(C_DOMAIN));
    expect(dsn!.originalSubject).toBe('Depuis C');
    expect(dsn!.recipients[0]).toMatchObject({ finalRecipient: claire(B_DOMAIN), action: 'failed', status: '5.7.1' });
    expect(dsn!.recipients[0]!.diagnostic).toMatch(new RegExp(`^127\\.0\\.0\\.1:${B.ports.relay} answered 550 5\\.7\\.1 .*\\[relay-unknown-domain\\]`));
    expect(await queued(C, B_DOMAIN)).toEqual([]);
    const refusals = (await auditRows(B)).slice(bAudit).filter((r) => r.action === 'refuse');
    expect(refusals).toEqual([expect.objectContaining({ actor: jean(C_DOMAIN), outcome: 'relay-unknown-domain', object: `CN=mx.${C_DOMAIN},OU=DEV IGC-SANTE,O=MSS DEV,C=FR` })]);
    expect(await withMark(B, claire(B_DOMAIN), 'TWO-OP-FROM-C')).toEqual([]);
  });

  it('B down: A keeps the message and retries; B up again: delivered exactly once', async () => {
    await B.stop();
    let item: Awaited<ReturnType<typeof queued>>[number] | undefined;
    // B comes back even when an assertion fails here, so that the cases after this one still have their peer.
    try {
      const { raw } = message({ from: jean(A_DOMAIN), to: claire(B_DOMAIN), subject: 'Resultats biologiques', body: 'Bilan normal. TWO-OP-RETRY' });
      const info = await submit(A, jean(A_DOMAIN), claire(B_DOMAIN), raw);
      expect(info.response).toMatch(/^250 /);
      [item] = await queued(A, B_DOMAIN);
      expect(item).toBeDefined();
      await expect.poll(async () => (await withOperatorStore(A, (s) => s.getQueueItem(item!.id)))?.attempts ?? 0, { timeout: 30_000, interval: 50 }).toBeGreaterThanOrEqual(3);
      const shown = (await mss(A, 'queue', 'show', item!.id)).out.join('\n');
      expect(shown).toMatch(new RegExp(`last error: +\\S+ 127\\.0\\.0\\.1:${B.ports.relay}: .*ECONNREFUSED`));
      expect(shown).toContain('protection:    signed+encrypted');
    } finally {
      await B.restart();
    }
    await expect.poll(() => withOperatorStore(A, (s) => s.getQueueItem(item!.id)), { timeout: 30_000, interval: 50 }).toBeNull();
    expect(await withMark(B, claire(B_DOMAIN), 'TWO-OP-RETRY')).toHaveLength(1);
    const accepted = (await auditRows(B)).filter((r) => r.action === 'relay-accept' && JSON.parse(r.detail).idempotencyKey === item!.id);
    expect(accepted.map((r) => r.outcome)).toEqual(['accepted']);
    const trail = (await auditRows(A)).filter((r) => r.object === item!.id).map((r) => `${r.action}:${r.outcome}`);
    expect(trail).toEqual(['enqueue:queued', 'relay:delivered']);
  });

  it("B's trust entry for A names another DN: B refuses A's certificate, and A's sender gets a failure notice", async () => {
    const listed = readFileSync(aList, 'utf8');
    const edited = path.join(work, 'a-list-other-dn.xml');
    writeFileSync(edited, listed.replace(/<DNCertificatOperateur>[^<]*<\/DNCertificatOperateur>/g, '<DNCertificatOperateur>CN=mx.autre-operateur.test,OU=DEV IGC-SANTE,O=MSS DEV,C=FR</DNCertificatOperateur>'));
    expect(readFileSync(edited, 'utf8')).not.toBe(listed);
    expect((await mss(B, 'trust', 'import', edited)).exitCode).toBe(0);
    try {
      const bAudit = (await auditRows(B)).length;
      const { raw } = message({ from: jean(A_DOMAIN), to: claire(B_DOMAIN), subject: 'Avis DN', body: 'TWO-OP-DN' });
      expect((await submit(A, jean(A_DOMAIN), claire(B_DOMAIN), raw)).response).toMatch(/^250 /);
      const failure = async () => (await dsns(A, jean(A_DOMAIN))).find((d) => d.originalSubject === 'Avis DN');
      await expect.poll(failure, { timeout: 30_000, interval: 100 }).toBeDefined();
      expect((await failure())!.recipients[0]).toMatchObject({ finalRecipient: claire(B_DOMAIN), action: 'failed', status: '5.7.1' });
      expect((await failure())!.recipients[0]!.diagnostic).toMatch(/answered 550 5\.7\.1 .*\[relay-dn-mismatch\]/);
      const refusals = (await auditRows(B)).slice(bAudit).filter((r) => r.action === 'refuse').map((r) => r.outcome);
      expect(refusals).toEqual(['relay-dn-mismatch']);
      expect(await withMark(B, claire(B_DOMAIN), 'TWO-OP-DN')).toEqual([]);
    } finally {
      expect((await mss(B, 'trust', 'import', aList)).exitCode).toBe(0);
    }
  });

  // A's pool may hand this message to B over a connection opened before the revocation (the previous case left one
  // open): B checks the client certificate at each MAIL FROM, not only at the TLS handshake.
  it("A's server certificate revoked on A's CRL that B reads: B refuses it, and A's sender gets a failure notice", async () => {
    const keyring = openKeyring(A.config);
    const revoked = await revokeCertificate(pkiOptions(A.config, keyring), readFileSync(devPkiPaths(A.config.certsDir).serverCert, 'utf8'));
    expect(revoked).toMatchObject({ ca: 'organisations', alreadyRevoked: false });
    expect(aPki.crls).toContain(revoked.crlFile);
    const bAudit = (await auditRows(B)).length;
    const { raw } = message({ from: jean(A_DOMAIN), to: claire(B_DOMAIN), subject: 'Avis revocation', body: 'TWO-OP-REVOKED' });
    expect((await submit(A, jean(A_DOMAIN), claire(B_DOMAIN), raw)).response).toMatch(/^250 /);
    const failure = async () => (await dsns(A, jean(A_DOMAIN))).find((d) => d.originalSubject === 'Avis revocation');
    await expect.poll(failure, { timeout: 30_000, interval: 100 }).toBeDefined();
    expect((await failure())!.recipients[0]).toMatchObject({ finalRecipient: claire(B_DOMAIN), action: 'failed', status: '5.7.5' });
    expect((await failure())!.recipients[0]!.diagnostic).toMatch(/answered 550 5\.7\.5 .*\[relay-certificate-revoked\]/);
    const refusals = (await auditRows(B)).slice(bAudit).filter((r) => r.action === 'refuse').map((r) => r.outcome);
    expect(refusals).toEqual(['relay-certificate-revoked']);
    expect(await withMark(B, claire(B_DOMAIN), 'TWO-OP-REVOKED')).toEqual([]);
  });

  it('B down beyond the maximum age on A: the sender gets a failure DSN', async () => {
    await B.stop();
    // A few seconds of maximum age (the delay notice stays at its default, hours away).
    await A.restart({ federation: { ...aFederation, maxAgeDays: 3 / 86_400 } });
    const { raw } = message({ from: jean(A_DOMAIN), to: claire(B_DOMAIN), subject: 'Avis expiration', body: 'TWO-OP-EXPIRED' });
    expect((await submit(A, jean(A_DOMAIN), claire(B_DOMAIN), raw)).response).toMatch(/^250 /);
    const [item] = await queued(A, B_DOMAIN);
    expect(item).toBeDefined();
    await expect.poll(() => withOperatorStore(A, (s) => s.getQueueItem(item!.id)), { timeout: 60_000, interval: 100 }).toBeNull();
    const failure = (await dsns(A, jean(A_DOMAIN))).find((d) => d.originalSubject === 'Avis expiration');
    expect(failure?.recipients[0]).toMatchObject({ finalRecipient: claire(B_DOMAIN), action: 'failed', status: '4.4.7' });
    expect(failure!.recipients[0]!.diagnostic).toMatch(new RegExp(`^gave up after \\d+ attempts: 127\\.0\\.0\\.1:${B.ports.relay}: .*ECONNREFUSED`));
    expect(failure!.message.from).toContain(`MAILER-DAEMON@${A_DOMAIN}`);
    const trail = (await auditRows(A)).filter((r) => r.object === item!.id).map((r) => `${r.action}:${r.outcome}`);
    expect(trail).toEqual(['enqueue:queued', 'bounce:failed']);
  });
});
