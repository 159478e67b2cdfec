// Two users, each with a real sandbox behind the real gateway: every API route
// and both proxy paths (HTTP and WebSocket), tried with every kind of wrong
// credential. Each is refused with the right status and nothing leaks.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { Api, sandboxProcesses, startGatewayProcess, tempDataDir, upgradeStatus, type RunningGateway } from '../helpers/gateway-process.ts';

let gw: RunningGateway;
let admin: Api;
let ann: Api;
let bob: Api;
let annBox: string;
let bobBox: string;
let secret: Uint8Array;

const LOGIN_WINDOW_S = 3;

before(async () => {
  const dataDir = tempDataDir();
  const config = join(dataDir, 'codeyard.yaml');
  writeFileSync(config, `auth:\n  loginWindowSeconds: ${LOGIN_WINDOW_S}\n  loginFreeFailures: 5\n  loginBaseDelayMs: 200\n`);
  gw = await startGatewayProcess({ dataDir, args: ['--config', config] });
  admin = await Api.login(gw.url);
  for (const username of ['ann', 'bob']) {
    const r = await admin.call('POST', '/api/users', { username, password: `${username}-password-1` });
    assert.equal(r.status, 201, r.text);
  }
  ann = await Api.login(gw.url, 'ann', 'ann-password-1');
  bob = await Api.login(gw.url, 'bob', 'bob-password-1');
  const [a, b] = await Promise.all([
    ann.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', name: 'ann-box' }),
    bob.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', name: 'bob-box' }),
  ]);
  assert.equal(a.body.state, 'running', a.text);
  assert.equal(b.body.state, 'running', b.text);
  annBox = a.body.sandboxID;
  bobBox = b.body.sandboxID;
  secret = Buffer.from(readFileSync(join(gw.dataDir, 'session-secret'), 'utf8').trim(), 'base64');
});

after(async () => {
  await gw?.destroy();
});

/** A token signed like the gateway's, with claims of our choosing. */
const forge = (claims: Record<string, unknown>, key = secret, expSeconds = 300) =>
  new SignJWT({ type: 'ide', ...claims }).setProtectedHeader({ alg: 'HS256' }).setSubject(String(claims.sub ?? 'ann'))
    .setIssuer('codeyard').setJti(`j${Math.random()}`).setIssuedAt().setExpirationTime(Math.floor(Date.now() / 1000) + expSeconds).sign(key);

const routesOn = (id: string): [string, string, unknown?][] => [
  ['GET', `/api/sandboxes/${id}`],
  ['DELETE', `/api/sandboxes/${id}`],
  ['POST', `/api/sandboxes/${id}/exec`, { cmd: 'cat /etc/hostname' }],
  ['POST', `/api/sandboxes/${id}/stop`],
  ['POST', `/api/sandboxes/${id}/start`],
  ['POST', `/api/sandboxes/${id}/ide-token`],
];

test("another user gets 403 on every route of someone else's sandbox, and both proxy paths", async () => {
  for (const [method, path, body] of routesOn(annBox)) {
    const r = await bob.call(method, path, body);
    assert.equal(r.status, 403, `${method} ${path}: ${r.status}`);
    assert.deepEqual(r.body, { code: 403, message: 'you do not have access to this sandbox', error: 'forbidden' });
  }
  assert.equal((await bob.call('GET', `/vscode-proxy/${annBox}/`)).status, 403);
  assert.equal(await upgradeStatus(`${gw.url}/vscode-proxy/${annBox}/`, bob.headers), 403);
  const list = await bob.call('GET', '/api/sandboxes');
  assert.deepEqual(list.body.map((s: { sandboxID: string }) => s.sandboxID), [bobBox]);
  for (const [method, path] of [['GET', '/api/users'], ['POST', '/api/users'], ['GET', '/api/audit'], ['PATCH', '/api/users/ann'], ['DELETE', '/api/users/ann']]) {
    assert.equal((await bob.call(method!, path!, method === 'GET' || method === 'DELETE' ? undefined : {})).status, 403, `${method} ${path}`);
  }
  assert.equal((await ann.call('GET', `/api/sandboxes/${annBox}`)).body.state, 'running', 'nothing was stopped or deleted');
});

test('anonymous, bad and revoked credentials get 401 on every route and proxy path, with no data in the body', async () => {
  const { key } = (await bob.call('POST', '/api/keys', { name: 'soon-revoked' })).body;
  const keyId = (await bob.call('GET', '/api/keys')).body.find((k: { name: string }) => k.name === 'soon-revoked').id;
  assert.equal((await bob.call('DELETE', `/api/keys/${keyId}`)).status, 204);
  const expired = await forge({ sub: 'ann', sandboxID: annBox }, secret, -60);
  const otherSecret = await forge({ sub: 'ann', sandboxID: annBox }, new Uint8Array(32).fill(1));
  const wrongType = await new SignJWT({ type: 'session', sandboxID: annBox }).setProtectedHeader({ alg: 'HS256' }).setSubject('ann')
    .setIssuer('codeyard').setJti('x').setExpirationTime('5m').sign(secret);
  const forBob = (await bob.call('POST', `/api/sandboxes/${bobBox}/ide-token`)).body.token;
  const credentials: [string, Record<string, string>, number][] = [
    ['anonymous', {}, 401],
    ['revoked key', { 'x-api-key': key }, 401],
    ['revoked key as bearer', { authorization: `Bearer ${key}` }, 401],
    ['made-up session', { cookie: 'codeyard_session=forged' }, 401],
    ['expired IDE token', { authorization: `Bearer ${expired}` }, 401],
    ['IDE token signed with another secret', { authorization: `Bearer ${otherSecret}` }, 401],
    ['token of the wrong type', { authorization: `Bearer ${wrongType}` }, 401],
    ["IDE token for another sandbox", { authorization: `Bearer ${forBob}` }, 403],
  ];
  for (const [what, headers, proxyStatus] of credentials) {
    const client = new Api(gw.url, headers);
    for (const [method, path, body] of [...routesOn(annBox), ['GET', '/api/sandboxes'], ['POST', '/api/sandboxes', { templateID: 'vscode' }], ['GET', '/api/me']] as [string, string, unknown?][]) {
      const r = await client.call(method, path, body);
      assert.equal(r.status, 401, `${what}: ${method} ${path} -> ${r.status}`);
      assert.deepEqual(Object.keys(r.body).sort(), ['code', 'error', 'message']);
      assert.doesNotMatch(r.text, new RegExp(`${annBox}|ann-box|running`), `${what}: ${method} ${path} leaks: ${r.text}`);
    }
    const page = await client.call('GET', `/vscode-proxy/${annBox}/`);
    assert.equal(page.status, proxyStatus, `${what}: proxy HTTP ${page.status} ${page.text}`);
    assert.doesNotMatch(page.text, /ann-box|workbench/i);
    assert.equal(await upgradeStatus(`${gw.url}/vscode-proxy/${annBox}/`, headers), proxyStatus, `${what}: proxy WebSocket`);
  }
  // The same tokens in the query string, where browsers and WebSockets carry them.
  for (const [token, status] of [[expired, 401], [otherSecret, 401], [wrongType, 401], [forBob, 403]] as const) {
    assert.equal((await fetch(`${gw.url}/vscode-proxy/${annBox}/?token=${token}`, { redirect: 'manual' })).status, status);
    assert.equal(await upgradeStatus(`${gw.url}/vscode-proxy/${annBox}/?token=${token}`), status);
  }
});

test("a disabled user's session, keys and IDE links stop working, and their open IDE WebSocket is cut", async () => {
  const carl = await admin.call('POST', '/api/users', { username: 'carl', password: 'carl-password-1' });
  assert.equal(carl.status, 201);
  const c = await Api.login(gw.url, 'carl', 'carl-password-1');
  const box = (await c.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode' })).body.sandboxID;
  const { key } = (await c.call('POST', '/api/keys', { name: 'k' })).body;
  const link = (await c.call('POST', `/api/sandboxes/${box}/ide-token`)).body.token;
  const ws = await openWebSocket(`${gw.url}/vscode-proxy/${box}/`, c.headers.cookie!);

  assert.equal((await admin.call('PATCH', '/api/users/carl', { disabled: true })).status, 200);
  await ws.closed;
  assert.equal((await c.call('GET', '/api/me')).status, 401);
  assert.equal((await new Api(gw.url, { 'x-api-key': key }).call('GET', '/api/me')).status, 401);
  assert.equal((await c.call('GET', `/vscode-proxy/${box}/`)).status, 401);
  assert.equal((await fetch(`${gw.url}/vscode-proxy/${box}/?token=${link}`, { redirect: 'manual' })).status, 401);
  await assert.rejects(Api.login(gw.url, 'carl', 'carl-password-1'), /401/);
  // Re-enabled, the password works again (the old session stays ended).
  await admin.call('PATCH', '/api/users/carl', { disabled: false });
  assert.equal((await (await Api.login(gw.url, 'carl', 'carl-password-1')).call('GET', '/api/me')).status, 200);
  assert.equal((await c.call('GET', '/api/me')).status, 401);
});

test('deleting an API key cuts the IDE connection it opened', async () => {
  const { key } = (await ann.call('POST', '/api/keys', { name: 'ws' })).body;
  const keyId = (await ann.call('GET', '/api/keys')).body.find((k: { name: string }) => k.name === 'ws').id;
  const ws = await openWebSocket(`${gw.url}/vscode-proxy/${annBox}/`, '', { 'x-api-key': key });
  assert.equal((await ann.call('DELETE', `/api/keys/${keyId}`)).status, 204);
  await ws.closed;
});

test('proxy path tricks are refused: dot segments, encodings, double slashes, smuggled ids, header injection', async () => {
  const tricks = [
    `/vscode-proxy/${annBox}/../${annBox}/`,
    `/vscode-proxy/${bobBox}/../${annBox}/`,
    `/vscode-proxy/${bobBox}/%2e%2e%2f${annBox}/`,
    `/vscode-proxy/${bobBox}/%2e%2e/%2e%2e/vscode-proxy/${annBox}/`,
    `/vscode-proxy//${annBox}/`,
    `/vscode-proxy/${bobBox}//vscode-proxy/${annBox}/`,
    `/vscode-proxy/%2e%2e/${annBox}/`,
    `/vscode-proxy/${annBox.toUpperCase()}/`,
    `/vscode-proxy/${annBox}%2f/`,
    `/vscode-proxy/${annBox}%0d%0aX-Injected:%201/`,
  ];
  for (const path of tricks) {
    const r = await rawGet(path, bob.headers.cookie!);
    // Routing looks only at the first segment: either bob's own sandbox answers, or nothing does.
    assert.ok(!/HTTP\/1\.1 200/.test(r) || path.startsWith(`/vscode-proxy/${bobBox}/`), `${path}:\n${r.slice(0, 200)}`);
    assert.doesNotMatch(r.split('\r\n\r\n')[0]!, /X-Injected/i, 'a header was injected');
    if (!path.startsWith(`/vscode-proxy/${bobBox}/`)) assert.match(r, /^HTTP\/1\.1 (400|403|404)/, `${path}:\n${r.slice(0, 200)}`);
  }
  // What reached bob's code-server stayed inside bob's sandbox: ann's workspace is not served through it.
  const viaBob = await bob.call('GET', `/vscode-proxy/${bobBox}/../${annBox}/`);
  assert.doesNotMatch(viaBob.text, /ann-box/);
});

test('login brute force: the 20th wrong password in a minute is refused, the right one works once the window passes', async () => {
  const attempts: number[] = [];
  for (let i = 0; i < 20; i++) {
    const r = await fetch(`${gw.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'ann', password: `guess-${i}` }) });
    attempts.push(r.status);
    if (r.status === 429) assert.ok(Number(r.headers.get('retry-after')) >= 1);
  }
  assert.equal(attempts[0], 401);
  assert.equal(attempts[19], 429, attempts.join(','));
  const during = await fetch(`${gw.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'ann', password: 'ann-password-1' }) });
  assert.equal(during.status, 429, 'while backing off even the right password waits');
  await new Promise((r) => setTimeout(r, LOGIN_WINDOW_S * 1000 + 200));
  const later = await Api.login(gw.url, 'ann', 'ann-password-1');
  assert.equal((await later.call('GET', '/api/me')).body.username, 'ann');
  // Every checked attempt is in the audit log; the throttled ones once per window, not once each.
  const audit = (await admin.call('GET', '/api/audit?user=ann&action=auth.login&limit=1000')).body as { target: string; outcome: string; details: { reason?: string } }[];
  const denied = audit.filter((e) => e.target === 'ann' && e.outcome === 'denied');
  assert.equal(denied.filter((e) => e.details.reason === 'unauthorized').length, attempts.filter((s) => s === 401).length);
  const throttled = denied.filter((e) => e.details.reason === 'rate_limited').length;
  assert.ok(throttled >= 1 && throttled <= 3, `throttled entries: ${throttled}`);
});

function rawGet(path: string, cookie: string): Promise<string> {
  const { hostname, port } = new URL(gw.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nCookie: ${cookie}\r\nConnection: close\r\n\r\n`));
    let data = '';
    socket.on('data', (d) => { data += d; });
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
}

async function openWebSocket(url: string, cookie: string, headers: Record<string, string> = {}): Promise<{ closed: Promise<void> }> {
  const { hostname, port, pathname } = new URL(url);
  const socket = connect(Number(port), hostname);
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => socket.write(`GET ${pathname} HTTP/1.1\r\nHost: ${hostname}:${port}\r\n${cookie ? `Cookie: ${cookie}\r\n` : ''}${extra}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`));
    socket.once('data', (d) => (String(d).startsWith('HTTP/1.1 101') ? resolve() : reject(new Error(String(d)))));
    socket.once('error', reject);
  });
  return { closed: new Promise((r) => socket.once('close', () => r())) };
}

test('deleting a user stops their real sandbox and keeps its files; purging deletes them', async () => {
  assert.equal((await admin.call('POST', '/api/users', { username: 'dora', password: 'dora-password-1' })).status, 201);
  const dora = await Api.login(gw.url, 'dora', 'dora-password-1');
  const box = (await dora.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode' })).body.sandboxID;
  await dora.call('POST', `/api/sandboxes/${box}/exec`, { cmd: 'echo keep-me > notes.txt' });
  assert.equal((await admin.call('DELETE', '/api/users/dora')).status, 204);
  assert.equal((await admin.call('GET', `/api/sandboxes/${box}`)).body.state, 'stopped');
  assert.deepEqual(sandboxProcesses(box), []);
  assert.equal(readFileSync(join(gw.dataDir, 'users', 'dora', 'default', 'workspace', 'notes.txt'), 'utf8'), 'keep-me\n');
  assert.equal((await dora.call('GET', '/api/me')).status, 401);
  assert.equal((await admin.call('DELETE', '/api/users/dora?purge=true')).status, 204);
  assert.equal(existsSync(join(gw.dataDir, 'sandboxes', box)), false);
  assert.equal(existsSync(join(gw.dataDir, 'users', 'dora')), false, 'purge deletes the workspaces too');
  const trail = (await admin.call('GET', '/api/audit?action=user.&limit=10')).body as { action: string; target: string; details: { purge: boolean } }[];
  assert.deepEqual(trail.filter((e) => e.target === 'dora').map((e) => [e.action, e.details.purge]), [['user.delete', true], ['user.delete', false], ['user.create', undefined]]);
});
