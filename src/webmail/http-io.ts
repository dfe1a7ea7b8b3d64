import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Html } from './html.js';
import type { TextKey } from './i18n.js';

/**
 * The webmail's HTTP plumbing, framework-free: security headers on every answer, cookies, bounded request
 * bodies and form parsing (multipart through the platform's own `Response.formData`, so no hand-written parser).
 */

/** The brief's policy, plus `connect-src 'self'`: the address-book completion fetches /api/directory/search. */
export const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Permissions-Policy': 'camera=(), microphone=(), geolocation=(), interest-cohort=()',
  'Strict-Transport-Security': 'max-age=31536000',
};

/** An answer a handler gives up with: a status and the text shown to the person. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly key: TextKey,
  ) {
    super(`${status} ${key}`);
  }
}

export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const piece of (header ?? '').split(';')) {
    const eq = piece.indexOf('=');
    if (eq <= 0) continue;
    const name = piece.slice(0, eq).trim();
    if (!out.has(name)) out.set(name, piece.slice(eq + 1).trim());
  }
  return out;
}

export interface CookieOptions {
  maxAgeSeconds?: number;
  httpOnly?: boolean;
}

/** `__Host-` cookies: Secure, Path=/, no Domain; always SameSite=Strict. */
export function cookie(name: string, value: string, options: CookieOptions = {}): string {
  const parts = [`${name}=${value}`, 'Path=/', 'Secure', 'SameSite=Strict'];
  if (options.httpOnly !== false) parts.push('HttpOnly');
  if (options.maxAgeSeconds !== undefined) parts.push(`Max-Age=${Math.max(0, Math.floor(options.maxAgeSeconds))}`);
  return parts.join('; ');
}

export function clearCookie(name: string): string {
  return cookie(name, '', { maxAgeSeconds: 0 });
}

/** The body, refused (413) beyond `max` bytes without reading the rest into memory. */
export function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  // Over the limit, the rest is read and dropped (never kept), so the client gets the 413 rather than a reset;
  // the listener's request timeout bounds how long that may take.
  const declared = Number(req.headers['content-length'] ?? NaN);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = Number.isFinite(declared) && declared > max;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) over = true;
      if (!over) chunks.push(chunk);
    });
    req.on('end', () => (over ? reject(new HttpError(413, 'tooLarge')) : resolve(Buffer.concat(chunks, size))));
    req.on('error', reject);
  });
}

export interface FormFile {
  name: string;
  type: string;
  content: Buffer;
}

/** A submitted form: text fields (first value wins for `get`) and files. */
export class Form {
  constructor(
    private readonly fields: [string, string][],
    readonly files: Map<string, FormFile[]> = new Map(),
  ) {}

  get(name: string): string {
    return this.fields.find(([k]) => k === name)?.[1] ?? '';
  }

  has(name: string): boolean {
    return this.fields.some(([k]) => k === name);
  }
}

export async function readForm(req: IncomingMessage, limits: { maxFormBytes: number; maxUploadBytes: number }): Promise<Form> {
  const type = (req.headers['content-type'] ?? '').toLowerCase();
  if (type.startsWith('application/x-www-form-urlencoded')) {
    const body = await readBody(req, limits.maxFormBytes);
    return new Form([...new URLSearchParams(body.toString('utf8'))]);
  }
  if (type.startsWith('multipart/form-data')) {
    const body = await readBody(req, limits.maxUploadBytes);
    let data: FormData;
    try {
      data = await new Response(body, { headers: { 'content-type': req.headers['content-type'] ?? '' } }).formData();
    } catch {
      throw new HttpError(400, 'badRequest');
    }
    const fields: [string, string][] = [];
    const files = new Map<string, FormFile[]>();
    for (const [name, value] of data.entries()) {
      if (typeof value === 'string') fields.push([name, value]);
      else if (value.size > 0 || value.name !== '') {
        const list = files.get(name) ?? [];
        list.push({ name: value.name, type: value.type || 'application/octet-stream', content: Buffer.from(await value.arrayBuffer()) });
        files.set(name, list);
      }
    }
    return new Form(fields, files);
  }
  throw new HttpError(415, 'badRequest');
}

function write(res: ServerResponse, status: number, headers: Record<string, string | string[]>, body: Buffer | string): void {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Length': String(bytes.length), ...headers });
  res.end(bytes);
}

export function sendHtml(res: ServerResponse, status: number, page: Html, cookies: string[] = []): void {
  write(res, status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', ...(cookies.length ? { 'Set-Cookie': cookies } : {}) }, page.text);
}

export function redirect(res: ServerResponse, location: string, cookies: string[] = []): void {
  // Same-origin paths only: never redirect to a location taken from a request without this check.
  const safe = location.startsWith('/') && !location.startsWith('//') && !location.startsWith('/\\') ? location : '/';
  write(res, 303, { Location: safe, 'Cache-Control': 'no-store', ...(cookies.length ? { 'Set-Cookie': cookies } : {}) }, '');
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  write(res, status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' }, JSON.stringify(body));
}

export function sendBytes(res: ServerResponse, contentType: string, body: Buffer, headers: Record<string, string> = {}): void {
  write(res, 200, { 'Content-Type': contentType, ...headers }, body);
}

/** `attachment; filename="…"; filename*=UTF-8''…` with the name reduced to safe ASCII in the plain form. */
export function attachmentDisposition(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]/g, '_').replace(/["\\;]/g, '_') || 'attachment';
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}

export function remoteOf(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? '?';
}
