// Browser sandboxes: real Chromium in a real (bubblewrap) sandbox, driven
// through the gateway's /cdp-proxy/ by two independent clients — Playwright's
// connectOverCDP and a raw WebSocket speaking CDP — with the page served by the
// test on 127.0.0.1 and reached through the gateway's egress proxy.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { Api, ROOT, sandboxProcesses, startGatewayProcess, tempDataDir, upgradeStatus, type RunningGateway } from '../helpers/gateway-process.ts';

let gw: RunningGateway;
let api: Api;
let key: string;
let site: Server;
let siteUrl: string;
let box: { sandboxID: string; urls: { cdp: string; cdpWebSocket: string } };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  const dataDir = tempDataDir();
  gw = await startGatewayProcess({ dataDir, config: 'supervisor:\n  backoffSeconds: [0.5]\n  checkIntervalMs: 200\n' });
  api = await Api.login(gw.url);
  key = (await api.call('POST', '/api/keys', { name: 'cdp' })).body.key;
  site = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><title>Page ${req.url}</title><body style="background:#123456"><h1>served by the test</h1></body>`);
  });
  await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
  siteUrl = `http://127.0.0.1:${(site.address() as { port: number }).port}`;
  const r = await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'browser' });
  assert.equal(r.body.state, 'running', r.text);
  box = r.body;
});

after(async () => {
  site?.close();
  await gw?.destroy();
});

test('the record names the CDP endpoints on the gateway; limits apply; the workspace is throwaway', async () => {
  const port = new URL(gw.url).port;
  assert.equal(box.urls.cdp, `http://127.0.0.1:${port}/cdp-proxy/${box.sandboxID}/`);
  assert.equal(box.urls.cdpWebSocket, `ws://127.0.0.1:${port}/cdp-proxy/${box.sandboxID}/devtools/browser`);
  const record = (await api.call('GET', `/api/sandboxes/${box.sandboxID}`)).body;
  assert.equal(record.limits, 'enforced');
  assert.equal(record.workspace, null);
});

test('every URL in every /json answer points at the gateway, none inside the sandbox', async () => {
  const gatewayHost = new URL(gw.url).host;
  for (const path of ['json/version', 'json', 'json/list']) {
    const r = await fetch(`${box.urls.cdp}${path}`, { headers: { 'x-api-key': key } });
    assert.equal(r.status, 200, path);
    const text = await r.text();
    const urls = [...text.matchAll(/(wss?|https?):\/\/[^"\s]+|[?&]wss?=[^"&\s]+/g)].map((m) => m[0]);
    assert.ok(urls.length > 0, `${path} names URLs`);
    for (const u of urls.filter((x) => /devtools\//.test(x))) {
      assert.ok(u.includes(`${gatewayHost}/cdp-proxy/${box.sandboxID}/devtools/`), `${path}: ${u}`);
    }
    assert.doesNotMatch(text, /:9222/, `${path} leaks the internal listener`);
  }
});

test('playwright-core connectOverCDP through the gateway: a page served on 127.0.0.1, its title, a screenshot', { timeout: 60_000 }, async () => {
  const browser = await chromium.connectOverCDP(box.urls.cdp, { headers: { 'x-api-key': key } });
  const context = browser.contexts()[0]!;
  const page = await context.newPage();
  await page.goto(`${siteUrl}/playwright`);
  assert.equal(await page.title(), 'Page /playwright');
  const png = await page.screenshot();
  assert.deepEqual([...png.subarray(1, 4)], [...Buffer.from('PNG')]);
  await page.close();
  // Disconnecting the last client leaves the browser running.
  await browser.close();
  await sleep(500);
  const version = await fetch(`${box.urls.cdp}json/version`, { headers: { 'x-api-key': key } });
  assert.equal(version.status, 200);
  assert.equal((await api.call('GET', `/api/sandboxes/${box.sandboxID}`)).body.state, 'running');
});

/** A minimal CDP client over the platform WebSocket (no headers: the token rides in the URL). */
async function rawCdp(url: string) {
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => { ws.onopen = () => resolve(); ws.onerror = () => reject(new Error(`WebSocket to ${url.replace(/token=[^&]+/, 'token=…')} failed`)); });
  let nextId = 0;
  const pending = new Map<number, (m: { result?: Record<string, unknown>; error?: { message: string } }) => void>();
  ws.onmessage = (e) => {
    const m = JSON.parse(String(e.data));
    if (m.id !== undefined) pending.get(m.id)?.(m);
  };
  const send = (method: string, params: Record<string, unknown> = {}, sessionId?: string) => new Promise<Record<string, unknown>>((resolve, reject) => {
    const id = ++nextId;
    pending.set(id, (m) => (m.error ? reject(new Error(`${method}: ${m.error.message}`)) : resolve(m.result ?? {})));
    ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
  });
  return { send, close: () => ws.close() };
}

test('a raw WebSocket client: Target.createTarget, Page.navigate, Runtime.evaluate, Page.captureScreenshot', { timeout: 60_000 }, async () => {
  const token = (await api.call('POST', `/api/sandboxes/${box.sandboxID}/ide-token`)).body.token;
  const cdp = await rawCdp(`${box.urls.cdpWebSocket}?token=${token}`);
  const { targetId } = await cdp.send('Target.createTarget', { url: 'about:blank' }) as { targetId: string };
  const { sessionId } = await cdp.send('Target.attachToTarget', { targetId, flatten: true }) as { sessionId: string };
  await cdp.send('Page.enable', {}, sessionId);
  await cdp.send('Page.navigate', { url: `${siteUrl}/raw` }, sessionId);
  let title = '';
  for (let i = 0; i < 50 && title !== 'Page /raw'; i++) {
    title = ((await cdp.send('Runtime.evaluate', { expression: 'document.title', returnByValue: true }, sessionId)).result as { value: string }).value;
    if (title !== 'Page /raw') await sleep(100);
  }
  assert.equal(title, 'Page /raw');
  const shot = await cdp.send('Page.captureScreenshot', { format: 'png' }, sessionId) as { data: string };
  const png = Buffer.from(shot.data, 'base64');
  assert.equal(png.subarray(1, 4).toString(), 'PNG');
  // The page's dark blue background is in the picture: IHDR says its size, and it is not tiny.
  assert.ok(png.readUInt32BE(16) > 100 && png.readUInt32BE(20) > 100);
  await cdp.send('Target.closeTarget', { targetId });
  cdp.close();
});

test('without credentials or with another user\'s: 401 / 403 on HTTP and on the WebSocket upgrade', async () => {
  const base = box.urls.cdp;
  assert.equal((await fetch(`${base}json/version`)).status, 401);
  const ws = box.urls.cdpWebSocket.replace('ws://', 'http://');
  assert.equal(await upgradeStatus(ws), 401);
  assert.equal((await api.call('POST', '/api/users', { username: 'mallory', password: 'mallory-password-1' })).status, 201);
  const mallory = await Api.login(gw.url, 'mallory', 'mallory-password-1');
  const malloryKey = (await mallory.call('POST', '/api/keys', { name: 'm' })).body.key;
  assert.equal((await fetch(`${base}json/version`, { headers: { 'x-api-key': malloryKey } })).status, 403);
  assert.equal(await upgradeStatus(ws, { 'x-api-key': malloryKey }), 403);
  assert.equal((await fetch(`${gw.url}/cdp-proxy/not-a-sandbox/json`, { headers: { 'x-api-key': key } })).status, 404);
});

test('ten pages opened and closed by two clients at once: no leaked targets, no proxy errors', { timeout: 120_000 }, async () => {
  const pagesBefore = (await (await fetch(`${box.urls.cdp}json/list`, { headers: { 'x-api-key': key } })).json() as { type: string }[]).filter((t) => t.type === 'page').length;
  const client = async (name: string) => {
    const browser = await chromium.connectOverCDP(box.urls.cdp, { headers: { 'x-api-key': key } });
    const context = browser.contexts()[0]!;
    for (let i = 0; i < 10; i++) {
      const page = await context.newPage();
      await page.goto(`${siteUrl}/${name}-${i}`);
      assert.equal(await page.title(), `Page /${name}-${i}`);
      await page.close();
    }
    await browser.close();
  };
  await Promise.all([client('a'), client('b')]);
  await sleep(300);
  const pagesAfter = (await (await fetch(`${box.urls.cdp}json/list`, { headers: { 'x-api-key': key } })).json() as { type: string }[]).filter((t) => t.type === 'page').length;
  assert.equal(pagesAfter, pagesBefore, 'no leaked targets');
  assert.doesNotMatch(gw.output(), /proxy failure/);
});

test('a Chromium crash is classified by the supervisor and the browser comes back', { timeout: 90_000 }, async () => {
  const kill = await api.call('POST', `/api/sandboxes/${box.sandboxID}/exec`, { cmd: 'pkill -KILL -o -f /usr/lib/chromium/chromium; echo sent' });
  assert.equal(kill.body.stdout, 'sent\n', kill.text);
  let s = (await api.call('GET', `/api/sandboxes/${box.sandboxID}/status`)).body;
  for (let i = 0; i < 300 && !(s.restarts >= 1 && s.state === 'running'); i++) {
    await sleep(100);
    s = (await api.call('GET', `/api/sandboxes/${box.sandboxID}/status`)).body;
  }
  assert.equal(s.state, 'running');
  assert.ok(['signal', 'nonzero_exit'].includes(s.lastCrash.classification), JSON.stringify(s.lastCrash));
  const version = await fetch(`${box.urls.cdp}json/version`, { headers: { 'x-api-key': key } });
  assert.equal(version.status, 200);
});

test('examples/browser-sandbox.ts runs against the gateway and cleans up after itself', { timeout: 120_000 }, async () => {
  const shot = join(mkdtempSync(join(tmpdir(), 'cy-example-')), 'shot.png');
  const r = await promisify(execFile)(process.execPath, [join(ROOT, 'examples/browser-sandbox.ts'), shot], {
    env: { ...process.env, CODEYARD_URL: gw.url, CODEYARD_API_KEY: key }, timeout: 100_000,
  });
  assert.match(r.stdout, /title: Hello from the example/);
  assert.ok(existsSync(shot) && readFileSync(shot).subarray(1, 4).toString() === 'PNG');
  const id = /sandbox (\w{20}):/.exec(r.stdout)![1]!;
  assert.equal((await api.call('GET', `/api/sandboxes/${id}`)).status, 404, 'the example deleted its sandbox');
  assert.deepEqual(sandboxProcesses(id), []);
});

test('mistakes get clear answers: the wrong proxy for the template, an oversized /json body; the share link is the CDP WebSocket', async () => {
  const wrong = await fetch(`${gw.url}/vscode-proxy/${box.sandboxID}/`, { headers: { 'x-api-key': key } });
  assert.equal(wrong.status, 404);
  assert.match((await wrong.json()).message, new RegExp(`runs template browser, which has no IDE: use /cdp-proxy/${box.sandboxID}/`));
  const big = await fetch(`${box.urls.cdp}json/new?about:blank`, { method: 'PUT', headers: { 'x-api-key': key }, body: Buffer.alloc(2 * 1024 * 1024) }).catch((err: Error) => err);
  if (!(big instanceof Error)) assert.equal(big.status, 413);
  assert.equal((await fetch(`${box.urls.cdp}json/version`, { headers: { 'x-api-key': key } })).status, 200, 'the gateway and the browser carry on');
  const link = (await api.call('POST', `/api/sandboxes/${box.sandboxID}/ide-token`)).body.url as string;
  assert.ok(link.startsWith(`${box.urls.cdpWebSocket}?token=`), link);
});

test('browser sandboxes one after another on one persistent workspace: no stale profile lock', { timeout: 90_000 }, async () => {
  for (let i = 0; i < 2; i++) {
    const r = await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'browser', workspace: 'shared-profile' });
    assert.equal(r.body.state, 'running', r.text);
    assert.equal((await api.call('DELETE', `/api/sandboxes/${r.body.sandboxID}`)).status, 204);
  }
});

test('a browser sandbox past its timeout is deleted', { timeout: 60_000 }, async () => {
  const short = (await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'browser', timeout: 2 })).body.sandboxID;
  let status = 200;
  for (let i = 0; i < 100 && status !== 404; i++) {
    await sleep(200);
    status = (await api.call('GET', `/api/sandboxes/${short}`)).status;
  }
  assert.equal(status, 404);
  assert.deepEqual(sandboxProcesses(short), []);
});
