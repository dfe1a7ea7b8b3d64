/**
 * The webmail under a patient's full inbox: server time of the pages a patient opens most, and their weight.
 *
 * Setup (before the server starts, through the store as delivery would leave it): an operator directory
 * (`mss init`, SQLite), a patient mailbox activated the real way (`Patients.issueActivationCode` then
 * `completeActivation` with a TOTP secret and a current code), and an INBOX of M messages (default 10,000)
 * appended with `SealedMail.append`: clinical-looking text mail (bench/_imap-corpus.ts), one in 10 with an HTML
 * part (tables, links, remote images for the sanitiser), one in 20 an `XDM/1.0/DDM+` message carrying an
 * IHE_XDM.ZIP with a French CDA document (test/fixtures/cda/fr: lettre de liaison, CR de biologie). A complete
 * webmail session is opened for the patient (`Sessions.start`, as the TOTP step does), then `mss start`.
 *
 * Measured, over real HTTPS requests on one keep-alive connection with the session cookie, one at a time (so
 * each figure is the server's time plus a loopback round trip, nothing queued): N requests (default 300) of
 *   - `inbox`: the INBOX page (first page of the folder list),
 *   - `message`: a message page, a random message each time,
 *   - `cda`: the CDA viewer (a document of the XDM list, rendered), a random XDM message each time;
 * after 20 warm-up requests of each. Every answer must be 200 and the expected page, or the bench fails.
 *
 * Output: `RESULT page=<inbox|message|cda> p50_ms=.. p99_ms=.. kb=..` (kb: median HTML bytes / 1024; the inbox
 * line adds `assets_kb`, the style sheet and script the page links, fetched once and cached immutable after),
 * and `target_p99_ms=50`, `target_kb=100` (inbox) with `ok=yes|no`.
 *
 *   npm run bench -- webmail [--messages=10000] [--requests=300]
 *   (or MSS_BENCH_WEBMAIL_MESSAGES / MSS_BENCH_WEBMAIL_REQUESTS in the environment)
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import pino from 'pino';
import { loadConfig } from '../src/config/load.js';
import { openKeyring } from '../src/init.js';
import { buildXdm } from '../src/mime/xdm/build.js';
import { formatXdmSubject } from '../src/mime/xdm/subject.js';
import { Patients, totpCode } from '../src/policy/patients.js';
import { openStore } from '../src/store/open.js';
import { SealedMail } from '../src/store/sealed-mail.js';
import type { MailboxRow } from '../src/store/types.js';
import { openWebmailSessions } from '../src/store/webmail-sessions.js';
import { SESSION_COOKIE, Sessions } from '../src/webmail/sessions.js';
import { benchMessage } from './_imap-corpus.js';
import { buildIfNeeded, createOperator, percentile, repo, startServer, stopAllServersSync } from './_operator.js';

const setting = (name: string, dflt: number): number => {
  const raw = process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? process.env[`MSS_BENCH_WEBMAIL_${name.toUpperCase()}`] ?? String(dflt);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, not ${JSON.stringify(raw)}`);
  return n;
};
const MESSAGES = setting('messages', 10_000);
const REQUESTS = setting('requests', 300);
const WARMUP = 20;
const BATCH = 200;
const XDM_EVERY = 20;
const HTML_EVERY = 10;
const TARGET_P99_MS = 50;
const TARGET_INBOX_KB = 100;
const REQUEST_TIMEOUT_MS = 30_000;
const PATIENT_INS = '255081416802538';
const PATIENT_PASSWORD = 'bench-patient-password-2026';
const PROFESSIONAL = 'Dr Charles DAVID <charles.david@hopital-demo.mssante.test>';

process.on('exit', stopAllServersSync);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

// ---- the inbox ----

const cdaFixture = (name: string) => readFileSync(path.join(repo, 'test/fixtures/cda/fr', name));
const PACKAGES = [
  { label: 'Lettre de liaison', zip: buildXdm({ documents: [{ content: cdaFixture('LDL-SES_2022.01.xml') }], producer: 'bench' }) },
  { label: 'CR de biologie', zip: buildXdm({ documents: [{ content: cdaFixture('BIO-CR-BIO_2024.01_TSH_1.xml') }], producer: 'bench' }) },
];

const base64Lines = (bytes: Buffer) => bytes.toString('base64').replace(/.{76}/g, '$&\r\n');

function xdmMessage(i: number, to: string): Buffer {
  const pkg = PACKAGES[i % PACKAGES.length]!;
  const subject = formatXdmSubject({ label: pkg.label, family: 'PAT-BENCH', given: 'Camille', birthDate: '1979-03-28' });
  return Buffer.from(
    `From: ${PROFESSIONAL}\r\nTo: <${to}>\r\nSubject: ${subject}\r\nMessage-ID: <bench-xdm-${i}@hopital-demo.mssante.test>\r\n` +
      `Date: ${new Date(Date.UTC(2025, 0, 1) + i * 60_000).toUTCString()}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n` +
      '--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBonjour, vous trouverez le document en pièce jointe.\r\n' +
      `--b1\r\nContent-Type: application/zip; name="IHE_XDM.ZIP"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="IHE_XDM.ZIP"\r\n\r\n${base64Lines(pkg.zip)}\r\n` +
      '--b1--\r\n',
    'utf8',
  );
}

function htmlMessage(i: number, to: string): Buffer {
  const rows = Array.from({ length: 12 }, (_, r) => `<tr><td>Analyse ${r}</td><td><b>${(r * 1.7).toFixed(1)}</b></td><td>mmol/L</td></tr>`).join('');
  const htmlPart =
    `<html><head><style>td{color:red}</style></head><body><p>Bonjour,</p><p>Voici vos résultats du ${i}.</p>` +
    `<table>${rows}</table><p><img src="https://tracker.example.test/p/${i}.gif" width="1" height="1"><a href="https://www.ameli.fr/">ameli.fr</a></p></body></html>`;
  return Buffer.from(
    `From: ${PROFESSIONAL}\r\nTo: <${to}>\r\nSubject: Résultats ${i}\r\nMessage-ID: <bench-html-${i}@hopital-demo.mssante.test>\r\n` +
      `Date: ${new Date(Date.UTC(2025, 0, 1) + i * 60_000).toUTCString()}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="a1"\r\n\r\n` +
      `--a1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBonjour, voici vos résultats du ${i}.\r\n` +
      `--a1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n${htmlPart}\r\n--a1--\r\n`,
    'utf8',
  );
}

interface Filled {
  mailbox: MailboxRow;
  inboxId: number;
  xdmUids: number[];
  uids: number[];
  cookie: string;
}

async function prepare(dir: string): Promise<Filled> {
  const config = loadConfig(path.join(dir, 'config.json'));
  const keyring = openKeyring(config);
  const store = await openStore(config);
  try {
    const mail = new SealedMail(store, keyring);
    const patients = new Patients({ store, mail, keyring, config: config.patients, log: pino({ level: 'silent' }) });
    const { address, code } = await patients.issueActivationCode(PATIENT_INS, 'bench');
    const totpSecret = randomBytes(20);
    const mailbox = await patients.completeActivation({
      addressOrIns: address,
      code,
      password: PATIENT_PASSWORD,
      totpSecret,
      totp: totpCode(totpSecret, Date.now()),
      remote: '127.0.0.1',
    });
    const inbox = await store.getFolder(mailbox.id, 'INBOX');
    if (!inbox) throw new Error('the patient has no INBOX');

    const started = Date.now();
    const xdmUids: number[] = [];
    const uids: number[] = [];
    for (let first = 0; first < MESSAGES; first += BATCH) {
      const appended = await store.transaction(async (tx) => {
        const out: { uid: number; xdm: boolean }[] = [];
        for (let i = first; i < Math.min(MESSAGES, first + BATCH); i++) {
          const xdm = i % XDM_EVERY === XDM_EVERY - 1;
          const corpus = benchMessage(i, address);
          const raw = xdm ? xdmMessage(i, address) : i % HTML_EVERY === HTML_EVERY - 1 ? htmlMessage(i, address) : corpus.raw;
          const { uid } = await mail.append(tx, mailbox, inbox, raw, { flags: corpus.flags, internalDate: corpus.internalDate });
          out.push({ uid, xdm });
        }
        return out;
      });
      for (const a of appended) {
        uids.push(a.uid);
        if (a.xdm) xdmUids.push(a.uid);
      }
    }
    console.log(`filled the patient INBOX with ${MESSAGES} messages (${xdmUids.length} with an IHE_XDM.ZIP) in ${((Date.now() - started) / 1000).toFixed(1)} s`);

    const sessions = new Sessions(openWebmailSessions(store), store, {
      idleMs: config.webmail.sessionIdleMinutes * 60_000,
      absoluteMs: config.webmail.sessionAbsoluteHours * 3_600_000,
      secondFactorMs: config.webmail.secondFactorMinutes * 60_000,
    });
    const { setCookie } = await sessions.start(mailbox, 'complete', 'fr');
    const cookie = setCookie.split(';')[0]!;
    if (!cookie.startsWith(`${SESSION_COOKIE}=`)) throw new Error('unexpected session cookie');
    return { mailbox, inboxId: inbox.id, xdmUids, uids, cookie };
  } finally {
    await store.close();
  }
}

// ---- HTTPS client ----

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Answer {
  status: number;
  body: Buffer;
  ms: number;
}

function client(port: number, ca: string, cookie: string): (pathname: string) => Promise<Answer> {
  // The dev CA is pinned; the certificate names the operator's host, not 127.0.0.1.
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca, checkServerIdentity: () => undefined });
  return (pathname) =>
    new Promise<Answer>((resolve, reject) => {
      const start = process.hrtime.bigint();
      const req = https.request({ host: '127.0.0.1', port, path: pathname, method: 'GET', agent, headers: { cookie }, timeout: REQUEST_TIMEOUT_MS }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), ms: Number(process.hrtime.bigint() - start) / 1e6 }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`GET ${pathname}: no answer in ${REQUEST_TIMEOUT_MS} ms`)));
      req.on('error', reject);
      req.end();
    });
}

function expectPage(answer: Answer, pathname: string, marker: string): string {
  const text = answer.body.toString('utf8');
  if (answer.status !== 200 || !text.includes(marker)) {
    throw new Error(`GET ${pathname}: ${answer.status}, expected a page with ${JSON.stringify(marker)}; got ${JSON.stringify(text.slice(0, 300))}`);
  }
  return text;
}

interface PageFigures {
  p50: number;
  p99: number;
  kb: number;
}

async function measure(get: (p: string) => Promise<Answer>, pick: (i: number) => string, marker: string): Promise<PageFigures> {
  for (let i = 0; i < WARMUP; i++) expectPage(await get(pick(i)), pick(i), marker);
  const times: number[] = [];
  const sizes: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const pathname = pick(WARMUP + i);
    const answer = await get(pathname);
    expectPage(answer, pathname, marker);
    times.push(answer.ms);
    sizes.push(answer.body.length);
  }
  times.sort((a, b) => a - b);
  sizes.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99), kb: percentile(sizes, 50) / 1024 };
}

/** A deterministic spread over a list (the same picks every run). */
const spread = <T>(list: readonly T[], i: number): T => list[(i * 7919) % list.length]!;

// ---- run ----

buildIfNeeded();
const port = await freePort();
const op = createOperator({ http: { listener: { host: '127.0.0.1', port } }, log: { level: 'error' } });
let server: Awaited<ReturnType<typeof startServer>> | null = null;
try {
  const filled = await prepare(op.dir);
  server = await startServer(op.dir);
  const get = client(port, op.ca, filled.cookie);
  const folder = `/folder/${filled.inboxId}`;

  // Where the pages are: the XDM link of a message, then the documents of its list (the same for every package).
  const firstXdm = filled.xdmUids[0];
  if (firstXdm === undefined) throw new Error(`--messages=${MESSAGES} leaves no XDM message (one in ${XDM_EVERY})`);
  const messagePage = expectPage(await get(`${folder}/${firstXdm}`), `${folder}/${firstXdm}`, 'IHE_XDM');
  const attachment = new RegExp(`${folder}/${firstXdm}/attachment/(\\d+)/xdm`).exec(messagePage)?.[1];
  if (attachment === undefined) throw new Error('the message page has no link to the XDM documents');
  const listPath = `${folder}/${firstXdm}/attachment/${attachment}/xdm`;
  const doc = /[?&]doc=([^"&<>\s]+)/.exec(expectPage(await get(listPath), listPath, 'xdm-documents'))?.[1];
  if (doc === undefined) throw new Error('the XDM page lists no document to open');

  const inboxPage = expectPage(await get(folder), folder, '</html>');
  const assets = [...inboxPage.matchAll(/(?:href|src)="(\/static\/[^"]+)"/g)].map((m) => m[1]!.replace(/&amp;/g, '&'));
  let assetBytes = 0;
  for (const asset of new Set(assets)) assetBytes += (await get(asset)).body.length;

  const inbox = await measure(get, () => folder, '</html>');
  const message = await measure(get, (i) => `${folder}/${spread(filled.uids, i)}`, '</html>');
  const cda = await measure(get, (i) => `${folder}/${spread(filled.xdmUids, i)}/attachment/${attachment}/xdm?doc=${doc}`, 'cda-document');

  const ok = (good: boolean) => (good ? 'yes' : 'no');
  const common = `messages=${MESSAGES} requests=${REQUESTS} engine=sqlite`;
  const line = (page: string, f: PageFigures, extra = '') =>
    `RESULT page=${page} p50_ms=${f.p50.toFixed(1)} p99_ms=${f.p99.toFixed(1)} kb=${f.kb.toFixed(1)}${extra} ${common} target_p99_ms=${TARGET_P99_MS} ok=${ok(f.p99 <= TARGET_P99_MS)}`;
  console.log(line('inbox', inbox, ` assets_kb=${(assetBytes / 1024).toFixed(1)} target_kb=${TARGET_INBOX_KB} kb_ok=${ok(inbox.kb <= TARGET_INBOX_KB)}`));
  console.log(line('message', message));
  console.log(line('cda', cda));
} finally {
  await server?.stop();
  op.remove();
}
