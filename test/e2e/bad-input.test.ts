// Malformed requests against the real gateway: each gets a 4xx whose message
// names the problem, and the gateway keeps serving afterwards.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, startGatewayProcess, upgradeStatus, type RunningGateway } from '../helpers/gateway-process.ts';

let gw: RunningGateway;
let api: Api;
let running: string;

before(async () => {
  gw = await startGatewayProcess();
  api = await Api.login(gw.url);
  const r = await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode' });
  assert.equal(r.body.state, 'running', r.text);
  running = r.body.sandboxID;
});

after(async () => {
  await gw?.destroy();
});

type Case = [name: string, method: string, path: string, body: unknown, status: number, message: RegExp, headers?: Record<string, string>];

const cases = (): Case[] => [
  ['unknown template', 'POST', '/api/sandboxes', { templateID: 'emacs' }, 400, /templateID: unknown template "emacs"; available: vscode/],
  ['missing templateID', 'POST', '/api/sandboxes', {}, 400, /templateID: required; one of: vscode/],
  ['templateID wrong type', 'POST', '/api/sandboxes', { templateID: 42 }, 400, /templateID: .*string/i],
  ['negative memory', 'POST', '/api/sandboxes', { templateID: 'vscode', memoryMB: -5 }, 400, /memoryMB/],
  ['fractional memory', 'POST', '/api/sandboxes', { templateID: 'vscode', memoryMB: 512.5 }, 400, /memoryMB/],
  ['memory as string', 'POST', '/api/sandboxes', { templateID: 'vscode', memoryMB: '2GB' }, 400, /memoryMB: expected a whole number of megabytes, e.g. 2048/],
  ['memory too small', 'POST', '/api/sandboxes', { templateID: 'vscode', memoryMB: 100 }, 400, /memoryMB: .*>=256/],
  ['zero cpu', 'POST', '/api/sandboxes', { templateID: 'vscode', cpuCount: 0 }, 400, /cpuCount/],
  ['negative timeout', 'POST', '/api/sandboxes', { templateID: 'vscode', timeout: -1 }, 400, /timeout/],
  ['metadata not strings', 'POST', '/api/sandboxes', { templateID: 'vscode', metadata: { a: 1 } }, 400, /metadata\.a/],
  ['bad env var name', 'POST', '/api/sandboxes', { templateID: 'vscode', envVars: { 'BAD-NAME': 'x' } }, 400, /envVars\.BAD-NAME/],
  ['unknown field', 'POST', '/api/sandboxes', { templateID: 'vscode', gpu: true }, 400, /unknown field in body: gpu/],
  ['unknown query parameter', 'POST', '/api/sandboxes?wiat=true', { templateID: 'vscode' }, 400, /unknown field in query: wiat/],
  ['body is an array', 'POST', '/api/sandboxes', [1, 2], 400, /expected object/i],
  ['malformed JSON', 'POST', '/api/sandboxes', '{"templateID": ', 400, /JSON/i],
  ['wrong content type', 'POST', '/api/sandboxes', 'templateID=vscode', 415, /content-type/i, { 'content-type': 'application/x-www-form-urlencoded' }],
  ['body too large', 'POST', '/api/sandboxes', JSON.stringify({ templateID: 'vscode', metadata: { x: 'y'.repeat(2_000_000) } }), 413, /too large/i],
  ['unknown sandbox', 'GET', '/api/sandboxes/doesnotexist', undefined, 404, /sandbox doesnotexist not found/],
  ['delete unknown sandbox', 'DELETE', '/api/sandboxes/doesnotexist', undefined, 404, /not found/],
  ['exec without cmd', 'POST', `/api/sandboxes/${running}/exec`, {}, 400, /cmd: required: a command string/],
  ['exec with a misnamed field', 'POST', `/api/sandboxes/${running}/exec`, { command: 'ls' }, 400, /cmd: required|unknown field in body: command/],
  ['exec empty cmd', 'POST', `/api/sandboxes/${running}/exec`, { cmd: '' }, 400, /cmd/],
  ['exec cmd array of numbers', 'POST', `/api/sandboxes/${running}/exec`, { cmd: [1, 2] }, 400, /cmd/],
  ['exec relative cwd', 'POST', `/api/sandboxes/${running}/exec`, { cmd: 'pwd', cwd: 'tmp' }, 400, /cwd: must be an absolute path/],
  ['exec NUL byte in cmd', 'POST', `/api/sandboxes/${running}/exec`, { cmd: 'echo a\u0000b' }, 400, /cmd: must not contain NUL bytes/],
  ['exec NUL byte in env value', 'POST', `/api/sandboxes/${running}/exec`, { cmd: 'true', envs: { A: 'x\u0000' } }, 400, /envs\.A: must not contain NUL bytes/],
  ['NUL byte in envVars', 'POST', '/api/sandboxes', { templateID: 'vscode', envVars: { A: '\u0000' } }, 400, /envVars\.A: must not contain NUL bytes/],
  ['exec huge timeout', 'POST', `/api/sandboxes/${running}/exec`, { cmd: 'true', timeoutMs: 1e12 }, 400, /timeoutMs/],
  ['exec on unknown sandbox', 'POST', '/api/sandboxes/doesnotexist/exec', { cmd: 'true' }, 404, /not found/],
  ['login without password', 'POST', '/api/auth/login', { username: 'admin' }, 400, /password/],
  ['login wrong password', 'POST', '/api/auth/login', { username: 'admin', password: 'nope' }, 401, /wrong username or password/],
  ['key without name', 'POST', '/api/keys', {}, 400, /name/],
  ['delete unknown key', 'DELETE', '/api/keys/nope', undefined, 404, /api key nope not found/],
  ['unknown route', 'GET', '/api/nothing-here', undefined, 404, /no route GET \/api\/nothing-here/],
  ['proxy path without id', 'GET', '/vscode-proxy/', undefined, 404, /expected \/vscode-proxy\/<sandboxID>\//],
  ['proxy path with bad id', 'GET', '/vscode-proxy/NOT_AN_ID/', undefined, 404, /"NOT_AN_ID" is not a sandbox ID/],
  ['login with wrong password', 'POST', '/api/auth/login', { username: 'nobody', password: 'x' }, 401, /wrong username or password/],
  ['proxy to unknown sandbox', 'GET', '/vscode-proxy/abcdefghij0123456789/', undefined, 404, /not found/],
];

test('each malformed request gets a 4xx naming the problem, as JSON, and the gateway keeps serving', async () => {
  for (const [name, method, path, body, status, message, headers] of cases()) {
    const r = await api.call(method, path, body, headers);
    assert.equal(r.status, status, `${name}: expected ${status}, got ${r.status} ${r.text.slice(0, 300)}`);
    assert.equal(r.body?.code, status, `${name}: body.code (${r.text.slice(0, 200)})`);
    assert.equal(typeof r.body?.error, 'string', `${name}: body.error`);
    assert.match(r.body.message, message, `${name}: message "${r.body.message}"`);
  }
  const health = await fetch(`${gw.url}/healthz`);
  assert.equal(health.status, 200);
  const list = await api.call('GET', '/api/sandboxes');
  assert.equal(list.status, 200);
  assert.equal(list.body.length, 1, 'no bad request created a sandbox');
});

test('unauthenticated requests get 401 everywhere but login and health', async () => {
  const anon = new Api(gw.url);
  for (const [method, path] of [['GET', '/api/sandboxes'], ['POST', '/api/sandboxes'], ['GET', `/api/sandboxes/${running}`],
    ['DELETE', `/api/sandboxes/${running}`], ['POST', `/api/sandboxes/${running}/exec`], ['GET', '/api/me'], ['GET', '/api/keys'],
    ['POST', '/api/keys'], ['GET', `/vscode-proxy/${running}/`]] as const) {
    const r = await anon.call(method, path, method === 'POST' ? {} : undefined);
    assert.equal(r.status, 401, `${method} ${path}: ${r.status}`);
  }
  assert.equal(await upgradeStatus(`${gw.url}/vscode-proxy/${running}/`), 401);
  assert.equal(await upgradeStatus(`${gw.url}/vscode-proxy/${running}/`, { cookie: api.headers.cookie! }), 101);
  assert.equal((await anon.call('GET', '/healthz')).status, 200);
  const badKey = await new Api(gw.url, { 'x-api-key': 'cy_nope' }).call('GET', '/api/sandboxes');
  assert.equal(badKey.status, 401);
  assert.match(badKey.body.message, /API key is invalid or was deleted/);
  const oldSession = await new Api(gw.url, { cookie: 'codeyard_session=expired' }).call('GET', '/api/me');
  assert.match(oldSession.body.message, /session has expired or was ended: log in again/);
  // A browser without a session is sent to the login page, and comes back after.
  const page = await fetch(`${gw.url}/vscode-proxy/${running}/?folder=/x`, { headers: { accept: 'text/html' }, redirect: 'manual' });
  assert.equal(page.status, 302);
  assert.equal(page.headers.get('location'), `/login?next=${encodeURIComponent(`/vscode-proxy/${running}/?folder=/x`)}`);
  const login = await fetch(`${gw.url}${page.headers.get('location')}`);
  assert.equal(login.status, 200);
  assert.match(await login.text(), /<form data-next="\/vscode-proxy\//);
  assert.match(login.headers.get('content-security-policy')!, /script-src 'sha256-/);
  for (const next of ['//evil.example/', '/%09/evil.example', '/%0a/evil.example', '/\\evil.example', 'https://evil.example/']) {
    const offsite = await (await fetch(`${gw.url}/login?next=${encodeURIComponent(decodeURIComponent(next))}`)).text();
    assert.doesNotMatch(offsite, /evil\.example/, `next=${next}`);
  }
  // A WebSocket from a page on another origin does not ride the user's cookie.
  assert.equal(await upgradeStatus(`${gw.url}/vscode-proxy/${running}/`, { cookie: api.headers.cookie!, origin: 'http://evil.example' }), 403);
  assert.equal(await upgradeStatus(`${gw.url}/vscode-proxy/${running}/`, { cookie: api.headers.cookie!, origin: gw.url }), 101);
  assert.equal((await api.call('GET', `/api/sandboxes/${running}`)).body.state, 'running');
});

test("another user's session gets 403 from the proxy, for HTTP and WebSocket; and the API agrees", async () => {
  assert.equal((await api.call('POST', '/api/users', { username: 'dan', password: 'dan-password-1' })).status, 201);
  const dan = await Api.login(gw.url, 'dan', 'dan-password-1');
  const http = await dan.call('GET', `/vscode-proxy/${running}/`);
  assert.equal(http.status, 403);
  assert.equal(http.body.message, 'you do not have access to this sandbox');
  assert.equal(await upgradeStatus(`${gw.url}/vscode-proxy/${running}/`, { cookie: dan.headers.cookie! }), 403);
  assert.equal((await dan.call('GET', `/api/sandboxes/${running}`)).status, 403);

});
