// The production front door, end to end: real nginx (Debian's) with the config
// `codeyard nginx-config` prints and a self-signed wildcard certificate, then the
// gateway's own TLS with no nginx; real code-server, real Chromium resolving the
// test domain to 127.0.0.1. dan opens https://dan.<domain>/, uses the workbench,
// starts a dev server and opens its port's own subdomain; alice and strangers
// are refused. Forwarded headers count only from the trusted proxy.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { Api, ADMIN_PASSWORD, ROOT, freePort, startGatewayProcess, type RunningGateway } from '../helpers/gateway-process.ts';
import { DOM_TERMINAL_SETTINGS, launchChromium, typeInTerminal } from '../helpers/browser.ts';
import { makeSelfSigned } from '../../src/front-door/self-signed.ts';

const DOMAIN = 'cy.test';
const DAN_PW = 'dan-front-door-pw';
const ALICE_PW = 'alice-front-door-pw';

let tmp: string;
let tls: { cert: string; key: string };
let browser: Browser;

before(async () => {
  tmp = mkdtempSync('/tmp/cy-front-');
  chmodSync(tmp, 0o755); // nginx's workers (www-data) reach the gateway's socket below it
  tls = makeSelfSigned(DOMAIN, join(tmp, 'tls'));
  browser = await launchChromium([`--host-resolver-rules=MAP ${DOMAIN} 127.0.0.1,MAP *.${DOMAIN} 127.0.0.1`]);
});

after(async () => {
  await browser?.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** A plain request with its own Host header and source address (Node's fetch can set neither). */
function raw(url: string, o: { host?: string; headers?: Record<string, string>; localAddress?: string; method?: string; body?: string } = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const u = new URL(url);
  const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send({
      host: u.hostname, port: u.port, path: u.pathname + u.search, method: o.method ?? 'GET', localAddress: o.localAddress,
      servername: o.host?.split(':')[0], rejectUnauthorized: false,
      headers: { ...(o.host ? { host: o.host } : {}), ...(o.body ? { 'content-type': 'application/json' } : {}), ...o.headers },
    }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

async function addUsers(gw: RunningGateway): Promise<Api> {
  const admin = await Api.login(gw.url);
  for (const [username, password] of [['dan', DAN_PW], ['alice', ALICE_PW]]) {
    const r = await admin.call('POST', '/api/users', { username, password });
    assert.equal(r.status, 201, r.text);
  }
  return admin;
}

/** Opens `url`, logging in on the base domain when the hand-off asks for it. */
async function openAs(context: BrowserContext, url: string, username: string, password: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(url);
  if (new URL(page.url()).pathname === '/login') {
    await page.fill('#username', username);
    await page.fill('#password', password);
    await page.click('button[type=submit]');
    await page.waitForURL((u) => u.pathname !== '/login', { timeout: 30_000 });
  }
  // A workspace with nothing running shows a button (a GET never starts anything): press it, as a person would.
  const start = page.locator('form[data-codeyard-start] button');
  if (await start.count() > 0) await start.click();
  return page;
}

/** dan's workbench at the root of its own origin, then a dev server's port on its own subdomain; alice and strangers refused. */
async function frontDoorFlow(o: { gw: RunningGateway; publicUrl: string; viaTerminal: boolean }): Promise<void> {
  const port = new URL(o.publicUrl).port;
  const at = (label: string) => `https://${label}.${DOMAIN}:${port}`;
  const dan = await Api.login(o.gw.url, 'dan', DAN_PW);
  if (o.viaTerminal) {
    // Made beforehand so the terminal can be set to draw as text; the subdomain finds it running.
    const made = await dan.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode' });
    assert.equal(made.body?.state, 'running', made.text);
    await dan.call('POST', `/api/sandboxes/${made.body.sandboxID}/exec`, { cmd: `${DOM_TERMINAL_SETTINGS} && echo hi > hello.txt` });
  }

  const danContext = await browser.newContext({ ignoreHTTPSErrors: true });
  const ide = await openAs(danContext, `${at('dan')}/`, 'dan', DAN_PW);
  // VS Code at the root of dan's own origin (started by the button when nothing was running).
  await ide.locator('.monaco-workbench').waitFor({ timeout: 120_000 });
  assert.equal(new URL(ide.url()).host, `dan.${DOMAIN}:${port}`);
  assert.equal(new URL(ide.url()).pathname, '/');
  const cookies = await danContext.cookies();
  // __Host- names: browsers refuse them unless Secure, Path=/ and host-only, so no sibling subdomain can plant one.
  const sub = cookies.find((c) => c.name === '__Host-codeyard_sub');
  assert.equal(sub?.domain, `dan.${DOMAIN}`, 'the subdomain cookie is host-only');
  assert.ok(cookies.some((c) => c.name === '__Host-codeyard_session' && c.domain === DOMAIN), 'the base session cookie is __Host- too');
  assert.equal(sub?.secure, true);
  assert.ok(!cookies.some((c) => c.domain === `.${DOMAIN}`), 'nothing is set on the parent domain');

  const sandboxes = (await dan.call('GET', '/api/sandboxes')).body as { sandboxID: string; workspace: { name: string } | null }[];
  assert.equal(sandboxes.length, 1, 'one sandbox, on dan\'s default workspace');
  const id = sandboxes[0]!.sandboxID;
  const record = (await dan.call('GET', `/api/sandboxes/${id}`)).body;
  assert.equal(record.urls.workspace, `${at('dan')}/`);
  assert.equal(record.urls.preview, `${at(`{port}-${id}`)}/`);
  // code-server's Ports view offers the same address (its --proxy-domain, and VSCODE_PROXY_URI for the user's tools).
  const env = await dan.call('POST', `/api/sandboxes/${id}/exec`, { cmd: 'echo "$VSCODE_PROXY_URI"; cat /proc/*/cmdline 2>/dev/null | tr "\\0" " " | grep -o -- "--proxy-domain [^ ]*" | head -1' });
  assert.equal(env.body?.stdout, `https://{{port}}-${id}.${DOMAIN}:${port}/\n--proxy-domain {{port}}-${id}.${DOMAIN}\n`, env.text);
  const devPort = await freePort();
  if (o.viaTerminal) {
    await ide.locator('.explorer-folders-view', { hasText: 'hello.txt' }).waitFor({ timeout: 60_000 });
    await typeInTerminal(ide, ide, `python3 -m http.server ${devPort} --bind 127.0.0.1`);
    await ide.locator('.xterm-rows', { hasText: `port ${devPort}` }).first().waitFor({ timeout: 30_000 });
  } else {
    const r = await dan.call('POST', `/api/sandboxes/${id}/exec`, { cmd: `echo preview > index.txt; setsid nohup python3 -m http.server ${devPort} --bind 127.0.0.1 >/dev/null 2>&1 & sleep 1` });
    assert.equal(r.body?.exitCode, 0, r.text);
  }

  // The dev server on its own origin, for dan.
  const preview = await danContext.newPage();
  await preview.goto(`${at(`${devPort}-${id}`)}/`);
  assert.match(await preview.content(), /Directory listing/);
  assert.equal(new URL(preview.url()).host, `${devPort}-${id}.${DOMAIN}:${port}`);

  // alice, logged in as herself, gets neither dan's workspace nor his port.
  const aliceContext = await browser.newContext({ ignoreHTTPSErrors: true });
  const alicePreview = await openAs(aliceContext, `${at(`${devPort}-${id}`)}/`, 'alice', ALICE_PW);
  assert.match(await alicePreview.locator('body').innerText(), /not yours|owner only/);
  assert.doesNotMatch(await alicePreview.content(), /Directory listing/);
  const aliceIde = await aliceContext.newPage();
  const refused = await aliceIde.goto(`${at('dan')}/`);
  assert.equal(refused?.status(), 403);
  assert.match(await aliceIde.locator('body').innerText(), /dan's workspace and you are signed in as alice/);
  // Her own address works the same way for her (a workspace of her own, started on demand).
  assert.equal((await aliceContext.cookies()).filter((c) => c.name === '__Host-codeyard_sub').length, 0, 'alice got no cookie for dan\'s hosts');

  // Strangers: browsers are sent to log in, programs get 401; neither sees the page.
  const anonHtml = await raw(`${o.publicUrl.replace(DOMAIN, '127.0.0.1')}/`, { host: `${devPort}-${id}.${DOMAIN}:${port}`, headers: { accept: 'text/html' } });
  assert.equal(anonHtml.status, 302);
  assert.match(String(anonHtml.headers.location), new RegExp(`^https://${DOMAIN.replace('.', '\\.')}:${port}/auth/handoff\\?host=`));
  const anonJson = await raw(`${o.publicUrl.replace(DOMAIN, '127.0.0.1')}/`, { host: `${devPort}-${id}.${DOMAIN}:${port}` });
  assert.equal(anonJson.status, 401);
  // A forged cookie from dan's IDE host does not open his port host (cookies are per host, sessions too).
  const danSub = sub!.value;
  const crossHost = await raw(`${o.publicUrl.replace(DOMAIN, '127.0.0.1')}/`, { host: `${devPort}-${id}.${DOMAIN}:${port}`, headers: { cookie: `__Host-codeyard_sub=${danSub}` } });
  assert.equal(crossHost.status, 401);
  // An unknown subdomain is a 404 page.
  const unknown = await raw(`${o.publicUrl.replace(DOMAIN, '127.0.0.1')}/`, { host: `a.b.${DOMAIN}:${port}`, headers: { accept: 'text/html' } });
  assert.equal(unknown.status, 404);

  // Login CSRF: a sign-in link alice's browser started does not sign dan's browser in as alice.
  const alice = await Api.login(o.gw.url, 'alice', ALICE_PW);
  const aliceLink = await raw(`${o.gw.url}/auth/handoff?host=alice.${DOMAIN}&next=%2F&state=${'A'.repeat(43)}`, { host: `${DOMAIN}:${port}`, headers: { cookie: alice.headers.cookie!, accept: 'text/html' } });
  assert.equal(aliceLink.status, 302, aliceLink.body);
  const planted = await danContext.newPage();
  const plantedAnswer = await planted.goto(String(aliceLink.headers.location));
  assert.equal(plantedAnswer?.status(), 403);
  assert.match(await planted.locator('body').innerText(), /started in another browser/);

  // Logging out on the base domain ends the subdomain sessions it handed over.
  const portal = await danContext.newPage();
  await portal.goto(`${o.publicUrl}/login`);
  assert.equal(await portal.evaluate(async () => (await fetch('/api/auth/logout', { method: 'POST' })).status), 204);
  const afterLogout = await raw(`${o.publicUrl.replace(DOMAIN, '127.0.0.1')}/`, { host: `dan.${DOMAIN}:${port}`, headers: { cookie: `__Host-codeyard_sub=${danSub}` } });
  assert.equal(afterLogout.status, 401);

  await danContext.close();
  await aliceContext.close();
  await dan.call('DELETE', `/api/sandboxes/${id}`);
}

test('behind real nginx (generated config, wildcard certificate): subdomains, port previews, refusals, trusted forwarding', { timeout: 420_000 }, async () => {
  const nginxPort = await freePort();
  const gwPort = await freePort();
  const publicUrl = `https://${DOMAIN}:${nginxPort}`;
  // nginx reaches the gateway on its unix socket, the one peer whose X-Forwarded-* are believed: no
  // trustProxy, so nothing on the loopback (where local sandboxes live too) can pass for a proxy.
  const socket = join(tmp, 'run', 'gateway.sock');
  const gw = await startGatewayProcess({
    port: gwPort,
    config: `publicUrl: ${publicUrl}\nsocket: ${socket}\nsocketGroup: www-data\nrouting:\n  baseDomain: ${DOMAIN}\nmetrics:\n  token: metrics-token-nginx-0123\n`,
  });
  const nginxDir = join(tmp, 'nginx');
  let nginx: ChildProcess | undefined;
  try {
    await addUsers(gw);
    const generated = spawnSync(process.execPath, [join(ROOT, 'src/cli/main.ts'), 'nginx-config', '--domain', DOMAIN, '--upstream', `unix:${socket}`,
      '--listen', `127.0.0.1:${nginxPort}`, '--http-listen', 'off', '--cert', tls.cert, '--key', tls.key], { encoding: 'utf8' });
    assert.equal(generated.status, 0, generated.stderr);
    spawnSync('mkdir', ['-p', nginxDir]);
    writeFileSync(join(nginxDir, 'codeyard.conf'), generated.stdout);
    writeFileSync(join(nginxDir, 'nginx.conf'), `daemon off;\nuser www-data;\npid ${nginxDir}/nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n  access_log off;\n  client_body_temp_path ${nginxDir}/body;\n  proxy_temp_path ${nginxDir}/proxy;\n  include ${nginxDir}/codeyard.conf;\n}\n`);
    const check = spawnSync('nginx', ['-t', '-p', nginxDir, '-c', join(nginxDir, 'nginx.conf')], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stderr);
    nginx = spawn('nginx', ['-p', nginxDir, '-c', join(nginxDir, 'nginx.conf')], { stdio: ['ignore', 'inherit', 'inherit'] });
    for (let i = 0; i < 50; i++) {
      if (await raw(`https://127.0.0.1:${nginxPort}/healthz`, { host: `${DOMAIN}:${nginxPort}` }).then((r) => r.status === 200, () => false)) break;
      await new Promise((r) => setTimeout(r, 100));
    }

    await frontDoorFlow({ gw, publicUrl, viaTerminal: true });

    // Forwarded headers: believed from nginx (on the unix socket), ignored from anyone else.
    const viaNginx = await raw(`https://127.0.0.1:${nginxPort}/api/auth/login`, {
      host: `${DOMAIN}:${nginxPort}`, localAddress: '127.0.0.3', method: 'POST', body: JSON.stringify({ username: 'nobody', password: 'wrong-password' }),
      headers: { 'x-forwarded-for': '203.0.113.7', origin: publicUrl },
    });
    assert.equal(viaNginx.status, 401, viaNginx.body);
    const direct = await raw(`http://127.0.0.1:${gwPort}/api/auth/login`, {
      localAddress: '127.0.0.2', method: 'POST', body: JSON.stringify({ username: 'nobody2', password: 'wrong-password' }),
      headers: { 'x-forwarded-for': '198.51.100.9', host: `${DOMAIN}:${nginxPort}`, origin: publicUrl },
    });
    assert.equal(direct.status, 401, direct.body);
    const admin = await Api.login(gw.url, 'admin', ADMIN_PASSWORD);
    const audit = (await admin.call('GET', '/api/audit?action=auth.login')).body as { target: string; ip: string }[];
    assert.equal(audit.find((e) => e.target === 'nobody')?.ip, '127.0.0.3', 'the client nginx saw, not the header it was sent');
    assert.equal(audit.find((e) => e.target === 'nobody2')?.ip, '127.0.0.2', 'a spoofed X-Forwarded-For from an untrusted peer is ignored');

    // Health and metrics through the front door.
    assert.equal((await raw(`https://127.0.0.1:${nginxPort}/readyz`, { host: `${DOMAIN}:${nginxPort}` })).status, 200);
    // Local sandboxes share the loopback: without the token, not even loopback gets metrics.
    assert.equal((await raw(`http://127.0.0.1:${gwPort}/metrics`)).status, 401);
    const metrics = await raw(`https://127.0.0.1:${nginxPort}/metrics`, { host: `${DOMAIN}:${nginxPort}`, headers: { authorization: 'Bearer metrics-token-nginx-0123' } });
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /codeyard_http_requests_total\{area="subdomain",code="200"\} \d+/);
    assert.match(metrics.body, /codeyard_sandbox_start_seconds_count \d+/);
    assert.match(metrics.body, /codeyard_proxy_bytes_total\{sandbox="[a-z0-9]{20}",direction="out"\} \d+/);

    // A name the gateway does not serve (DNS rebinding, a misrouted request): 421, nothing else.
    assert.equal((await raw(`http://127.0.0.1:${gwPort}/healthz`, { host: 'rebound.example' })).status, 421);
    // SIGHUP (systemctl reload) with no TLS to reload: the gateway carries on.
    gw.process.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await raw(`http://127.0.0.1:${gwPort}/healthz`)).status, 200);
  } finally {
    nginx?.kill('SIGTERM');
    await gw.destroy();
  }
});

test('codeyard\'s own TLS, no nginx: the same flow, a workspace started on demand, HTTP redirected, certificate reloaded on SIGHUP', { timeout: 300_000 }, async () => {
  const gwPort = await freePort();
  const redirectPort = await freePort();
  // The test's own clients (fetch, https) meet the self-signed certificate too.
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  const publicUrl = `https://${DOMAIN}:${gwPort}`;
  const gw = await startGatewayProcess({
    port: gwPort,
    config: `host: 127.0.0.1\npublicUrl: ${publicUrl}\nrouting:\n  baseDomain: ${DOMAIN}\ntls:\n  cert: ${tls.cert}\n  key: ${tls.key}\n  hstsSeconds: 600\n  redirectHttpPort: ${redirectPort}\nmetrics:\n  token: metrics-token-0123456789\n`,
    scheme: 'https',
  });
  try {
    await addUsers(gw);
    await frontDoorFlow({ gw, publicUrl, viaTerminal: false });

    const home = await raw(`https://127.0.0.1:${gwPort}/healthz`, { host: `${DOMAIN}:${gwPort}` });
    assert.equal(home.headers['strict-transport-security'], 'max-age=600; includeSubDomains');
    const redirected = await raw(`http://127.0.0.1:${redirectPort}/login?x=1`, { host: `dan.${DOMAIN}` });
    assert.equal(redirected.status, 301);
    assert.equal(redirected.headers.location, `https://dan.${DOMAIN}:${gwPort}/login?x=1`);
    assert.equal((await raw(`https://127.0.0.1:${gwPort}/metrics`, { host: `${DOMAIN}:${gwPort}` })).status, 401);
    assert.equal((await raw(`https://127.0.0.1:${gwPort}/metrics`, { host: `${DOMAIN}:${gwPort}`, headers: { authorization: 'Bearer metrics-token-0123456789' } })).status, 200);

    // A renewed certificate is served to new connections after SIGHUP; the gateway keeps running.
    const before = certSerial(gwPort);
    makeSelfSigned(DOMAIN, join(tmp, 'tls'));
    gw.process.kill('SIGHUP');
    for (let i = 0; i < 50 && certSerial(gwPort) === before; i++) await new Promise((r) => setTimeout(r, 100));
    assert.notEqual(certSerial(gwPort), before);
    assert.equal((await raw(`https://127.0.0.1:${gwPort}/healthz`, { host: `${DOMAIN}:${gwPort}` })).status, 200);
  } finally {
    await gw.destroy();
  }
});

/** The certificate serial the gateway presents to a new connection. */
function certSerial(port: number): string {
  const r = spawnSync('sh', ['-c', `openssl s_client -connect 127.0.0.1:${port} -servername ${DOMAIN} </dev/null 2>/dev/null | openssl x509 -noout -serial`], { encoding: 'utf8' });
  return r.stdout.trim();
}
