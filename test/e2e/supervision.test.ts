// Supervision against the real gateway and real code-server in bubblewrap:
// crashes come back by themselves, are classified, back off, and give up;
// a killed gateway adopts what still runs and stops what nobody owns.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DOM_TERMINAL_SETTINGS, launchChromium, openIde, runInTerminal } from '../helpers/browser.ts';
import { ADMIN_PASSWORD, Api, sandboxProcesses, startGatewayProcess, tempDataDir, type RunningGateway } from '../helpers/gateway-process.ts';

let gw: RunningGateway;
let api: Api;
let dataDir: string;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CONFIG = 'supervisor:\n  backoffSeconds: [0.2, 0.4, 0.8]\n  maxFailures: 3\n  checkIntervalMs: 100\n  healthIntervalSeconds: 1\n';

before(async () => {
  dataDir = tempDataDir();
  gw = await startGatewayProcess({ dataDir, config: CONFIG });
  api = await Api.login(gw.url);
});

after(async () => {
  await gw?.destroy();
});

async function waitFor<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await get();
  while (!ok(last)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last).slice(0, 800)}`);
    await sleep(100);
    last = await get();
  }
  return last;
}

const status = async (id: string) => (await api.call('GET', `/api/sandboxes/${id}/status`)).body;

test('code-server killed with SIGKILL comes back by itself; the crash record says signal; the open tab works again', { timeout: 240_000 }, async (t) => {
  const id = (await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode' })).body.sandboxID;
  await api.call('POST', `/api/sandboxes/${id}/exec`, {
    cmd: `echo survives > kept.txt && ${DOM_TERMINAL_SETTINGS}`,
  });
  const browser = await launchChromium();
  t.after(() => browser.close());
  const page = await openIde(browser, gw.url, id, 'admin', ADMIN_PASSWORD);
  await runInTerminal(page, 'echo before-$((40+2))', 'before-42');
  const before = await status(id);
  assert.equal(before.state, 'running');
  assert.ok(before.pid > 0 && before.uptimeSeconds >= 0);
  assert.ok(before.usage.memoryBytes > 10_000_000, JSON.stringify(before.usage));

  // The oldest node process running code-server's entry point is the main one.
  const kill = await api.call('POST', `/api/sandboxes/${id}/exec`, { cmd: "kill -KILL $(pgrep -o -f '^/opt/codeyard/node/bin/node /opt/codeyard/code-server') && echo sent" });
  assert.equal(kill.body.exitCode, 0, kill.text);
  const crashed = await waitFor('a crash record', () => status(id), (s) => s.restarts >= 1);
  assert.equal(crashed.lastCrash.classification, 'signal');
  assert.equal(crashed.lastCrash.signal, 'SIGKILL');
  assert.ok(crashed.lastCrash.uptimeSeconds >= 0);
  const back = await waitFor('running again', () => status(id), (s) => s.state === 'running');
  assert.notEqual(back.pid, before.pid);
  assert.equal((await api.call('POST', `/api/sandboxes/${id}/exec`, { cmd: 'cat kept.txt' })).body.stdout, 'survives\n');

  // The tab that was open: VS Code's client cannot resume a session the dead
  // server held in memory, so it offers "Reload Window"; one click and the
  // same tab is the working workbench again, on the same files.
  const offer = page.locator('.monaco-dialog-box', { hasText: /reload the window/i });
  await offer.waitFor({ timeout: 60_000 });
  await offer.locator('.monaco-button', { hasText: 'Reload Window' }).click();
  await page.locator('.monaco-workbench').waitFor({ timeout: 90_000 });
  await runInTerminal(page, 'cat kept.txt && echo after-$((40+2))', 'after-42');
  assert.match(page.url(), new RegExp(`/vscode-proxy/${id}/`));
  await browser.close();
  const logs = await api.call('GET', `/api/sandboxes/${id}/logs?tail=5`);
  assert.equal(logs.status, 200);
  assert.ok(logs.text.trim().split('\n').length <= 5);
  assert.match(logs.text, /\S/);
  await api.call('DELETE', `/api/sandboxes/${id}`);
});

test('a main process that cannot find a module is classified missing_dependency, backs off, and ends in error', { timeout: 120_000 }, async () => {
  const t0 = Date.now();
  const id = (await api.call('POST', '/api/sandboxes', { templateID: 'vscode', envVars: { NODE_OPTIONS: '--require /home/coder/workspace/missing-preload.js' } })).body.sandboxID;
  const failed = await waitFor('error after the limit', () => api.call('GET', `/api/sandboxes/${id}`).then((r) => r.body), (s) => s.state === 'error', 60_000);
  assert.ok(Date.now() - t0 >= 600, `gave up after ${Date.now() - t0} ms: no back-off`);
  assert.match(failed.error, /failed 3 times in a row \(missing_dependency\)/);
  const s = await status(id);
  assert.equal(s.lastCrash.classification, 'missing_dependency');
  assert.match(s.lastCrash.logTail, /Cannot find module/);
  assert.equal(s.restarts, 2);
  // A browser opening it is told why it failed; it is not restarted behind the user's back (a refreshing page would loop).
  const page = await api.call('GET', `/vscode-proxy/${id}/`, undefined, { accept: 'text/html' });
  assert.equal(page.status, 502);
  assert.match(page.text, /failed: .*missing_dependency/);
  await sleep(1500);
  assert.equal((await status(id)).state, 'error');
  assert.equal((await status(id)).restarts, 2);
  await api.call('DELETE', `/api/sandboxes/${id}`);
});

test('a main process killed by the memory limit is classified oom', { timeout: 120_000 }, async () => {
  // The preload is missing at first (one missing_dependency crash); once it exists the next restart allocates past memoryMB.
  const id = (await api.call('POST', '/api/sandboxes', { templateID: 'vscode', memoryMB: 256, workspace: null, envVars: { NODE_OPTIONS: '--require /home/coder/workspace/hog.js' } })).body.sandboxID;
  writeFileSync(join(gw.dataDir, 'sandboxes', id, 'workspace', 'hog.js'), 'const keep = []; for (let i = 0; i < 64; i++) keep.push(Buffer.alloc(32 << 20, 1));\n', { mode: 0o644 });
  const s = await waitFor('an oom crash', () => status(id), (x) => x.lastCrash?.classification === 'oom', 60_000);
  assert.equal(s.lastCrash.signal, 'SIGKILL');
  await api.call('DELETE', `/api/sandboxes/${id}`);
});

test('a gateway killed with SIGKILL: running sandboxes are adopted (same PIDs, files, URLs), the open tab reconnects, orphans are stopped', { timeout: 240_000 }, async (t) => {
  const [a, b, orphan] = await Promise.all([1, 2, 3].map(async () => (await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode' })).body.sandboxID));
  await api.call('POST', `/api/sandboxes/${a}/exec`, { cmd: `echo a-data > a.txt && ${DOM_TERMINAL_SETTINGS}` });
  const pids = { a: (await status(a!)).pid, b: (await status(b!)).pid };
  const browser = await launchChromium();
  t.after(() => browser.close());
  const page = await openIde(browser, gw.url, a!, 'admin', ADMIN_PASSWORD);
  await runInTerminal(page, 'echo pre-$((1+1))', 'pre-2');
  gw.process.kill('SIGKILL');
  await new Promise((r) => gw.process.once('exit', r));
  // While the gateway is down, the third sandbox's record disappears: its processes are now nobody's.
  const db = new Database(join(dataDir, 'codeyard.db'));
  db.prepare('DELETE FROM sandboxes WHERE id = ?').run(orphan);
  db.close();
  assert.ok(sandboxProcesses(orphan!).length > 0);

  // Same port: the open tab's URL is the gateway's address.
  gw = await startGatewayProcess({ dataDir, port: Number(new URL(gw.url).port) });
  api = await Api.login(gw.url);
  // The tab was never reloaded: VS Code reconnects its WebSockets to the same
  // code-server, and the same terminal answers. (Keys typed mid-reconnect may
  // be dropped, so each try has its own marker.)
  let reconnected = false;
  for (let attempt = 0; attempt < 8 && !reconnected; attempt++) {
    await page.locator('.terminal-wrapper .xterm').first().click().catch(() => {});
    await page.keyboard.type(`echo post-$((${attempt}+100))\n`);
    reconnected = await page.locator('.xterm-rows', { hasText: `post-${attempt + 100}` }).first().waitFor({ timeout: 8_000 }).then(() => true, () => false);
  }
  assert.ok(reconnected, 'the open tab\'s terminal answers after the gateway restart');
  assert.equal(await page.locator('.monaco-dialog-box', { hasText: /reload the window/i }).count(), 0, 'no reload asked for');
  await browser.close();
  for (const [id, pid] of [[a!, pids.a], [b!, pids.b]] as const) {
    const s = await status(id);
    assert.equal(s.state, 'running');
    assert.equal(s.pid, pid, 'adopted, not restarted');
    const page = await api.call('GET', `/vscode-proxy/${id}/`, undefined, { accept: 'text/html' });
    assert.ok(page.status === 200 || page.status === 302, `${id}: ${page.status}`);
  }
  assert.equal((await api.call('POST', `/api/sandboxes/${a}/exec`, { cmd: 'cat a.txt' })).body.stdout, 'a-data\n');
  await waitFor('the orphan stopped', async () => sandboxProcesses(orphan!), (p) => p.length === 0, 10_000);
  assert.ok(readFileSync(join(dataDir, 'sandboxes', orphan!, 'main.log'), 'utf8').length > 0, "the orphan's files are left for the operator");
});
