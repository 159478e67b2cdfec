// The codeyard-opencode extension in a real browser against real code-server:
// Ctrl+Esc opens opencode in a terminal beside the editor; Ctrl+Alt+K sends the
// selection to it as @file#Lx-y.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { ADMIN_PASSWORD, Api, startGatewayProcess, type RunningGateway } from '../helpers/gateway-process.ts';
import { DOM_TERMINAL_SETTINGS, launchChromium, openIde } from '../helpers/browser.ts';

let gw: RunningGateway;
let api: Api;
let browser: Browser;

before(async () => {
  gw = await startGatewayProcess();
  api = await Api.login(gw.url);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await gw?.destroy();
});

test('Ctrl+Esc opens an opencode terminal beside the editor; Ctrl+Alt+K puts @file#Lx-y into it', { timeout: 240_000 }, async () => {
  const id = (await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', workspace: null })).body.sandboxID;
  const prep = await api.call('POST', `/api/sandboxes/${id}/exec`, { cmd: `printf 'one\\ntwo\\nthree\\nfour\\n' > notes.md && ${DOM_TERMINAL_SETTINGS}` });
  assert.equal(prep.body.exitCode, 0, prep.text);
  const page = await openIde(browser, gw.url, id, 'admin', ADMIN_PASSWORD);

  // Open notes.md from the explorer, select lines 2 and 3.
  await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'notes.md' }).first().click({ timeout: 60_000 });
  await page.locator('.view-line', { hasText: 'two' }).first().click();
  await page.keyboard.press('Home');
  await page.keyboard.press('Shift+ArrowDown');
  await page.keyboard.press('Shift+End');

  // The extension's command opens opencode beside the editor (retried: keybindings are live once extensions activate).
  const tab = page.locator('.tab', { hasText: /^opencode/ });
  for (let i = 0; i < 10 && (await tab.count()) === 0; i++) {
    await page.keyboard.press('Control+Escape');
    await tab.first().waitFor({ timeout: 5_000 }).catch(() => {});
  }
  await tab.first().waitFor({ timeout: 10_000 });
  // opencode's own screen is up in it.
  await page.locator('.xterm-rows', { hasText: /opencode|ctrl\+p|commands/i }).first().waitFor({ timeout: 60_000 });

  // Back to the editor: the selection goes to opencode as a reference.
  await page.locator('.view-line', { hasText: 'two' }).first().click();
  await page.keyboard.press('Home');
  await page.keyboard.press('Shift+ArrowDown');
  await page.keyboard.press('Shift+End');
  await page.keyboard.press('Control+Alt+K');
  await page.locator('.xterm-rows', { hasText: '@notes.md#L2-3' }).first().waitFor({ timeout: 30_000 });
  await page.context().close();
  await api.call('DELETE', `/api/sandboxes/${id}`);
});
