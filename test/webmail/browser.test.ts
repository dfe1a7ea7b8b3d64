import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildXdm } from '../../src/mime/xdm/build.js';
import { DEMO, passwordOf, startOperator, type TestOperator } from '../helpers/operator.js';
import { mimeMessage } from '../mime/xdm-test-message.js';
import { activateByWeb, activationCode, ins, secretBytes, smtpSend, totpAt, WebClient } from './helpers.js';
import { XSS_CORPUS } from './xss-corpus.js';

/**
 * The webmail in headless Chromium (Debian's, driven by playwright-core), with axe-core run on every screen:
 * a hospital application mailbox sends a discharge report (XDM + PDF) by SMTP to a patient; the patient activates
 * the mailbox, logs in with TOTP, reads it, opens the CDA viewer, saves the document, replies; the professional
 * reads the reply over IMAP; the patient is told why they cannot write first nor reply after FIN; a second patient
 * cannot open the first one's message by URL; a hostile HTML mail stays inert. Screenshots go to
 * test-artifacts/webmail/.
 */

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.resolve('test-artifacts/webmail');
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const CDA = readFileSync(path.join(import.meta.dirname, '../fixtures/cda/fr/LDL-SES_2022.01.xml'));
/** The discharge letter with the patient's INS in place of the fixture's (the pipeline checks they match). */
const cdaFor = (to: string) => Buffer.from(CDA.toString('utf8').replaceAll('279035121518989', to.split('@')[0]!), 'utf8');
const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');
const SUBJECT = 'Lettre de liaison de sortie DUPONT Jeanne 01/01/1970';
const PATIENT_B = `${ins('1691299123456')}@patient.mssante.test`;

function discharge(to: string, extra = ''): Buffer {
  return mimeMessage(
    [
      { filename: 'IHE_XDM.ZIP', type: 'application/zip', content: buildXdm({ documents: [{ content: cdaFor(to) }] }) },
      { filename: 'lettre-de-liaison.pdf', type: 'application/pdf', content: PDF },
    ],
    `Message-ID: <${Math.random().toString(36).slice(2)}@hopital-demo.mssante.test>\r\n${extra}`,
    { from: DEMO.dpi, to, subject: `XDM/1.0/DDM+${SUBJECT}` },
  );
}

describe('webmail in Chromium: the patient scenario, accessible and isolated', () => {
  let op: TestOperator;
  let browser: Browser;
  const axeFindings: string[] = [];
  let shots = 0;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    [op, browser] = await Promise.all([
      startOperator(),
      chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] }),
    ]);
  }, 30_000);
  afterAll(async () => {
    await browser?.close();
    await op?.dispose();
  });

  async function newContext(): Promise<BrowserContext> {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, baseURL: `https://localhost:${op.ports.https}`, viewport: { width: 390, height: 844 } });
    // axe-core arrives as an init script (DevTools), so the page's CSP, which forbids inline script, stays on.
    await context.addInitScript({ content: AXE });
    return context;
  }

  /** Screenshot and axe: no serious or critical violation on the screen. */
  async function screen(page: Page, name: string, options: { excludeMailBody?: boolean } = {}): Promise<void> {
    shots++;
    await page.screenshot({ path: path.join(ARTIFACTS, `${String(shots).padStart(2, '0')}-${name}.png`), fullPage: true });
    // A hostile mail's own markup (e.g. an image without alt) is the sender's, not the webmail's: left out there.
    const target = options.excludeMailBody ? "{ exclude: [['.mail-body']] }" : 'document';
    const found: unknown = await page.evaluate(
      `axe.run(${target}, { resultTypes: ['violations'] }).then((r) => r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id + ' ' + v.nodes.map((n) => n.target.join(' ')).join(' | ')))`,
    );
    expect(Array.isArray(found)).toBe(true);
    for (const v of found as unknown[]) axeFindings.push(`${name}: ${String(v)}`);
  }

  /** The screen on a desktop-sized window as well, top part only (the pictures in docs/ come from these). */
  async function desktopShot(page: Page, name: string): Promise<void> {
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.screenshot({ path: path.join(ARTIFACTS, `desktop-${name}.png`) });
    await page.setViewportSize({ width: 390, height: 844 });
  }

  it('runs the whole scenario', async () => {
    await smtpSend(op, DEMO.dpi, [DEMO.patient], discharge(DEMO.patient));
    await smtpSend(op, DEMO.dpi, [PATIENT_B], discharge(PATIENT_B));
    const code = await activationCode(op, DEMO.patient);

    const context = await newContext();
    const dialogs: string[] = [];
    const foreign: string[] = [];
    context.on('request', (r) => {
      const url = new URL(r.url());
      if (/^https?:$/.test(url.protocol) && url.hostname !== 'localhost') foreign.push(r.url());
    });
    const page = await context.newPage();
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });

    // Activation: code, then password and TOTP enrolment.
    await page.goto('/activate');
    await screen(page, 'activate');
    await page.getByLabel('Adresse ou matricule INS').fill(DEMO.patient.split('@')[0]!);
    await page.getByLabel("Code d'activation").fill(code);
    await page.getByRole('button', { name: 'Continuer' }).click();
    await page.locator('#totp-secret').waitFor();
    await screen(page, 'enrol');
    const secret = secretBytes((await page.locator('#totp-secret').textContent())!.trim());
    await page.getByLabel('Nouveau mot de passe').fill('un mot de passe solide');
    await page.getByLabel('Confirmer le mot de passe').fill('un mot de passe solide');
    await page.getByLabel('Code à 6 chiffres').fill(totpAt(secret, 0));
    await page.getByRole('button', { name: 'Activer ma messagerie' }).click();
    await page.waitForURL('**/folder/*');

    // Log out, log in again with the password and a TOTP code.
    await page.getByRole('button', { name: 'Se déconnecter' }).click();
    await page.waitForURL('**/login');
    await screen(page, 'login');
    await page.getByLabel('Adresse ou matricule INS').fill(DEMO.patient);
    await page.getByLabel('Mot de passe').fill('un mot de passe solide');
    await page.getByRole('button', { name: 'Se connecter' }).click();
    await page.waitForURL('**/login/totp');
    await screen(page, 'totp');
    await page.getByLabel('Code à 6 chiffres').fill(totpAt(secret, 1));
    await page.getByRole('button', { name: 'Vérifier' }).click();
    await page.waitForURL('**/folder/*');
    await screen(page, 'inbox');
    await desktopShot(page, 'inbox');
    expect(await page.locator('nav .count').first().textContent()).toMatch(/^1/);

    // The discharge report: read, CDA viewer, saved to the documents.
    await page.getByRole('link', { name: SUBJECT }).click();
    await page.waitForURL(/\/folder\/\d+\/\d+$/);
    const messageUrl = page.url();
    await screen(page, 'message');
    expect(await page.getByText('lettre-de-liaison.pdf').first().isVisible()).toBe(true);
    await page.getByRole('link', { name: /Voir les documents/ }).click();
    await screen(page, 'xdm-list');
    await page.getByRole('link', { name: /Ouvrir/ }).first().click();
    await page.waitForSelector('article.cda');
    await screen(page, 'cda-viewer');
    await desktopShot(page, 'cda-viewer');
    await page.getByRole('button', { name: /Enregistrer dans mes documents/ }).first().click();
    await page.waitForURL(/\/documents\/\d+/);
    await screen(page, 'document-saved');
    await page.goto('/documents');
    await screen(page, 'documents');
    expect(await page.locator('main a[href^="/documents/"]').count()).toBe(1);

    // Reply to the hospital, read over IMAP by the professional side.
    await page.goto(messageUrl);
    await page.getByRole('link', { name: 'Répondre' }).click();
    await screen(page, 'reply');
    await page.getByLabel('Message').fill('Merci pour ce compte rendu.');
    await page.getByRole('button', { name: 'Envoyer' }).click();
    await page.waitForURL(/done=sent/);
    await screen(page, 'sent');
    const imap = new ImapFlow({ host: '127.0.0.1', port: op.ports.imaps, secure: true, auth: { user: DEMO.dpi, pass: passwordOf(op, DEMO.dpi) }, tls: { ca: op.ca, servername: 'localhost' }, logger: false });
    await imap.connect();
    try {
      const box = await imap.mailboxOpen('INBOX');
      const last = await imap.fetchOne(String(box.exists), { envelope: true, source: true });
      expect(last && last.envelope!.from![0]!.address).toBe(DEMO.patient);
      expect(last && last.source!.toString()).toContain('Merci pour ce compte rendu.');
    } finally {
      await imap.logout();
    }

    // Writing first: the page says why not.
    await page.goto('/compose');
    await screen(page, 'compose-refused');
    expect(await page.getByText('ne peut pas écrire le premier').first().isVisible()).toBe(true);

    // After FIN: the reply button is disabled and says why.
    await smtpSend(op, DEMO.dpi, [DEMO.patient], discharge(DEMO.patient, 'X-MSS-MES: FIN\r\n'));
    await page.goto(messageUrl.replace(/\/\d+$/, ''));
    await page.getByRole('link', { name: SUBJECT }).first().click();
    await screen(page, 'reply-closed');
    expect(await page.getByRole('button', { name: 'Répondre' }).isDisabled()).toBe(true);
    expect((await page.locator('#reply-why').textContent())!.length).toBeGreaterThan(20);

    // A hostile HTML mail from a clinician: nothing runs, nothing remote loads.
    await smtpSend(
      op,
      DEMO.jean,
      [DEMO.patient],
      [`From: ${DEMO.jean}`, `To: ${DEMO.patient}`, 'Subject: Message piégé', 'MIME-Version: 1.0', 'Content-Type: text/html; charset=utf-8', '', XSS_CORPUS.map((v) => v.html).join('\n'), ''].join('\r\n'),
    );
    await page.goto(messageUrl.replace(/\/\d+$/, ''));
    await page.getByRole('link', { name: 'Message piégé' }).click();
    await page.waitForLoadState('load');
    await screen(page, 'hostile-mail', { excludeMailBody: true });
    expect(dialogs).toEqual([]);
    expect(foreign).toEqual([]);

    await page.goto('/history');
    await screen(page, 'history');

    // A second patient cannot open the first one's message by URL.
    const webB = new WebClient(op.ports.https, op.ca);
    const secretB = await activateByWeb(webB, await activationCode(op, PATIENT_B), PATIENT_B, 'mot de passe de B');
    const contextB = await newContext();
    const pageB = await contextB.newPage();
    await pageB.goto('/login');
    await pageB.getByLabel('Adresse ou matricule INS').fill(PATIENT_B);
    await pageB.getByLabel('Mot de passe').fill('mot de passe de B');
    await pageB.getByRole('button', { name: 'Se connecter' }).click();
    await pageB.waitForURL('**/login/totp');
    await pageB.getByLabel('Code à 6 chiffres').fill(totpAt(secretB, 1));
    await pageB.getByRole('button', { name: 'Vérifier' }).click();
    await pageB.waitForURL('**/folder/*');
    const response = await pageB.goto(messageUrl);
    expect(response?.status()).toBe(404);
    await screen(pageB, 'other-patient-404');
    expect(await pageB.content()).not.toContain('Merci');

    // English is one click away.
    await page.getByRole('link', { name: 'Read in English' }).click();
    await page.waitForURL('**/history');
    await screen(page, 'history-en');
    expect(await page.locator('html').getAttribute('lang')).toBe('en');

    // A professional composes: address-book completion (the one script, allowed by the CSP) and the options.
    const contextJ = await newContext();
    const pageJ = await contextJ.newPage();
    await pageJ.goto('/login');
    await pageJ.getByLabel('Adresse ou matricule INS').fill(DEMO.jean);
    await pageJ.getByLabel('Mot de passe').fill(passwordOf(op, DEMO.jean));
    await pageJ.getByRole('button', { name: 'Se connecter' }).click();
    await pageJ.waitForURL('**/folder/*');
    await pageJ.goto('/compose');
    await pageJ.getByLabel('À', { exact: true }).pressSequentially('mart');
    await pageJ.locator('#to-suggestions option').first().waitFor({ state: 'attached' });
    expect(await pageJ.locator('#to-suggestions option').first().getAttribute('value')).toBe(DEMO.claire);
    await screen(pageJ, 'compose-professional');
    await contextJ.close();

    expect(axeFindings).toEqual([]);
    await contextB.close();
    await context.close();
  }, 60_000);
});
