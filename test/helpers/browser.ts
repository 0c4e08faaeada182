// A real browser for the dashboard tests: Debian's chromium, driven by playwright-core (which brings
// no browser of its own). Headless, no proxy, a temporary profile and HOME. Each page records its
// console errors and Content-Security-Policy violations, so a test can require that there were none.
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { slack } from './load.ts';

export const CHROMIUM = process.env['KEYWAY_TEST_CHROMIUM'] ?? '/usr/bin/chromium';

/** Screenshots for a person to look at (gitignored). */
export const SCREENSHOTS = fileURLToPath(new URL('../../.test-output/', import.meta.url));

export interface WatchedPage {
  page: Page;
  context: BrowserContext;
  /** Console errors and uncaught exceptions, as text. */
  errors: string[];
  /** CSP violations the page reported (directive and blocked URI). */
  violations(): Promise<string[]>;
  screenshot(name: string): Promise<string>;
}

export async function launchChromium(): Promise<Browser> {
  const home = mkdtempSync(join(tmpdir(), 'keyway-chromium-'));
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // As root (CI containers) chromium refuses to start with its sandbox on.
    chromiumSandbox: process.getuid?.() !== 0,
    // Loopback only: no proxy from the environment, no network services of its own.
    args: ['--no-proxy-server', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    env: { HOME: home, PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
    timeout: 60_000,
  });
}

/** A page in a new context; `signedInAs` carries another page's cookies and storage over (its session). */
export async function openPage(browser: Browser, viewport = { width: 1200, height: 860 }, signedInAs?: WatchedPage): Promise<WatchedPage> {
  const storageState = signedInAs ? await signedInAs.context.storageState() : undefined;
  const context = await browser.newContext({ viewport, reducedMotion: 'reduce', ...(storageState ? { storageState } : {}) });
  // 20 s on an idle machine, stretched by the measured load (a page waits for CPU, not for keyway).
  context.setDefaultTimeout(slack(20_000, 90_000));
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`));
  // Runs before the page's own scripts, outside its CSP (it is the browser's, not the page's). Page
  // code is given as text: this project's TypeScript has no DOM types.
  await context.addInitScript(`
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));
  `);
  mkdirSync(SCREENSHOTS, { recursive: true });
  return {
    page,
    context,
    errors,
    violations: () => page.evaluate<string[]>('[...(window.__cspViolations ?? [])]'),
    screenshot: async (name) => {
      const path = join(SCREENSHOTS, `${name}.png`);
      await page.screenshot({ path, fullPage: true });
      return path;
    },
  };
}

/** Opens the dashboard at `#/section`, signs in with the admin token, and waits for the section's heading. */
export async function signInAt(page: Page, admin: { base: string; token: string }, section: string, heading: string): Promise<void> {
  await page.goto(`${admin.base}/#/${section}`);
  await page.getByLabel('Admin token').fill(admin.token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: heading }).waitFor();
}
