// What a sandbox serves never acts with someone else's authority: a page a
// user's sandbox serves, opened by an admin through a path preview (opted in),
// gets nothing of the admin's session; cookies it sets stay under its path; no
// service worker it offers is registered; a link on another site never starts a
// stopped sandbox; CDP links are short-lived and bound to their first client.
// Real gateway, real sandboxes, real Chromium.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../helpers/browser.ts';
import { ADMIN_PASSWORD, Api, freePort, startGatewayProcess, type RunningGateway } from '../helpers/gateway-process.ts';

let gw: RunningGateway;
let admin: Api;
let mallory: Api;
let browser: Browser;
let box: string;
let port: number;

// The page mallory's sandbox serves: it tries everything a page on the portal's origin could do with a visitor's session.
const EVIL_PAGE = `<!doctype html><html><body><pre id="out">running</pre><script>
(async () => {
  const out = {};
  const attempt = async (name, fn) => { try { out[name] = await fn(); } catch (e) { out[name] = 'error: ' + e.name; } };
  await attempt('me', async () => (await fetch('/api/me', { credentials: 'include' })).status);
  await attempt('promote', async () => (await fetch('/api/users/mallory', { method: 'PATCH', credentials: 'include', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ role: 'admin' }) })).status);
  await attempt('key', async () => (await fetch('/api/keys', { method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'stolen' }) })).status);
  await attempt('cookie', async () => document.cookie);
  await attempt('storage', async () => { localStorage.setItem('x', '1'); return 'stored'; });
  await attempt('parent', async () => window.top.document.title);
  await attempt('worker', async () => (await navigator.serviceWorker.register('sw.js', { scope: '/' })).scope);
  await attempt('origin', async () => self.origin);
  document.getElementById('out').textContent = JSON.stringify(out);
})();
</script></body></html>`;

// A small server in the sandbox (its own Node): the page, a service worker, and the cookies a careless or hostile app sets.
const SERVER = (p: number) => `cat > /tmp/evil.html <<'EOF'\n${EVIL_PAGE}\nEOF
cat > /tmp/evil.mjs <<'EOF'
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
createServer((q, r) => {
  if (q.url.endsWith('sw.js')) { r.writeHead(200, { 'content-type': 'text/javascript', 'service-worker-allowed': '/' }); r.end('self.onfetch = (e) => e.respondWith(new Response("owned"));'); return; }
  if (q.url.endsWith('cookies')) { r.writeHead(200, { 'set-cookie': ['two=1; Path=/; Path=/api', '=nameless', 'dom=1; Domain=127.0.0.1; Path=/'] }); r.end('cookies'); return; }
  r.writeHead(200, { 'content-type': 'text/html', 'service-worker-allowed': '/' }); r.end(readFileSync('/tmp/evil.html'));
}).listen(${p}, '127.0.0.1');
EOF
(setsid nohup /opt/codeyard/node/bin/node /tmp/evil.mjs >/dev/null 2>&1 &); for i in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:${p}/ && break; sleep 0.1; done`;

before(async () => {
  gw = await startGatewayProcess({ config: 'routing:\n  pathPreviews: true\n' });
  admin = await Api.login(gw.url);
  assert.equal((await admin.call('POST', '/api/users', { username: 'mallory', password: 'mallory-password-1', limits: {} })).status, 201);
  mallory = await Api.login(gw.url, 'mallory', 'mallory-password-1');
  const made = await mallory.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode' });
  assert.equal(made.body?.state, 'running', made.text);
  box = made.body.sandboxID;
  port = await freePort();
  const served = await mallory.call('POST', `/api/sandboxes/${box}/exec`, { cmd: SERVER(port) });
  assert.equal(served.body?.exitCode, 0, served.text);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await gw?.destroy();
});

async function loggedInAdmin() {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${gw.url}/login`);
  await page.fill('#username', 'admin');
  await page.fill('#password', ADMIN_PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForURL((u) => u.pathname !== '/login');
  return { context, page };
}

test('an admin opens a user\'s preview page: it runs in an opaque origin and every try with the admin\'s session fails', { timeout: 120_000 }, async () => {
  const { context, page } = await loggedInAdmin();
  try {
    const preview = `${gw.url}/vscode-proxy/${box}/proxy/${port}/`;
    await page.goto(preview);
    await page.waitForFunction(() => document.getElementById('out')?.textContent !== 'running', undefined, { timeout: 20_000 });
    const out = JSON.parse((await page.textContent('#out'))!);
    // The page ran (positive evidence), in an opaque origin.
    assert.equal(out.origin, 'null', JSON.stringify(out));
    // Without the admin's session: the API answers 401 (or the request never leaves), never 200/204.
    for (const attempt of ['me', 'promote', 'key']) assert.ok(out[attempt] === 401 || out[attempt] === 403 || String(out[attempt]).startsWith('error:'), `${attempt}: ${out[attempt]}`);
    assert.match(String(out.cookie), /^error: SecurityError$/);
    assert.match(String(out.storage), /^error: SecurityError$/);
    assert.match(String(out.worker), /^error: /);
    // mallory is still a user, and no key was made for anyone.
    assert.equal((await admin.call('GET', '/api/users')).body.find((u: { username: string }) => u.username === 'mallory').role, 'user');
    assert.deepEqual((await admin.call('GET', '/api/keys')).body, []);
    assert.deepEqual((await mallory.call('GET', '/api/keys')).body, []);
    // The portal's own origin has no service worker.
    await page.goto(`${gw.url}/login`);
    assert.equal(await page.evaluate(() => navigator.serviceWorker.controller), null);
    assert.equal(await page.evaluate(async () => (await navigator.serviceWorker.getRegistrations()).length), 0);
  } finally {
    await context.close();
  }
});

test('without a base domain, an admin never opens another user\'s IDE on the portal\'s origin; its owner does', { timeout: 60_000 }, async () => {
  const asAdmin = await admin.call('GET', `/vscode-proxy/${box}/`, undefined, { accept: 'text/html' });
  assert.equal(asAdmin.status, 403);
  assert.match(asAdmin.text, /another user&#39;s: its IDE would run on this portal&#39;s origin/);
  assert.equal((await mallory.call('GET', `/vscode-proxy/${box}/`)).status, 200);
});

test('the proxy strips Service-Worker-Allowed, refuses service-worker scripts outside code-server, and confines cookies', { timeout: 60_000 }, async () => {
  const page = await mallory.call('GET', `/vscode-proxy/${box}/proxy/${port}/`);
  assert.equal(page.status, 200);
  const raw = await fetch(`${gw.url}/vscode-proxy/${box}/proxy/${port}/`, { headers: mallory.headers });
  assert.equal(raw.headers.get('service-worker-allowed'), null);
  assert.match(raw.headers.get('content-security-policy') ?? '', /sandbox allow-scripts/);
  assert.doesNotMatch(raw.headers.get('content-security-policy') ?? '', /allow-same-origin/);
  const sw = await fetch(`${gw.url}/vscode-proxy/${box}/proxy/${port}/sw.js`, { headers: { ...mallory.headers, 'service-worker': 'script' } });
  assert.equal(sw.status, 403);
  // The same file fetched as an ordinary script is served: it is the registration that is refused.
  assert.equal((await fetch(`${gw.url}/vscode-proxy/${box}/proxy/${port}/sw.js`, { headers: mallory.headers })).status, 200);
  const cookies = await fetch(`${gw.url}/vscode-proxy/${box}/proxy/${port}/cookies`, { headers: mallory.headers });
  const set = cookies.headers.getSetCookie();
  const scope = `Path=/vscode-proxy/${box}/proxy/${port}/`;
  assert.deepEqual(set, [`two=1; ${scope}`, `dom=1; ${scope}`]);

  // In a browser: the cookies land under the preview's path only, never on the portal's.
  const { context, page: tab } = await loggedInAdmin();
  try {
    await tab.goto(`${gw.url}/vscode-proxy/${box}/proxy/${port}/cookies`);
    const jar = await context.cookies();
    const fromSandbox = jar.filter((c) => ['two', 'dom', ''].includes(c.name));
    assert.equal(fromSandbox.length, 2, JSON.stringify(jar));
    for (const c of fromSandbox) assert.equal(c.path, `/vscode-proxy/${box}/proxy/${port}/`);
  } finally {
    await context.close();
  }
});

test('a link on another site to a stopped sandbox shows a button and starts nothing; the button starts it', { timeout: 180_000 }, async () => {
  const made = await admin.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', workspace: null });
  const id = made.body.sandboxID;
  assert.equal((await admin.call('POST', `/api/sandboxes/${id}/stop`)).status, 200);
  // Another site (another origin: localhost instead of 127.0.0.1, another port) sends the browser there.
  const otherPort = await freePort();
  const other: Server = createServer((_q, r) => { r.writeHead(200, { 'content-type': 'text/html' }); r.end(`<script>location = ${JSON.stringify(`${gw.url}/vscode-proxy/${id}/`)}</script>`); });
  await new Promise<void>((r) => other.listen(otherPort, '127.0.0.1', r));
  const { context, page } = await loggedInAdmin();
  try {
    await page.goto(`http://localhost:${otherPort}/`);
    await page.waitForURL((u) => u.pathname === `/vscode-proxy/${id}/`);
    await page.locator('form[data-codeyard-start] button').waitFor();
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal((await admin.call('GET', `/api/sandboxes/${id}`)).body.state, 'stopped');
    // A form on another site posting to the button's address is refused too.
    const forged = await fetch(`${gw.url}/vscode-proxy/${id}/_codeyard/start`, { method: 'POST', headers: { ...admin.headers, origin: `http://localhost:${otherPort}` }, redirect: 'manual' });
    assert.equal(forged.status, 403);
    assert.equal((await admin.call('GET', `/api/sandboxes/${id}`)).body.state, 'stopped');
    // The person presses the button: it starts, and the IDE follows.
    await page.click('form[data-codeyard-start] button');
    await page.locator('.monaco-workbench').waitFor({ timeout: 120_000 });
    assert.equal((await admin.call('GET', `/api/sandboxes/${id}`)).body.state, 'running');
  } finally {
    await context.close();
    other.close();
    await admin.call('DELETE', `/api/sandboxes/${id}`);
  }
});

test('login and logout clear what pages of the origin stored (Clear-Site-Data)', async () => {
  const login = await fetch(`${gw.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }) });
  assert.equal(login.status, 200);
  assert.equal(login.headers.get('clear-site-data'), '"cache", "storage"');
  const cookie = login.headers.getSetCookie()[0]!.split(';')[0]!;
  const logout = await fetch(`${gw.url}/api/auth/logout`, { method: 'POST', headers: { cookie, origin: gw.url } });
  assert.equal(logout.status, 204);
  assert.equal(logout.headers.get('clear-site-data'), '"cache", "storage"');
});

test('a CDP link lives a minute at most and belongs to the first client that uses it', { timeout: 120_000 }, async () => {
  const made = await mallory.call('POST', '/api/sandboxes?wait=true', { templateID: 'browser' });
  assert.equal(made.body?.state, 'running', made.text);
  const id = made.body.sandboxID;
  try {
    const link = (await mallory.call('POST', `/api/sandboxes/${id}/ide-token`)).body as { token: string; expiresAt: string };
    const lifetime = Date.parse(link.expiresAt) - Date.now();
    assert.ok(lifetime > 0 && lifetime <= 60_000, `lives ${lifetime} ms`);
    const get = (agent: string) => new Promise<number>((resolve, reject) => {
      const u = new URL(`${gw.url}/cdp-proxy/${id}/json/version?token=${link.token}`);
      request({ host: u.hostname, port: u.port, path: u.pathname + u.search, headers: { 'user-agent': agent } }, (res) => { res.resume(); resolve(res.statusCode!); }).on('error', reject).end();
    });
    assert.equal(await get('first-client/1.0'), 200);
    assert.equal(await get('first-client/1.0'), 200);
    assert.equal(await get('someone-else/2.0'), 401);
    assert.equal(await get('first-client/1.0'), 200);
  } finally {
    await mallory.call('DELETE', `/api/sandboxes/${id}`);
  }
});

// With a base domain: every IDE on a host of its own (ide-<id>.<domain>), framed by the portal from there.
const WEBVIEW_PACKAGE = '{"name":"webview","publisher":"evil","version":"0.0.1","engines":{"vscode":"^1.80.0"},"main":"./extension.js","activationEvents":["onStartupFinished"]}';
const WEBVIEW_MAIN = (portal: string) => `const vscode = require('vscode');
const fs = require('fs');
exports.activate = () => {
  const panel = vscode.window.createWebviewPanel('evil', 'Helpful panel', vscode.ViewColumn.One, { enableScripts: true });
  panel.webview.onDidReceiveMessage((m) => fs.writeFileSync('/home/coder/workspace/webview-result.json', JSON.stringify(m)));
  panel.webview.html = \`<!doctype html><html><body><script>
    const vs = acquireVsCodeApi();
    (async () => {
      const out = { origin: self.origin };
      const attempt = async (name, fn) => { try { out[name] = await fn(); } catch (e) { out[name] = 'error: ' + e.name; } };
      await attempt('me', async () => (await fetch('${portal}/api/me', { credentials: 'include' })).status);
      await attempt('promote', async () => (await fetch('${portal}/api/users/mallory', { method: 'PATCH', credentials: 'include', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ role: 'admin' }) })).status);
      await attempt('key', async () => (await fetch('${portal}/api/keys', { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ name: 'stolen' }) })).type);
      await attempt('top', async () => window.top.document.title);
      vs.postMessage(out);
    })();
  </scr\` + \`ipt></body></html>\`;
};
`;
/** Installs the extension by writing its files (base64, so no shell quoting can bite). */
const installWebviewExtension = (portal: string) => {
  const dir = '~/.local/share/code-server/extensions/evil.webview-0.0.1';
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return `mkdir -p ${dir} && echo ${b64(WEBVIEW_PACKAGE)} | base64 -d > ${dir}/package.json && echo ${b64(WEBVIEW_MAIN(portal))} | base64 -d > ${dir}/extension.js && echo installed`;
};

test('with a base domain, the portal frames an admin\'s view of a user\'s IDE from its own host; an extension webview there gets nothing of the admin', { timeout: 300_000 }, async () => {
  // *.localhost: browsers resolve it to loopback and treat it as a secure context (VS Code's webviews need one), no DNS needed.
  const domain = 'codeyard.localhost';
  const gwPort = await freePort();
  const portal = `http://${domain}:${gwPort}`;
  const dgw = await startGatewayProcess({ port: gwPort, config: `publicUrl: ${portal}\nrouting:\n  baseDomain: ${domain}\n` });
  const b = await launchChromium();
  try {
    const dadmin = await Api.login(dgw.url);
    assert.equal((await dadmin.call('POST', '/api/users', { username: 'mallory', password: 'mallory-password-1', limits: {} })).status, 201);
    const dmallory = await Api.login(dgw.url, 'mallory', 'mallory-password-1');
    const made = await dmallory.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode' });
    assert.equal(made.body?.state, 'running', made.text);
    const id = made.body.sandboxID;
    assert.equal(made.body.urls.ide, `http://ide-${id}.${domain}:${gwPort}/`);
    const installed = await dmallory.call('POST', `/api/sandboxes/${id}/exec`, { cmd: installWebviewExtension(portal) });
    assert.equal(installed.body.stdout, 'installed\n', installed.text);

    // The admin logs in to the portal and opens mallory's sandbox there.
    const context = await b.newContext();
    const page = await context.newPage();
    await page.goto(`${portal}/login`);
    await page.fill('#username', 'admin');
    await page.fill('#password', ADMIN_PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForURL((u) => u.pathname !== '/login');
    const dbg: string[] = [];
    page.on('console', (m) => dbg.push(`console ${m.type()}: ${m.text().slice(0, 300)}`));
    page.on('requestfailed', (r) => dbg.push(`failed ${r.url().slice(0, 200)} ${r.failure()?.errorText}`));
    page.on('response', (r) => { if (r.status() >= 300 && !r.url().includes('/api/sandboxes/')) dbg.push(`${r.status()} ${r.url().slice(0, 200)}`); });
    (globalThis as { __dbg?: string[] }).__dbg = dbg;
    await page.goto(`${portal}/#/s/${id}`);
    const frame = page.locator('iframe.ide');
    await frame.waitFor({ timeout: 60_000 }).catch(async (err) => {
      await page.screenshot({ path: '/tmp/portal-debug.png' });
      throw new Error(`${(err as Error).message}; status: ${JSON.stringify((await dmallory.call('GET', `/api/sandboxes/${id}/status`)).body)}`);
    });
    assert.equal(await frame.getAttribute('src'), `http://ide-${id}.${domain}:${gwPort}/`);
    await page.frameLocator('iframe.ide').locator('.monaco-workbench').waitFor({ timeout: 120_000 });

    // The extension's webview ran (its report is positive evidence) and every try failed.
    let report = '';
    for (let i = 0; i < 120 && !report; i++) {
      report = (await dmallory.call('POST', `/api/sandboxes/${id}/exec`, { cmd: 'cat webview-result.json 2>/dev/null' })).body.stdout;
      if (!report) await new Promise((r) => setTimeout(r, 500));
    }
    if (!report) {
      await page.screenshot({ path: '/tmp/webview-debug.png' });
      const diag = await dmallory.call('POST', `/api/sandboxes/${id}/exec`, { cmd: 'ls -la ~/.local/share/code-server/extensions/; cat ~/.local/share/code-server/extensions/extensions.json; ls ~/.local/share/code-server/logs/*/ 2>&1 | head; grep -ri "evil" ~/.local/share/code-server/logs 2>/dev/null | head -20' });
      throw new Error(`no webview report; ${diag.body.stdout}\n${diag.body.stderr}\n${dbg.join('\n')}`);
    }
    const out = JSON.parse(report);
    assert.notEqual(out.origin, portal, JSON.stringify(out));
    assert.match(String(out.me), /^error: TypeError$/, JSON.stringify(out));
    assert.match(String(out.promote), /^error: TypeError$/, JSON.stringify(out));
    assert.match(String(out.top), /^error: SecurityError$/, JSON.stringify(out));
    assert.equal((await dadmin.call('GET', '/api/users')).body.find((u: { username: string }) => u.username === 'mallory').role, 'user');
    assert.deepEqual((await dadmin.call('GET', '/api/keys')).body, []);
    // The admin reached mallory's IDE through an audited hand-off to its own host.
    const audit = (await dadmin.call('GET', '/api/audit?action=subdomain.handoff')).body;
    const entries = (Array.isArray(audit) ? audit : audit.entries ?? []) as { actor: string; target: string; details: Record<string, unknown> }[];
    assert.ok(entries.some((e) => e.actor === 'admin' && e.target === `ide-${id}.${domain}` && e.details?.asAdmin === true), JSON.stringify(entries));
    // The IDE is never served on the portal's origin to a browser: the path sends it to the IDE's host.
    const byPath = await fetch(`${dgw.url}/vscode-proxy/${id}/`, { headers: { ...dadmin.headers, accept: 'text/html' }, redirect: 'manual' });
    assert.equal(byPath.status, 302);
    assert.equal(byPath.headers.get('location'), `http://ide-${id}.${domain}:${gwPort}/`);
    await context.close();
  } finally {
    await b.close();
    await dgw.destroy();
  }
});
