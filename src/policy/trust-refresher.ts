import { readFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import type { Logger } from 'pino';
import type { TrustStore } from '../store/trust-types.js';
import { DEFAULT_MAX_TRUST_LIST_BYTES } from './trust-list.js';
import { importTrustList, type TrustImportReport } from './trust-store.js';

/**
 * Keeps the trust-space list current: fetches it from `trust.source` (an https:// URL or a file) at start and
 * every `refreshMinutes`, and imports it when it changed. A failure (network, TLS, size, invalid XML, bad CA
 * bundle) is logged and the last good list stays in force; the next tick tries again.
 *
 * Every process may run one: imports are serialised in the database and an unchanged list writes nothing.
 */

export interface TrustRefresherOptions {
  trust: TrustStore;
  /** An https:// URL, or a file path (relative to `baseDir`). */
  source: string;
  intervalMs: number;
  /** PEM bundle stored with each list (the CAs the operators chain to); unset keeps the stored one. */
  caFile?: string | undefined;
  /** PEM CA certificates that verify the https:// source's server (instead of Node's default ones). */
  sourceCaFile?: string | undefined;
  baseDir?: string;
  maxBytes?: number;
  maxSkippedRatio?: number;
  fetchTimeoutMs?: number;
  log: Pick<Logger, 'info' | 'warn'>;
  /** Called after a list was imported and changed (for instance to audit it). */
  onImported?: (report: TrustImportReport) => Promise<void> | void;
}

export interface TrustRefreshStatus {
  lastAttemptAt: number | null;
  lastSuccessAt: number | null;
  /** The last failure, cleared by the next success. */
  lastError: string | null;
}

export type TrustRefreshResult = { ok: true; report: TrustImportReport } | { ok: false; error: string };

/** A source URL for logs and the stored list: no credentials, no query string. */
export function describeSource(source: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) return source;
  try {
    const url = new URL(source);
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return source;
  }
}

class FetchError extends Error {}

/** GET over https with a byte limit and a timeout; redirects are not followed (the source is configured exactly). */
function fetchHttps(url: URL, ca: string | undefined, maxBytes: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ...(ca ? { ca } : {}), timeout: timeoutMs, headers: { accept: 'application/xml, text/xml' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new FetchError(`HTTP ${res.statusCode ?? '?'} from ${describeSource(url.href)}`));
        return;
      }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBytes) {
        res.destroy();
        reject(new FetchError(`the list is ${declared} bytes, over the ${maxBytes}-byte limit`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          res.destroy();
          reject(new FetchError(`the list is over the ${maxBytes}-byte limit`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new FetchError(`no answer from ${describeSource(url.href)} within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

export class TrustRefresher {
  readonly #o: TrustRefresherOptions;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<TrustRefreshResult> | null = null;
  #stopped = false;
  readonly #status: TrustRefreshStatus = { lastAttemptAt: null, lastSuccessAt: null, lastError: null };

  constructor(options: TrustRefresherOptions) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(options.source) && !/^https:\/\//i.test(options.source)) {
      throw new Error(`trust.source must be an https:// URL or a file path (got ${describeSource(options.source)})`);
    }
    this.#o = options;
  }

  /** Refreshes now (without waiting for it) and then every interval. */
  start(): void {
    if (this.#timer || this.#stopped) return;
    void this.refreshNow();
    this.#timer = setInterval(() => void this.refreshNow(), this.#o.intervalMs);
    this.#timer.unref();
  }

  /** Stops the timer and waits for a refresh in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  status(): TrustRefreshStatus {
    return { ...this.#status };
  }

  /** One refresh; a refresh already in progress is shared, not doubled. Never throws. */
  refreshNow(): Promise<TrustRefreshResult> {
    this.#running ??= this.#refresh().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async #read(): Promise<Buffer> {
    const { source } = this.#o;
    const maxBytes = this.#o.maxBytes ?? DEFAULT_MAX_TRUST_LIST_BYTES;
    if (/^https:\/\//i.test(source)) {
      const ca = this.#o.sourceCaFile ? await readFile(this.#resolve(this.#o.sourceCaFile), 'utf8') : undefined;
      return fetchHttps(new URL(source), ca, maxBytes, this.#o.fetchTimeoutMs ?? 60_000);
    }
    return readFile(this.#resolve(source));
  }

  #resolve(file: string): string {
    return path.resolve(this.#o.baseDir ?? process.cwd(), file);
  }

  async #refresh(): Promise<TrustRefreshResult> {
    const source = describeSource(this.#o.source);
    this.#status.lastAttemptAt = Date.now();
    try {
      const xml = await this.#read();
      const caBundle = this.#o.caFile ? await readFile(this.#resolve(this.#o.caFile), 'utf8') : undefined;
      const report = await importTrustList(this.#o.trust, xml, {
        source,
        ...(caBundle === undefined ? {} : { caBundle }),
        ...(this.#o.maxBytes === undefined ? {} : { maxBytes: this.#o.maxBytes }),
        ...(this.#o.maxSkippedRatio === undefined ? {} : { maxSkippedRatio: this.#o.maxSkippedRatio }),
      });
      this.#status.lastSuccessAt = Date.now();
      this.#status.lastError = null;
      if (report.replaced) {
        this.#o.log.info(
          { source, list: report.list.id, domains: report.list.domainCount, skipped: report.skipped.length, generatedAt: new Date(report.list.generatedAt).toISOString() },
          'trust list imported',
        );
        for (const s of report.skipped.slice(0, 20)) this.#o.log.warn({ source, entry: s.index, domain: s.name, reason: s.reason }, 'trust list entry skipped');
        for (const w of report.caWarnings) this.#o.log.warn({ source, warning: w }, 'trust CA bundle');
        try {
          await this.#o.onImported?.(report);
        } catch (err) {
          this.#o.log.warn({ source, error: err instanceof Error ? err.message : String(err) }, 'after the trust list import');
        }
      }
      return { ok: true, report };
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      this.#status.lastError = error;
      const active = await this.#o.trust.activeList().catch(() => null);
      this.#o.log.warn(
        { source, error, keeping: active ? { list: active.id, generatedAt: new Date(active.generatedAt).toISOString() } : null },
        'trust list refresh failed; the last good list stays in force',
      );
      return { ok: false, error };
    }
  }
}
