import { Secret, TOTP } from 'otpauth';
import QRCode from 'qrcode';
import type { Authenticator } from '../accounts/authenticator.js';
import { PatientError, type Patients } from '../policy/patients.js';
import type { MailboxRow, Store } from '../store/types.js';
import type { Ctx, WebmailConfig } from './app.js';
import { clearCookie, cookie, HttpError, parseCookies, readForm, redirect, sendHtml, type Form } from './http-io.js';
import { t } from './i18n.js';
import { activatePage, enrolPage, loginPage, opposedPage, totpPage, type Problem } from './pages/auth.js';
import { ANON_CSRF_COOKIE, newToken, sameToken, type Sessions } from './sessions.js';

/**
 * Getting in: the password (and, for a patient, the TOTP code on a second page, which replaces the session by a
 * new one), the patient's first activation (code, password, TOTP enrolment with a QR code) and opposition. Forms
 * shown before login carry a double-submit CSRF token. Failures count per client address (`webmail.maxFailuresPerIp`)
 * besides the per-address lockouts of the Authenticator and of `Patients`.
 */

export interface LoginFlowDeps {
  auth: Authenticator;
  patients: Patients;
  sessions: Sessions;
  store: Store;
  config: WebmailConfig;
  now: () => number;
}

const TOTP_ISSUER = 'MSSante';

export class LoginFlow {
  constructor(private readonly deps: LoginFlowDeps) {}

  /** A form posted before login, its double-submit token checked against the cookie. */
  async #anonForm(ctx: Ctx): Promise<Form> {
    const form = await readForm(ctx.req, this.deps.config);
    const token = parseCookies(ctx.req.headers.cookie).get(ANON_CSRF_COOKIE) ?? '';
    if (!sameToken(form.get('_csrf'), token)) throw new HttpError(403, 'csrfFailed');
    return form;
  }

  /** The double-submit token for a form shown before login, and the cookie that carries it. */
  #anonToken(ctx: Ctx): { token: string; cookies: string[] } {
    const existing = parseCookies(ctx.req.headers.cookie).get(ANON_CSRF_COOKIE);
    if (existing && /^[A-Za-z0-9_-]{43}$/.test(existing)) return { token: existing, cookies: [] };
    const token = newToken();
    return { token, cookies: [cookie(ANON_CSRF_COOKIE, token)] };
  }


  async loginForm(ctx: Ctx, problem: Problem | null = null, status = 200, address = ''): Promise<void> {
    if (!problem && ctx.session?.row.stage === 'complete') {
      redirect(ctx.res, '/');
      return;
    }
    const { token, cookies } = this.#anonToken(ctx);
    const info = ctx.url.searchParams.get('expired') === '1' ? t(ctx.lang, 'sessionExpired') : null;
    sendHtml(ctx.res, status, loginPage({ lang: ctx.lang, csrf: token, address, problem, info }), cookies);
  }

  async #ipLocked(remote: string): Promise<boolean> {
    const state = await this.deps.store.getAuthFailures(`webmail-ip:${remote}`);
    return state.lockedUntil > this.deps.now();
  }

  async #ipFailure(remote: string): Promise<void> {
    const { maxFailuresPerIp, ipLockoutMs } = this.deps.config;
    await this.deps.store.transaction((tx) => tx.recordAuthFailure(`webmail-ip:${remote}`, this.deps.now(), maxFailuresPerIp, ipLockoutMs));
  }

  async login(ctx: Ctx): Promise<void> {
    const form = await this.#anonForm(ctx);
    const typed = form.get('address').trim().slice(0, 320);
    if (await this.#ipLocked(ctx.remote)) return this.loginForm(ctx, { text: t(ctx.lang, 'lockedOut') }, 429, typed);
    const address = this.deps.patients.addressOf(typed) ?? typed.toLowerCase();
    const result = await this.deps.auth.login(address, form.get('password').slice(0, 1024), { protocol: 'webmail', remote: ctx.remote });
    if (!result.ok) {
      await this.#ipFailure(ctx.remote);
      if (result.reason === 'locked') return this.loginForm(ctx, { text: t(ctx.lang, 'lockedOut') }, 429, typed);
      if (result.reason === 'disabled') return this.loginForm(ctx, { text: t(ctx.lang, 'mailboxNotActive') }, 403, typed);
      return this.loginForm(ctx, { text: t(ctx.lang, 'badCredentials') }, 401, typed);
    }
    const mailbox = result.mailbox;
    const patient = mailbox.type === 'PATIENT';
    if (patient && (await this.deps.patients.status(mailbox)) !== 'active') return this.loginForm(ctx, { text: t(ctx.lang, 'mailboxNotActive') }, 403, typed);
    if (ctx.session) await this.deps.sessions.end(ctx.session.row);
    const started = await this.deps.sessions.start(mailbox, patient ? 'password' : 'complete', ctx.lang);
    redirect(ctx.res, patient ? '/login/totp' : '/', [started.setCookie, clearCookie(ANON_CSRF_COOKIE)]);
  }

  async totpForm(ctx: Ctx, problem: Problem | null = null, status = 200): Promise<void> {
    if (!ctx.session || ctx.session.row.stage !== 'password') {
      redirect(ctx.res, ctx.session ? '/' : '/login?expired=1');
      return;
    }
    sendHtml(ctx.res, status, totpPage({ lang: ctx.lang, csrf: ctx.session.row.csrf, problem }));
  }

  async totp(ctx: Ctx): Promise<void> {
    const session = ctx.session;
    if (!session || session.row.stage !== 'password') {
      redirect(ctx.res, '/login?expired=1');
      return;
    }
    const form = await readForm(ctx.req, this.deps.config);
    if (!sameToken(form.get('_csrf'), session.row.csrf)) throw new HttpError(403, 'csrfFailed');
    if (await this.#ipLocked(ctx.remote)) return this.totpForm(ctx, { text: t(ctx.lang, 'lockedOut') }, 429);
    const ok = await this.deps.patients.verifyTotp(session.mailbox, form.get('totp').slice(0, 16), ctx.remote);
    if (!ok) {
      await this.#ipFailure(ctx.remote);
      return this.totpForm(ctx, { text: t(ctx.lang, 'badTotp') }, 401);
    }
    // A new cookie for the complete session: the one that only knew the password is dropped.
    await this.deps.sessions.end(session.row);
    const started = await this.deps.sessions.start(session.mailbox, 'complete', ctx.lang);
    redirect(ctx.res, '/', [started.setCookie]);
  }

  async activateForm(ctx: Ctx, problem: Problem | null = null, status = 200, address = ''): Promise<void> {
    const { token, cookies } = this.#anonToken(ctx);
    sendHtml(ctx.res, status, activatePage({ lang: ctx.lang, csrf: token, address, problem }), cookies);
  }

  #patientProblem(ctx: Ctx, err: PatientError): Problem {
    return { text: ctx.lang === 'fr' ? err.fr : err.en };
  }

  async #enrol(ctx: Ctx, form: { address: string; code: string; secret: Secret; csrf: string }, problem: Problem | null, status: number): Promise<void> {
    const totp = new TOTP({ issuer: TOTP_ISSUER, label: form.address, algorithm: 'SHA1', digits: 6, period: 30, secret: form.secret });
    const qr = await QRCode.toDataURL(totp.toString(), { errorCorrectionLevel: 'M', margin: 2, width: 192 });
    sendHtml(ctx.res, status, enrolPage({ lang: ctx.lang, csrf: form.csrf, address: form.address, code: form.code, secret: form.secret.base32, qr, problem }));
  }

  async activate(ctx: Ctx): Promise<void> {
    const form = await this.#anonForm(ctx);
    const typed = form.get('address').trim().slice(0, 320);
    const code = form.get('code').trim().slice(0, 64);
    if (await this.#ipLocked(ctx.remote)) return this.activateForm(ctx, { text: t(ctx.lang, 'lockedOut') }, 429, typed);
    let mailbox: MailboxRow;
    try {
      mailbox = await this.deps.patients.checkActivationCode(typed, code, ctx.remote);
    } catch (err) {
      if (!(err instanceof PatientError)) throw err;
      await this.#ipFailure(ctx.remote);
      return this.activateForm(ctx, this.#patientProblem(ctx, err), 400, typed);
    }
    await this.#enrol(ctx, { address: mailbox.address, code, secret: new Secret({ size: 20 }), csrf: form.get('_csrf') }, null, 200);
  }

  async activateComplete(ctx: Ctx): Promise<void> {
    const form = await this.#anonForm(ctx);
    const address = form.get('address').trim().slice(0, 320);
    const code = form.get('code').trim().slice(0, 64);
    const base32 = form.get('secret').trim();
    if (!/^[A-Z2-7]{26,103}=*$/.test(base32)) throw new HttpError(400, 'badRequest');
    const secret = Secret.fromBase32(base32);
    const carried = { address, code, secret, csrf: form.get('_csrf') };
    const password = form.get('password');
    if (password !== form.get('password2')) return this.#enrol(ctx, carried, { text: t(ctx.lang, 'passwordsDiffer') }, 400);
    let mailbox: MailboxRow;
    try {
      mailbox = await this.deps.patients.completeActivation({
        addressOrIns: address,
        code,
        password,
        totpSecret: Buffer.from(secret.bytes),
        totp: form.get('totp').slice(0, 16),
        remote: ctx.remote,
      });
    } catch (err) {
      if (!(err instanceof PatientError)) throw err;
      // A code no longer valid cannot be retried on this page: back to the first step.
      if (['invalid-code', 'code-expired', 'locked', 'not-pending', 'invalid-address'].includes(err.code)) return this.activateForm(ctx, this.#patientProblem(ctx, err), 400, address);
      return this.#enrol(ctx, carried, this.#patientProblem(ctx, err), 400);
    }
    // The patient just proved both factors: the session is complete.
    const started = await this.deps.sessions.start(mailbox, 'complete', ctx.lang);
    redirect(ctx.res, '/', [started.setCookie, clearCookie(ANON_CSRF_COOKIE)]);
  }

  async oppose(ctx: Ctx): Promise<void> {
    const form = await this.#anonForm(ctx);
    const address = form.get('address').trim().slice(0, 320);
    try {
      // Only the holder of the activation code may close the mailbox from the web.
      const mailbox = await this.deps.patients.checkActivationCode(address, form.get('code').trim().slice(0, 64), ctx.remote);
      await this.deps.patients.oppose(mailbox.address, mailbox.address);
      await this.deps.sessions.endAll(mailbox.id);
    } catch (err) {
      if (err instanceof PatientError) return this.activateForm(ctx, this.#patientProblem(ctx, err), 400, address);
      throw err;
    }
    sendHtml(ctx.res, 200, opposedPage(ctx.lang));
  }
}
