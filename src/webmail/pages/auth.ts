import { html, type Html } from '../html.js';
import { t, type Lang } from '../i18n.js';
import { csrfField, notice, page } from './layout.js';

/** Login, TOTP and activation pages: pure functions of what they show. */

export interface Problem {
  text: string;
  detail?: string;
}

function problem(p: Problem | null | undefined): Html | string {
  return p ? notice('error', p.text, p.detail) : '';
}

export function loginPage(input: { lang: Lang; csrf: string; address?: string; problem?: Problem | null; info?: string | null }): Html {
  const { lang } = input;
  return page({
    lang,
    path: '/login',
    viewer: null,
    title: t(lang, 'loginTitle'),
    body: html`<div class="card">
<h1>${t(lang, 'loginTitle')}</h1>
${input.info ? notice('info', input.info) : ''}
${problem(input.problem)}
<p class="hint" id="login-hint">${t(lang, 'loginIntro')}</p>
<form method="post" action="/login">
${csrfField(input.csrf)}
<label for="address">${t(lang, 'addressOrIns')}</label>
<input type="text" id="address" name="address" autocomplete="username" required aria-describedby="login-hint" value="${input.address ?? ''}">
<label for="password">${t(lang, 'password')}</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit">${t(lang, 'loginButton')}</button>
</form>
<p><a href="/activate">${t(lang, 'firstLogin')}</a></p>
</div>`,
  });
}

export function totpPage(input: { lang: Lang; csrf: string; problem?: Problem | null }): Html {
  const { lang } = input;
  return page({
    lang,
    path: '/login/totp',
    viewer: null,
    title: t(lang, 'totpTitle'),
    body: html`<div class="card">
<h1>${t(lang, 'totpTitle')}</h1>
${problem(input.problem)}
<p id="totp-hint">${t(lang, 'totpIntro')}</p>
<form method="post" action="/login/totp">
${csrfField(input.csrf)}
<label for="totp">${t(lang, 'totpCode')}</label>
<input type="text" id="totp" name="totp" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" autocomplete="one-time-code" required aria-describedby="totp-hint">
<button type="submit">${t(lang, 'verify')}</button>
</form>
</div>`,
  });
}

export function activatePage(input: { lang: Lang; csrf: string; address?: string; problem?: Problem | null }): Html {
  const { lang } = input;
  return page({
    lang,
    path: '/activate',
    viewer: null,
    title: t(lang, 'activateTitle'),
    body: html`<div class="card">
<h1>${t(lang, 'activateTitle')}</h1>
${problem(input.problem)}
<p id="activate-hint">${t(lang, 'activateIntro')}</p>
<form method="post" action="/activate">
${csrfField(input.csrf)}
<label for="address">${t(lang, 'addressOrIns')}</label>
<input type="text" id="address" name="address" autocomplete="username" required aria-describedby="activate-hint" value="${input.address ?? ''}">
<label for="code">${t(lang, 'activationCode')}</label>
<input type="text" id="code" name="code" autocomplete="one-time-code" required>
<button type="submit">${t(lang, 'continue')}</button>
</form>
</div>`,
  });
}

export interface EnrolInput {
  lang: Lang;
  csrf: string;
  address: string;
  code: string;
  /** Base32 TOTP secret, shown for typing by hand and carried to the next step. */
  secret: string;
  /** data: URL of the QR code of the otpauth:// URI. */
  qr: string;
  problem?: Problem | null;
}

export function enrolPage(input: EnrolInput): Html {
  const { lang } = input;
  const carried = html`${csrfField(input.csrf)}
<input type="hidden" name="address" value="${input.address}">
<input type="hidden" name="code" value="${input.code}">`;
  return page({
    lang,
    path: '/activate',
    viewer: null,
    title: t(lang, 'enrolTitle'),
    body: html`<div class="card">
<h1>${t(lang, 'enrolTitle')}</h1>
${problem(input.problem)}
<p>${input.address}</p>
<form method="post" action="/activate/complete">
${carried}
<input type="hidden" name="secret" value="${input.secret}">
<label for="password">${t(lang, 'newPassword')}</label>
<input type="password" id="password" name="password" autocomplete="new-password" minlength="10" required>
<label for="password2">${t(lang, 'confirmPassword')}</label>
<input type="password" id="password2" name="password2" autocomplete="new-password" minlength="10" required>
<h2>${t(lang, 'totpTitle')}</h2>
<p id="enrol-hint">${t(lang, 'enrolIntro')}</p>
<img class="qr" src="${input.qr}" alt="${t(lang, 'qrAlt')}">
<p>${t(lang, 'manualKey')} : <code class="key" id="totp-secret">${input.secret}</code></p>
<label for="totp">${t(lang, 'totpCode')}</label>
<input type="text" id="totp" name="totp" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" autocomplete="one-time-code" required aria-describedby="enrol-hint">
<button type="submit">${t(lang, 'activateButton')}</button>
</form>
<h2>${t(lang, 'opposeTitle')}</h2>
<p>${t(lang, 'opposeIntro')}</p>
<form method="post" action="/activate/oppose">
${carried}
<button type="submit" class="secondary">${t(lang, 'opposeButton')}</button>
</form>
</div>`,
  });
}

export function opposedPage(lang: Lang): Html {
  return page({
    lang,
    path: '/activate',
    viewer: null,
    title: t(lang, 'opposeTitle'),
    body: html`<div class="card"><h1>${t(lang, 'opposeTitle')}</h1>${notice('ok', t(lang, 'opposed'))}</div>`,
  });
}
