// The portal's AI pages in Debian's Chromium against a real gateway, with real
// sandboxes calling the fake model provider through /ai/: the admin sets and
// removes a provider key, reads the limits and the usage table; a user brings
// their own key on the account page and sees their usage against the budget.
// Screenshots at 1280×800 and 820×1180 go to test-results/portal/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ADMIN_PASSWORD, Api, ROOT, startGatewayProcess, type RunningGateway } from '../helpers/gateway-process.ts';
import { launchChromium } from '../helpers/browser.ts';
import { fakeProviderConfig, OPENAI_USAGE, startFakeModelProvider, type FakeModelProvider } from '../helpers/fake-model-provider.ts';

const SHOTS = join(ROOT, 'test-results', 'portal');
const LAPTOP = { width: 1280, height: 800 };
const TABLET = { width: 820, height: 1180 };
const ORG_KEY = 'sk-org-key-set-in-the-portal-7Q2X';
const OWN_KEY = 'sk-uma-brings-her-own-key-K9P4';

let gw: RunningGateway;
let api: Api;
let fake: FakeModelProvider;
let browser: Browser;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  fake = await startFakeModelProvider();
  gw = await startGatewayProcess({ config: fakeProviderConfig(fake.port, ['  monthlyTokens: 50000', '  requestsPerMinute: 30']) });
  api = await Api.login(gw.url);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await gw?.destroy();
  await fake?.close();
});

async function shoot(page: Page, name: string): Promise<void> {
  for (const size of [LAPTOP, TABLET]) {
    await page.setViewportSize(size);
    await page.waitForTimeout(150);
    await page.screenshot({ path: join(SHOTS, `${name}-${size.width}x${size.height}.png`), fullPage: true });
  }
  await page.setViewportSize(LAPTOP);
}

/** A logged-in page that records the portal's own console errors (a CSP violation would show there). */
async function logIn(username: string, password: string): Promise<{ page: Page; errors: string[] }> {
  const page = await (await browser.newContext({ viewport: LAPTOP })).newPage();
  const errors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`${m.text()} at ${m.location().url}`); });
  await page.goto(`${gw.url}/login`);
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.click('button[type=submit]');
  await page.locator('.topbar').waitFor({ timeout: 15_000 });
  return { page, errors };
}

/** A running VS Code sandbox of `as`, and the token its opencode sends to the model proxy. */
async function sandboxToken(as: Api): Promise<{ id: string; token: string }> {
  const created = await as.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', workspace: null });
  assert.equal(created.body?.state, 'running', created.text);
  const id = created.body.sandboxID as string;
  const config = JSON.parse(readFileSync(join(gw.dataDir, 'sandboxes', id, 'gateway', 'opencode.json'), 'utf8'));
  return { id, token: config.provider.fake.options.apiKey };
}

const modelCall = (token: string, stream: boolean) => fetch(`${gw.url}/ai/fake/chat/completions`, {
  method: 'POST',
  headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
  body: JSON.stringify({ model: 'fake-model', stream, messages: [{ role: 'user', content: 'hi' }] }),
}).then(async (r) => { await r.text(); return r.status; });

const keyFile = () => join(gw.dataDir, 'ai-keys.json');

test('admin: set a provider key in the portal (stored 0600, never shown), read the limits, see usage per user, remove the key', { timeout: 180_000 }, async () => {
  const { page, errors } = await logIn('admin', ADMIN_PASSWORD);
  // The first-run screen leads to the AI page.
  await page.getByRole('link', { name: 'Set a model key' }).click();
  await page.getByRole('heading', { name: 'Provider keys' }).waitFor();
  const row = (provider: string) => page.getByRole('row').filter({ has: page.getByRole('cell', { name: provider, exact: true }) });
  await row('fake').getByText('Not set: opencode cannot use this provider').waitFor();
  await page.getByRole('term').filter({ hasText: 'Default model' }).waitFor();
  await page.getByText('fake/fake-model', { exact: true }).waitFor();
  await page.getByText(/50.000 tokens per user/).waitFor();
  await page.getByText('30 per user').waitFor();

  // Set: a password field that has the focus, Enter saves.
  await page.getByRole('button', { name: 'Set key for fake', exact: true }).click();
  const field = page.getByLabel('API key for fake', { exact: true });
  assert.equal(await field.getAttribute('type'), 'password');
  await page.waitForFunction(() => document.activeElement?.id === 'key-fake', undefined, { timeout: 5_000 });
  await page.keyboard.type(ORG_KEY);
  await page.keyboard.press('Enter');
  await page.getByText('Key for fake stored.').waitFor();
  await row('fake').getByText('…7Q2X').waitFor();
  assert.ok(!(await page.content()).includes(ORG_KEY), 'the page never shows the key');
  const keys = (await api.call('GET', '/api/ai/keys')).body as { provider: string; set: boolean; hint: string | null }[];
  assert.deepEqual(keys.find((k) => k.provider === 'fake'), { provider: 'fake', kind: 'openai-compatible', configured: true, set: true, hint: '…7Q2X' });
  assert.equal(statSync(keyFile()).mode & 0o777, 0o600);
  assert.equal(JSON.parse(readFileSync(keyFile(), 'utf8')).providers.fake, ORG_KEY);
  // Escape closes an open key field without saving.
  await page.getByRole('button', { name: 'Set key for fakeanthropic' }).click();
  await page.waitForFunction(() => document.activeElement?.id === 'key-fakeanthropic');
  await page.keyboard.press('Escape');
  await page.getByLabel('API key for fakeanthropic').waitFor({ state: 'detached' });

  // Two calls from a sandbox (one streamed): the usage table shows them.
  const { id, token } = await sandboxToken(api);
  assert.equal(await modelCall(token, false), 200);
  assert.equal(await modelCall(token, true), 200);
  assert.equal(fake.seen.at(-1)!.auth, `Bearer ${ORG_KEY}`);
  await page.getByRole('button', { name: 'Show' }).click();
  const usage = page.locator('table.usage tbody tr').filter({ hasText: 'fake-model' });
  await usage.waitFor();
  assert.deepEqual(await usage.locator('td').allInnerTexts(), ['admin', 'fake', 'fake-model', '2', String(2 * OPENAI_USAGE.input), String(2 * OPENAI_USAGE.output)]);
  await shoot(page, 'ai');
  // Another month has none.
  await page.getByLabel('Month (UTC)').fill('2020-01');
  await page.getByRole('button', { name: 'Show' }).click();
  await page.getByText('No model calls in this period.').waitFor();

  // The admin's own account page: this month's use of the budget.
  await page.getByRole('link', { name: 'admin', exact: true }).click();
  await page.getByRole('heading', { name: 'AI usage this month' }).waitFor();
  await page.getByText(new RegExp(`^${2 * (OPENAI_USAGE.input + OPENAI_USAGE.output)} of 50.000 tokens used`)).waitFor();

  // Remove, after confirming.
  await page.getByRole('link', { name: 'AI', exact: true }).click();
  await page.getByRole('button', { name: 'Remove key for fake', exact: true }).click();
  const confirm = page.getByRole('dialog', { name: 'Remove the key for fake?' });
  await confirm.getByText('an admin must add a key').waitFor();
  await confirm.getByRole('button', { name: 'Remove key' }).click();
  await page.getByText('Key for fake removed.').waitFor();
  await row('fake').getByText('Not set: opencode cannot use this provider').waitFor();
  const after = (await api.call('GET', '/api/ai/keys')).body as { provider: string; set: boolean }[];
  assert.equal(after.find((k) => k.provider === 'fake')!.set, false);
  assert.ok(!readFileSync(keyFile(), 'utf8').includes(ORG_KEY));
  assert.equal(await modelCall(token, false), 403, 'no key: the proxy refuses');
  assert.deepEqual(errors, [], 'the portal logs no errors');
  await page.context().close();
  await api.call('DELETE', `/api/sandboxes/${id}`);
});

test('account: a user sets their own key, their calls use it outside the budget, they see their usage and remove the key', { timeout: 180_000 }, async () => {
  assert.equal((await api.call('POST', '/api/users', { username: 'uma', password: 'uma-password-1' })).status, 201);
  const uma = await Api.login(gw.url, 'uma', 'uma-password-1');
  const { page, errors } = await logIn('uma', 'uma-password-1');
  assert.equal(await page.getByRole('link', { name: 'AI', exact: true }).count(), 0, 'no admin AI page for a user');
  await page.goto(`${gw.url}/#/account`);
  await page.getByRole('heading', { name: 'AI usage this month' }).waitFor();
  await page.getByText(/^0 of 50.000 tokens used/).waitFor();
  await page.getByText('No model calls in this period.').waitFor();
  await page.getByRole('button', { name: 'Set key for fake', exact: true }).click();
  assert.equal(await page.getByLabel('API key for fake', { exact: true }).getAttribute('type'), 'password');
  await page.getByLabel('API key for fake', { exact: true }).fill(OWN_KEY);
  await page.getByRole('button', { name: 'Save key' }).click();
  await page.getByText('Your key for fake is stored').waitFor();
  await page.getByText('…K9P4').waitFor();
  assert.ok(!(await page.content()).includes(OWN_KEY));
  const mine = (await uma.call('GET', '/api/me/ai-keys')).body as { provider: string; set: boolean }[];
  assert.deepEqual(mine.filter((k) => k.set).map((k) => k.provider), ['fake']);
  const ownKeys = JSON.parse(readFileSync(keyFile(), 'utf8')).users as Record<string, Record<string, string>>;
  assert.ok(Object.values(ownKeys).some((k) => k.fake === OWN_KEY), 'the 0600 file holds her key');

  // Her sandbox's call goes out with her key (no organisation key is set) and is outside the budget.
  const { id, token } = await sandboxToken(uma);
  assert.equal(await modelCall(token, true), 200);
  assert.equal(fake.seen.at(-1)!.auth, `Bearer ${OWN_KEY}`);
  await page.reload();
  const usage = page.locator('table.usage tbody tr').filter({ hasText: 'fake-model' });
  await usage.waitFor();
  assert.deepEqual(await usage.locator('td').allInnerTexts(), ['fake', 'fake-model · own key', '1', String(OPENAI_USAGE.input), String(OPENAI_USAGE.output)]);
  await page.getByText(/^0 of 50.000 tokens used/).waitFor();
  await shoot(page, 'account');

  await page.getByRole('button', { name: 'Remove key for fake', exact: true }).click();
  const confirm = page.getByRole('dialog', { name: 'Remove the key for fake?' });
  await confirm.getByText("go back to the organisation's key").waitFor();
  await confirm.getByRole('button', { name: 'Remove key' }).click();
  await page.getByText('Key for fake removed.').waitFor();
  await page.getByText("Not set: the organisation's key is used").first().waitFor();
  assert.deepEqual(((await uma.call('GET', '/api/me/ai-keys')).body as { set: boolean }[]).filter((k) => k.set), []);
  assert.ok(!readFileSync(keyFile(), 'utf8').includes(OWN_KEY));
  assert.deepEqual(errors, [], 'the portal logs no errors');
  await page.context().close();
  await uma.call('DELETE', `/api/sandboxes/${id}`);
});
