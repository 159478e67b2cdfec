// The foundation's promise, end to end against the real gateway, real
// code-server in bubblewrap and a real Chromium: create, write, open the
// workbench through the proxy, see the file, use the terminal, delete.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { ADMIN_PASSWORD, Api, sandboxProcesses, startGatewayProcess, type RunningGateway } from '../helpers/gateway-process.ts';
import { launchChromium, runInTerminal } from '../helpers/browser.ts';

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

test('VS Code in the browser through /vscode-proxy/<id>/: explorer, file, terminal; delete frees everything', { timeout: 240_000 }, async () => {
  const created = await api.call('POST', '/api/sandboxes', { templateID: 'vscode', name: 'e2e' });
  assert.equal(created.status, 201, created.text);
  assert.equal(created.body.state, 'starting');
  const id: string = created.body.sandboxID;
  assert.equal(created.body.urls.ide, `/vscode-proxy/${id}/`);

  // The proxy answers a starting sandbox with a self-refreshing page, not an error.
  const early = await fetch(`${gw.url}/vscode-proxy/${id}/`, { headers: { cookie: api.headers.cookie!, accept: 'text/html' } });
  assert.ok(early.status === 503 || early.status === 200 || early.status === 302, `unexpected ${early.status}`);
  if (early.status === 503) assert.equal(early.headers.get('refresh'), '2');
  await early.text();

  let sandbox = created.body;
  for (let i = 0; i < 600 && sandbox.state === 'starting'; i++) {
    await new Promise((r) => setTimeout(r, 100));
    sandbox = (await api.call('GET', `/api/sandboxes/${id}`)).body;
  }
  assert.equal(sandbox.state, 'running', JSON.stringify(sandbox));

  // A file written through exec, and the DOM terminal renderer so the test can read the screen.
  const write = await api.call('POST', `/api/sandboxes/${id}/exec`, {
    cmd: 'echo "written by exec" > hello-codeyard.txt && mkdir -p ~/.local/share/code-server/User && ' +
      `printf '%s' '{"terminal.integrated.gpuAcceleration":"off","workbench.startupEditor":"none"}' > ~/.local/share/code-server/User/settings.json`,
  });
  assert.equal(write.status, 200, write.text);
  assert.equal(write.body.exitCode, 0, write.body.stderr);

  const context = await browser.newContext();
  const page = await context.newPage();
  const consoleErrors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error' || m.text().includes('No file system provider')) consoleErrors.push(m.text()); });
  // Record every WebSocket close code the workbench sees.
  await page.addInitScript(() => {
    const Native = window.WebSocket;
    (window as any).__wsCloses = [];
    (window as any).WebSocket = class extends Native {
      constructor(...args: ConstructorParameters<typeof WebSocket>) {
        super(...args);
        this.addEventListener('close', (e) => (window as any).__wsCloses.push(e.code));
      }
    };
  });

  // Not logged in: the IDE link leads to the login page, and back to the IDE after.
  await page.goto(`${gw.url}/vscode-proxy/${id}/`);
  assert.match(page.url(), /\/login\?next=/);
  await page.fill('#username', 'admin');
  await page.fill('#password', 'wrong-password');
  await page.click('button[type=submit]');
  await page.locator('#error', { hasText: 'wrong username or password' }).waitFor({ timeout: 10_000 });
  await page.fill('#password', ADMIN_PASSWORD);
  await page.click('button[type=submit]');
  await page.locator('.monaco-workbench').waitFor({ timeout: 90_000 });
  assert.match(page.url(), new RegExp(`/vscode-proxy/${id}/`));
  // The explorer lists the workspace, including the file exec wrote.
  await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'hello-codeyard.txt' }).waitFor({ timeout: 60_000 });

  // The extensions view opens (it needs the remote extension host).
  await page.keyboard.press('Control+Shift+X');
  await page.locator('.extensions-viewlet').waitFor({ timeout: 30_000 });

  // Integrated terminal: open it, type, see the output on screen and on disk.
  await runInTerminal(page, 'echo "term-$((6*7))" | tee from-terminal.txt', 'term-42');
  const onDisk = await api.call('POST', `/api/sandboxes/${id}/exec`, { cmd: 'cat from-terminal.txt' });
  assert.equal(onDisk.body.stdout.trim(), 'term-42');

  const closes: number[] = await page.evaluate(() => (window as any).__wsCloses);
  assert.ok(!closes.includes(1006), `WebSocket closed abnormally (1006): ${closes.join(',')}`);
  assert.ok(!consoleErrors.some((e) => e.includes('No file system provider found')), consoleErrors.join('\n'));
  await context.close();

  const pids = sandboxProcesses(id);
  assert.ok(pids.length >= 2, `expected the sandbox's processes to be visible, found ${pids.length}`);
  const del = await api.call('DELETE', `/api/sandboxes/${id}`);
  assert.equal(del.status, 204, del.text);
  assert.deepEqual(sandboxProcesses(id), [], 'processes survived the delete');
  assert.ok(!existsSync(`${gw.dataDir}/sandboxes/${id}`), 'sandbox files survived the delete');
  assert.equal((await api.call('GET', `/api/sandboxes/${id}`)).status, 404);
});
