import type { IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import nodemailer from 'nodemailer';
import pino from 'pino';
import { Secret } from 'otpauth';
import { nirKey } from '../../src/directory/identifiers.js';
import { openKeyring } from '../../src/init.js';
import { Patients, totpCode } from '../../src/policy/patients.js';
import { SealedMail } from '../../src/store/sealed-mail.js';
import { openStore } from '../../src/store/open.js';
import type { TestOperator } from '../helpers/operator.js';
import { passwordOf } from '../helpers/operator.js';

/** Test helpers of the webmail: an HTTPS client with a cookie jar, patient set-up, SMTP sending. */

export interface WebResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  bytes: Buffer;
}

/** A browser-like client: keeps the cookies the server sets (it never sends them to another host). */
export class WebClient {
  readonly cookies = new Map<string, string>();

  constructor(
    private readonly port: number,
    private readonly ca: string,
  ) {}

  async request(method: string, path: string, body?: { type: string; bytes: Buffer }, headers: Record<string, string> = {}): Promise<WebResponse> {
    const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: this.port,
          servername: 'localhost',
          ca: this.ca,
          method,
          path,
          headers: { ...(cookie ? { cookie } : {}), ...(body ? { 'content-type': body.type, 'content-length': String(body.bytes.length) } : {}), ...headers },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            for (const line of res.headers['set-cookie'] ?? []) {
              const [pair] = line.split(';');
              const eq = pair!.indexOf('=');
              const name = pair!.slice(0, eq);
              const value = pair!.slice(eq + 1);
              if (/Max-Age=0/i.test(line)) this.cookies.delete(name);
              else this.cookies.set(name, value);
            }
            const bytes = Buffer.concat(chunks);
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: bytes.toString('utf8'), bytes });
          });
        },
      );
      req.on('error', reject);
      if (body) req.write(body.bytes);
      req.end();
    });
  }

  get(path: string, headers: Record<string, string> = {}): Promise<WebResponse> {
    return this.request('GET', path, undefined, headers);
  }

  post(path: string, fields: Record<string, string>): Promise<WebResponse> {
    return this.request('POST', path, { type: 'application/x-www-form-urlencoded', bytes: Buffer.from(new URLSearchParams(fields).toString()) });
  }

  async postMultipart(path: string, form: FormData): Promise<WebResponse> {
    const response = new Response(form);
    const bytes = Buffer.from(await response.arrayBuffer());
    return this.request('POST', path, { type: response.headers.get('content-type')!, bytes });
  }

  /** GET a page with a form, then POST it with the page's CSRF token. */
  async submit(formPage: string, action: string, fields: Record<string, string>): Promise<WebResponse> {
    const page = await this.get(formPage);
    return this.post(action, { _csrf: csrfOf(page.body), ...fields });
  }
}

export function csrfOf(html: string): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!m) throw new Error('no CSRF token in the page');
  return m[1]!;
}

/** A valid INS matricule (NIR with its mod-97 key) built from 13 digits. */
export function ins(first13: string): string {
  return `${first13}${nirKey(first13)!}`;
}

/** Issues an activation code for a patient, through a second connection to the operator's database. */
export async function activationCode(op: TestOperator, addressOrIns: string): Promise<string> {
  const store = await openStore(op.config);
  try {
    const keyring = openKeyring(op.config);
    const patients = new Patients({ store, mail: new SealedMail(store, keyring), keyring, config: op.config.patients, log: pino({ level: 'silent' }) });
    return (await patients.issueActivationCode(addressOrIns, 'test')).code;
  } finally {
    await store.close();
  }
}

export function secretBytes(base32: string): Buffer {
  return Buffer.from(Secret.fromBase32(base32).bytes);
}

/**
 * A TOTP code for `offsetSteps` steps from now. The server accepts one step either side and refuses a step at or
 * before the last one used (no replay), so activation uses the current step (0) and a later login the next (1):
 * each stays valid however slowly the machine reaches the check, whereas a code one step behind is refused as
 * soon as a step boundary passes before the server checks it.
 */
export function totpAt(secret: Buffer, offsetSteps: number): string {
  return totpCode(secret, Date.now() + offsetSteps * 30_000);
}

/** Activates a pending patient mailbox through the webmail's forms; returns the TOTP secret. Leaves `web` logged in. */
export async function activateByWeb(web: WebClient, code: string, insOrAddress: string, password: string): Promise<Buffer> {
  const step1 = await web.submit('/activate', '/activate', { address: insOrAddress, code });
  if (step1.status !== 200) throw new Error(`activation step 1: ${step1.status}`);
  const secret = /id="totp-secret">([A-Z2-7=]+)</.exec(step1.body)![1]!;
  const bytes = secretBytes(secret);
  const hidden = (name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(step1.body)![1]!;
  const done = await web.post('/activate/complete', {
    _csrf: csrfOf(step1.body),
    address: hidden('address'),
    code: hidden('code'),
    secret,
    password,
    password2: password,
    totp: totpAt(bytes, 0),
  });
  if (done.status !== 303) throw new Error(`activation step 2: ${done.status} ${done.body.slice(0, 500)}`);
  return bytes;
}

/** Password then TOTP through the forms. */
export async function loginByWeb(web: WebClient, address: string, password: string, totp?: string): Promise<WebResponse> {
  const first = await web.submit('/login', '/login', { address, password });
  if (first.status !== 303 || totp === undefined) return first;
  return web.submit('/login/totp', '/login/totp', { totp });
}

export function smtpSend(op: TestOperator, from: string, to: string[], raw: string | Buffer): Promise<unknown> {
  return nodemailer
    .createTransport({ host: '127.0.0.1', port: op.ports.submission, requireTLS: true, auth: { user: from, pass: passwordOf(op, from) }, tls: { ca: op.ca, servername: 'localhost' } })
    .sendMail({ envelope: { from, to }, raw });
}

/** The id of a folder from the navigation of a page (`/folder/<id>` next to its name). */
export function folderIdOf(html: string, label: RegExp): number {
  for (const m of html.matchAll(/<a href="\/folder\/(\d+)"[^>]*>([^<]*)/g)) if (label.test(m[2]!)) return Number(m[1]);
  throw new Error(`no folder ${label} in the page`);
}
