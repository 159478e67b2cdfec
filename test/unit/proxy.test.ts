// The proxy against a listening gateway and a fake sandbox that echoes what it
// receives: prefix stripping, credential stripping, redirects, error pages.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.ts';
import { startGateway, type Gateway } from '../../src/gateway.ts';
import { FakeRuntime } from '../helpers/fake-runtime.ts';
import { Api } from '../helpers/gateway-process.ts';
import { tempDir } from '../helpers/temp-dir.ts';

let gw: Gateway;
let runtime: FakeRuntime;
let api: Api;
let id: string;

before(async () => {
  runtime = new FakeRuntime();
  gw = await startGateway(loadConfig({ env: {}, flags: { dataDir: tempDir('cy-proxy-'), port: 0 } }),
    { runtime, log: pino({ level: 'silent' }), env: { CODEYARD_ADMIN_PASSWORD: 'pw-admin-1' } });
  api = await Api.login(gw.url, 'admin', 'pw-admin-1');
  id = (await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode' })).body.sandboxID;
});

after(async () => {
  await gw.close();
  await runtime.closeAll();
});

test('the prefix is stripped, query and body pass through, Host is kept for the origin check', async () => {
  const r = await api.call('POST', `/vscode-proxy/${id}/some/path?x=1&y=2`, { hello: 'world' });
  assert.equal(r.status, 200);
  assert.equal(r.body.url, '/some/path?x=1&y=2');
  assert.equal(r.body.body, '{"hello":"world"}');
  assert.equal(r.body.headers.host, new URL(gw.url).host);
  assert.equal(r.body.headers['x-forwarded-proto'], 'http');
});

test("the gateway's session cookie and API keys never reach the sandbox; spoofed forwarded headers are dropped", async () => {
  const key = (await api.call('POST', '/api/keys', { name: 'k' })).body.key;
  const r = await api.call('GET', `/vscode-proxy/${id}/`, undefined, {
    cookie: `${api.headers.cookie}; vscode-tkn=keep-me`, 'x-api-key': key, 'x-forwarded-host': 'evil.example', 'x-forwarded-for': '6.6.6.6',
  });
  assert.equal(r.status, 200);
  assert.equal(r.body.headers.cookie, 'vscode-tkn=keep-me');
  assert.equal(r.body.headers['x-api-key'], undefined);
  assert.equal(r.body.headers.authorization, undefined);
  assert.equal(r.body.headers['x-forwarded-host'], new URL(gw.url).host);
  assert.equal(r.body.headers['x-forwarded-for'], '127.0.0.1');
  const bearer = await new Api(gw.url).call('GET', `/vscode-proxy/${id}/`, undefined, { authorization: `Bearer ${key}` });
  assert.equal(bearer.status, 200);
  assert.equal(bearer.body.headers.authorization, undefined);
});

test('a missing trailing slash redirects, keeping the query', async () => {
  const r = await fetch(`${gw.url}/vscode-proxy/${id}?folder=/x`, { headers: api.headers, redirect: 'manual' });
  assert.equal(r.status, 308);
  assert.equal(r.headers.get('location'), `/vscode-proxy/${id}/?folder=/x`);
});

test('a stopped sandbox answers 502 to programs; a browser gets a button whose POST starts it, then a 503 page that refreshes; a dead upstream is a 502', async () => {
  await api.call('POST', `/api/sandboxes/${id}/stop`);
  const json = await api.call('GET', `/vscode-proxy/${id}/`);
  assert.equal(json.status, 502);
  assert.match(json.body.message, /is stopped: start it/);
  // A browser opening it gets a button (a GET starts nothing); the button's POST, from this origin, starts it.
  const page = await fetch(`${gw.url}/vscode-proxy/${id}/`, { headers: { ...api.headers, accept: 'text/html' } });
  assert.equal(page.status, 409);
  assert.match(await page.text(), new RegExp(`<form method="post" action="/vscode-proxy/${id}/_codeyard/start"`));
  assert.equal((await api.call('GET', `/api/sandboxes/${id}`)).body.state, 'stopped');
  const pressed = await fetch(`${gw.url}/vscode-proxy/${id}/_codeyard/start`, { method: 'POST', headers: { ...api.headers, origin: gw.url }, redirect: 'manual' });
  assert.equal(pressed.status, 303);
  assert.equal(pressed.headers.get('location'), `/vscode-proxy/${id}/`);
  // Then it refreshes itself until the IDE is there.
  const html = await fetch(`${gw.url}/vscode-proxy/${id}/`, { headers: { ...api.headers, accept: 'text/html' } });
  assert.equal(html.status, 503);
  assert.match(html.headers.get('content-type')!, /text\/html/);
  assert.equal(html.headers.get('refresh'), '2');
  assert.match(await html.text(), /Starting your workspace/);
  assert.equal((await gw.sandboxes.settled(id)).state, 'running');
  await runtime.closeAll(); // the process dies behind the gateway's back
  const dead = await fetch(`${gw.url}/vscode-proxy/${id}/`, { headers: { ...api.headers, accept: 'text/html' } });
  assert.equal(dead.status, 502);
  assert.equal(dead.headers.get('refresh'), null, 'only a starting sandbox gets a self-refreshing page');
  assert.match(await dead.text(), /did not answer/);
  // The gateway notices the main process is gone instead of claiming it runs.
  let state = '';
  for (let i = 0; i < 50 && state !== 'restarting'; i++) {
    state = (await api.call('GET', `/api/sandboxes/${id}`)).body.state;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(state, 'restarting');
  const restarted = await api.call('POST', `/api/sandboxes/${id}/start?wait=true`);
  assert.equal(restarted.body.state, 'running');
  assert.equal((await api.call('GET', `/vscode-proxy/${id}/x`)).body.url, '/x');
});
