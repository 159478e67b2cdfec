// The IDE-link flow a portal uses, in a real browser against the real gateway
// and code-server: a program holding a user's API key asks for a link; a
// browser with no session opens it and ends at a working workbench.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { Api, startGatewayProcess, tempDataDir, type RunningGateway } from '../helpers/gateway-process.ts';
import { launchChromium, runInTerminal } from '../helpers/browser.ts';

const TOKEN_TTL_S = 20;
let gw: RunningGateway;
let browser: Browser;

before(async () => {
  const dataDir = tempDataDir();
  writeFileSync(join(dataDir, 'codeyard.yaml'), `auth:\n  ideTokenTtlSeconds: ${TOKEN_TTL_S}\n`);
  gw = await startGatewayProcess({ dataDir });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await gw?.destroy();
});

test('an IDE link opens the workbench once, leaves no token in the address bar, and is refused after expiry', { timeout: 180_000 }, async () => {
  const admin = await Api.login(gw.url);
  assert.equal((await admin.call('POST', '/api/users', { username: 'pat', password: 'pat-password-1' })).status, 201);
  const patSession = await Api.login(gw.url, 'pat', 'pat-password-1');
  const program = new Api(gw.url, { 'x-api-key': (await patSession.call('POST', '/api/keys', { name: 'portal' })).body.key });
  const id = (await program.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode' })).body.sandboxID;
  await program.call('POST', `/api/sandboxes/${id}/exec`, {
    cmd: `mkdir -p ~/.local/share/code-server/User && printf '%s' '{"terminal.integrated.gpuAcceleration":"off","workbench.startupEditor":"none"}' > ~/.local/share/code-server/User/settings.json`,
  });

  const link = await program.call('POST', `/api/sandboxes/${id}/ide-token`);
  assert.equal(link.status, 200, link.text);
  assert.match(link.body.url, new RegExp(`^${gw.url}/vscode-proxy/${id}/\\?token=`));
  const ttl = Date.parse(link.body.expiresAt) - Date.now();
  assert.ok(ttl > 0 && ttl <= TOKEN_TTL_S * 1000, `expiresAt ${link.body.expiresAt}`);

  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(link.body.url);
  // Spent at once: a second browser gets nowhere with the same link.
  const again = await browser.newContext();
  const second = await again.newPage();
  const reused = await second.goto(link.body.url);
  assert.equal(reused?.status(), 401);
  assert.match(await second.content(), /already used/);
  await page.locator('.monaco-workbench').waitFor({ timeout: 90_000 });
  assert.doesNotMatch(page.url(), /token=/, `token left in the address bar: ${page.url()}`);
  assert.match(page.url(), new RegExp(`/vscode-proxy/${id}/`));
  const cookies = await context.cookies();
  const ide = cookies.find((c) => c.name === 'codeyard_ide');
  assert.equal(ide?.path, `/vscode-proxy/${id}/`, 'the IDE session cookie is confined to this sandbox');
  assert.equal(ide?.httpOnly, true);
  assert.ok(!cookies.some((c) => c.name === 'codeyard_session'), 'an IDE link gives no gateway session');

  // The workspace is there (the remote connection works) before the terminal is asked for.
  await page.locator('.explorer-folders-view').waitFor({ timeout: 60_000 });
  await runInTerminal(page, 'echo "linked-$((20+22))"', 'linked-42');

  // The page's session opens this IDE only: the API refuses it.
  const apiFromPage = await page.evaluate(async () => (await fetch('/api/me')).status);
  assert.equal(apiFromPage, 401);
  await context.close();

  // Once it has expired it says so.
  await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(link.body.expiresAt) - Date.now()) + 1500));
  const late = await second.goto(link.body.url);
  assert.equal(late?.status(), 401);
  assert.match(await second.content(), /expired/);
  await again.close();
  // Deleting the sandbox revokes what the link made.
  assert.equal((await program.call('DELETE', `/api/sandboxes/${id}`)).status, 204);
});
