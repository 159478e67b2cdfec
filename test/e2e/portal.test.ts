// The portal, as a person uses it: real gateway, real code-server in
// bubblewrap, Debian's Chromium. Screenshots of each page at a laptop and a
// tablet size go to test-results/portal/ for a person to look at.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ADMIN_PASSWORD, Api, ROOT, sandboxProcesses, startGatewayProcess, tempDataDir, type RunningGateway } from '../helpers/gateway-process.ts';
import { launchChromium, typeInTerminal } from '../helpers/browser.ts';

const SHOTS = join(ROOT, 'test-results', 'portal');
const LAPTOP = { width: 1280, height: 800 };
const TABLET = { width: 820, height: 1180 };

let gw: RunningGateway;
let api: Api;
let browser: Browser;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  const dataDir = tempDataDir();
  // Crashes back off quickly and give up after two, so the failure path shows within seconds.
  gw = await startGatewayProcess({ dataDir, config: 'supervisor:\n  backoffSeconds: [0.5]\n  maxFailures: 2\nsandboxes:\n  startTimeoutSeconds: 60\n' });
  api = await Api.login(gw.url);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await gw?.destroy();
});

/** The page at both sizes, then back to the laptop size. */
async function shoot(page: Page, name: string): Promise<void> {
  for (const size of [LAPTOP, TABLET]) {
    await page.setViewportSize(size);
    await page.waitForTimeout(150);
    await page.screenshot({ path: join(SHOTS, `${name}-${size.width}x${size.height}.png`) });
  }
  await page.setViewportSize(LAPTOP);
}

async function logIn(page: Page, username: string, password: string): Promise<void> {
  await page.goto(`${gw.url}/`);
  assert.match(page.url(), /\/login\?next=%2F$/, 'the portal sends a stranger to log in');
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.click('button[type=submit]');
  await page.waitForURL(`${gw.url}/**`);
  await page.locator('.topbar').waitFor({ timeout: 15_000 });
}

test('log in, + → VS Code, watch it start, use its terminal inside the portal, close the tab: the sandbox is gone', { timeout: 300_000 }, async () => {
  const context = await browser.newContext({ viewport: LAPTOP });
  const page = await context.newPage();
  const consoleErrors: string[] = [];
  // The portal's own errors; VS Code's inside the frame are its business.
  page.on('console', (m) => {
    const from = m.location().url;
    if (m.type() === 'error' && from.startsWith(gw.url) && !from.includes('/vscode-proxy/')) consoleErrors.push(`${m.text()} at ${from}`);
  });
  await page.goto(`${gw.url}/login`);
  await shoot(page, 'login');
  await logIn(page, 'admin', ADMIN_PASSWORD);

  // First run: the admin is told what to do next.
  await page.getByRole('heading', { name: 'Welcome to codeyard' }).waitFor();
  await page.getByText('Add the people who will use it').waitFor();
  await shoot(page, 'welcome');
  await page.getByRole('button', { name: /Got it/ }).click();
  await page.getByText('No sandboxes yet.').waitFor();
  await shoot(page, 'dashboard-empty');

  await page.getByRole('button', { name: 'New sandbox', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: 'New sandbox' });
  await dialog.getByText('VS Code', { exact: true }).waitFor();
  assert.ok(await dialog.getByRole('radio', { name: /VS Code/ }).isChecked());
  await dialog.getByLabel('Workspace', { exact: true }).selectOption({ label: 'Throwaway (deleted when you close its tab)' });
  await shoot(page, 'new-sandbox');
  await dialog.getByRole('button', { name: 'Create' }).click();

  // Never a blank screen: the steps show while it starts.
  await page.locator('.steps').waitFor({ timeout: 10_000 });
  await page.getByText('Starting code-server').waitFor();
  await shoot(page, 'starting');
  const id = /#\/s\/([a-z0-9]{20})/.exec(page.url())![1]!;
  assert.equal((await api.call('GET', `/api/sandboxes/${id}`)).body.workspace, null);

  // The workbench, inside the portal's frame, same origin, through the proxy.
  const frame = page.frameLocator('iframe.ide');
  await frame.locator('.monaco-workbench').waitFor({ timeout: 120_000 });
  assert.equal(await page.locator('iframe.ide').getAttribute('src'), `/vscode-proxy/${id}/`);
  await typeInTerminal(page, frame, 'echo portal-$((6*7)) > /home/coder/workspace/from-portal.txt');
  let written = '';
  for (let i = 0; i < 100 && written !== 'portal-42\n'; i++) {
    written = (await api.call('POST', `/api/sandboxes/${id}/exec`, { cmd: 'cat from-portal.txt 2>/dev/null || true' })).body.stdout;
    if (written !== 'portal-42\n') await page.waitForTimeout(200);
  }
  assert.equal(written, 'portal-42\n', 'the command typed into the terminal in the portal ran in the sandbox');
  await shoot(page, 'ide');

  // Closing the tab of a throwaway sandbox deletes it (after saying so).
  await page.getByRole('button', { name: /^Close / }).click();
  const confirm = page.getByRole('dialog', { name: /Close / });
  await confirm.getByText('closing the tab deletes the sandbox').waitFor();
  await confirm.getByRole('button', { name: 'Close and delete' }).click();
  await page.locator('iframe.ide').waitFor({ state: 'detached', timeout: 10_000 });
  let status = 200;
  for (let i = 0; i < 50 && status !== 404; i++) {
    status = (await api.call('GET', `/api/sandboxes/${id}`)).status;
    if (status !== 404) await page.waitForTimeout(200);
  }
  assert.equal(status, 404, 'the sandbox is deleted');
  assert.deepEqual(sandboxProcesses(id), []);
  // The tab goes once the portal hears of the deletion (it may lag the API under load).
  await page.getByRole('tab', { name: /VS Code/ }).first().waitFor({ state: 'detached', timeout: 10_000 });
  assert.equal(await page.getByRole('tab', { name: /VS Code/ }).count(), 0);
  assert.deepEqual(consoleErrors, [], 'the portal logs no errors');
  await context.close();
});

test('+ → Browser: a headless Chromium in a tab, with its CDP endpoint and open pages; closing the tab deletes it', { timeout: 180_000 }, async () => {
  const context = await browser.newContext({ viewport: LAPTOP });
  const page = await context.newPage();
  await logIn(page, 'admin', ADMIN_PASSWORD);
  await page.getByRole('button', { name: /Got it/ }).click().catch(() => {});
  await page.getByRole('button', { name: 'New sandbox', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: 'New sandbox' });
  await dialog.getByRole('radio', { name: /Browser/ }).check();
  // A browser's default is a throwaway workspace, as in the API.
  assert.match(await dialog.getByLabel('Workspace', { exact: true }).inputValue(), /throwaway/);
  await dialog.getByRole('button', { name: 'Create' }).click();
  await page.getByText('Starting Chromium').or(page.getByText('Open pages')).first().waitFor({ timeout: 30_000 });
  await page.getByRole('heading', { name: 'Open pages' }).waitFor({ timeout: 60_000 });
  const id = /#\/s\/([a-z0-9]{20})/.exec(page.url())![1]!;
  await page.getByText(`/cdp-proxy/${id}/`).first().waitFor();
  await page.getByText('about:blank').first().waitFor({ timeout: 15_000 });
  await shoot(page, 'browser');
  await page.getByRole('button', { name: /^Close / }).click();
  await page.getByRole('dialog', { name: /Close / }).getByRole('button', { name: 'Close and delete' }).click();
  let status = 200;
  for (let i = 0; i < 50 && status !== 404; i++) {
    status = (await api.call('GET', `/api/sandboxes/${id}`)).status;
    if (status !== 404) await page.waitForTimeout(200);
  }
  assert.equal(status, 404);
  await context.close();
});

test('the admin adds a user who can log in and sees only their own sandboxes; admin pages and details', { timeout: 300_000 }, async () => {
  const mine = (await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', name: 'admin-box' })).body;
  assert.equal(mine.state, 'running');
  const context = await browser.newContext({ viewport: LAPTOP });
  const page = await context.newPage();
  await logIn(page, 'admin', ADMIN_PASSWORD);
  // Still the only user: the first-run screen comes first.
  await page.getByRole('button', { name: /Got it/ }).click();
  await page.getByRole('heading', { name: 'admin-box' }).waitFor();
  await shoot(page, 'dashboard');

  await page.getByRole('link', { name: 'Users' }).click();
  await page.getByLabel('Username').fill('pat');
  await page.getByLabel(/^Password/).fill('pat-password-1');
  await page.getByRole('button', { name: 'Add user' }).click();
  await page.getByText('Added pat.').waitFor();
  await page.getByRole('cell', { name: 'pat', exact: true }).waitFor();
  await shoot(page, 'users');

  await page.getByRole('link', { name: 'All sandboxes' }).click();
  await page.getByRole('heading', { name: 'admin-box' }).waitFor();
  await shoot(page, 'all-sandboxes');
  await page.getByRole('link', { name: 'Audit log' }).click();
  await page.getByLabel('Action starts with').fill('user.');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.getByRole('cell', { name: 'user.create' }).first().waitFor();
  await shoot(page, 'audit');
  await page.getByRole('link', { name: 'Host' }).click();
  await page.getByText('sandboxes running, of').waitFor();
  await shoot(page, 'host');
  await page.goto(`${gw.url}/#/s/${mine.sandboxID}/details`);
  await page.getByRole('heading', { name: 'Crash history' }).waitFor();
  await page.locator('pre.log.tall', { hasText: /\S/ }).waitFor();
  await page.getByRole('button', { name: 'Copy share link' }).click();
  await page.getByText(`/vscode-proxy/${mine.sandboxID}/?token=`).waitFor();
  await shoot(page, 'details');
  await context.close();

  const patContext = await browser.newContext({ viewport: LAPTOP });
  const pat = await patContext.newPage();
  await logIn(pat, 'pat', 'pat-password-1');
  await pat.getByText('No sandboxes yet.').waitFor();
  assert.equal(await pat.getByText('admin-box').count(), 0, "pat does not see the admin's sandbox");
  assert.equal(await pat.getByRole('link', { name: 'Users' }).count(), 0, 'no admin pages for pat');
  // Keyboard only: Tab to "+", Enter opens the dialog, Escape closes it.
  let focused = '';
  for (let i = 0; i < 30 && focused !== 'New sandbox'; i++) {
    await pat.keyboard.press('Tab');
    focused = await pat.evaluate(() => document.activeElement?.getAttribute('aria-label') ?? '');
  }
  assert.equal(focused, 'New sandbox', 'the + button is reachable with Tab');
  await pat.keyboard.press('Enter');
  await pat.getByRole('dialog', { name: 'New sandbox' }).waitFor();
  await pat.keyboard.press('Escape');
  await pat.getByRole('dialog', { name: 'New sandbox' }).waitFor({ state: 'detached' });
  await pat.goto(`${gw.url}/#/s/${mine.sandboxID}/details`);
  await pat.getByText('you do not have access to this sandbox').waitFor();
  await shoot(pat, 'user-dashboard');
  await patContext.close();
  await api.call('DELETE', `/api/sandboxes/${mine.sandboxID}`);
});

test('a sandbox that cannot start shows the error, its classification and its log in the portal', { timeout: 180_000 }, async () => {
  const broken = (await api.call('POST', '/api/sandboxes', {
    templateID: 'vscode', name: 'broken', workspace: null, envVars: { NODE_OPTIONS: '--require /nonexistent/preload.js' },
  })).body;
  const context = await browser.newContext({ viewport: LAPTOP });
  const page = await context.newPage();
  await logIn(page, 'admin', ADMIN_PASSWORD);
  const t0 = Date.now();
  await page.goto(`${gw.url}/#/s/${broken.sandboxID}`);
  const failure = page.locator('.failure');
  await failure.getByText('missing_dependency', { exact: true }).waitFor({ timeout: 60_000 });
  await failure.getByText(/Cannot find module/).first().waitFor();
  await failure.getByRole('button', { name: 'Retry' }).waitFor();
  await failure.getByRole('link', { name: 'Show logs' }).waitFor();
  assert.ok(Date.now() - t0 < 60_000, 'within the start timeout');
  await shoot(page, 'failure');
  await context.close();
  await api.call('DELETE', `/api/sandboxes/${broken.sandboxID}`);
});

test('security headers: the portal frames only the gateway\'s IDEs; nothing frames either', async () => {
  const portal = await fetch(`${gw.url}/`, { headers: { cookie: api.headers.cookie! }, redirect: 'manual' });
  assert.equal(portal.status, 200);
  const csp = portal.headers.get('content-security-policy')!;
  assert.match(csp, /frame-ancestors 'none'/);
  assert.match(csp, /frame-src 'self'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.equal(portal.headers.get('x-frame-options'), 'DENY');
  const html = await portal.text();
  const asset = /src="(\/assets\/main-[^"]+\.js)"/.exec(html)![1]!;
  const js = await fetch(`${gw.url}${asset}`);
  assert.equal(js.status, 200);
  assert.match(js.headers.get('cache-control')!, /max-age=31536000, immutable/);
  assert.match(js.headers.get('content-type')!, /text\/javascript/);
  assert.equal((await fetch(`${gw.url}/assets/%2e%2e%2fcodeyard.db`)).status, 404);
  assert.equal((await fetch(`${gw.url}/`, { redirect: 'manual' })).status, 302);

  const box = (await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', workspace: null })).body;
  const ide = await fetch(`${gw.url}/vscode-proxy/${box.sandboxID}/`, { headers: { cookie: api.headers.cookie!, accept: 'text/html' } });
  assert.equal(ide.status, 200);
  assert.match(ide.headers.get('content-security-policy') ?? '', /frame-ancestors 'self'/);
  assert.equal(ide.headers.get('x-frame-options'), 'SAMEORIGIN');
  await ide.text();
  await api.call('DELETE', `/api/sandboxes/${box.sandboxID}`);
});
