// Idle stop against the real gateway and code-server: a sandbox nobody uses
// stops by itself (files kept); opening its IDE starts it again.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Api, sandboxProcesses, startGatewayProcess, tempDataDir, type RunningGateway } from '../helpers/gateway-process.ts';

let gw: RunningGateway;

before(async () => {
  const dataDir = tempDataDir();
  gw = await startGatewayProcess({ dataDir, config: 'sandboxes:\n  idleStopSeconds: 2\n' });
});

after(async () => {
  await gw?.destroy();
});

test('an idle sandbox stops by itself; opening its IDE offers to start it, and one press does', { timeout: 120_000 }, async () => {
  const api = await Api.login(gw.url);
  const id = (await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode' })).body.sandboxID;
  await api.call('POST', `/api/sandboxes/${id}/exec`, { cmd: 'echo still-here > idle.txt' });
  // Activity keeps it alive…
  for (let i = 0; i < 6; i++) {
    assert.notEqual((await api.call('GET', `/vscode-proxy/${id}/`)).status, 502);
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.equal((await api.call('GET', `/api/sandboxes/${id}`)).body.state, 'running');
  // …and without it, it stops.
  let state = '';
  for (let i = 0; i < 60 && state !== 'stopped'; i++) {
    await new Promise((r) => setTimeout(r, 200));
    state = (await api.call('GET', `/api/sandboxes/${id}`)).body.state;
  }
  assert.equal(state, 'stopped');
  assert.deepEqual(sandboxProcesses(id), []);
  const record = (await api.call('GET', `/api/sandboxes/${id}`)).body;
  assert.ok(record.lastActivityAt, 'lastActivityAt recorded');

  // A browser opening the IDE gets a button (a GET starts nothing); pressing it starts the sandbox…
  const offered = await fetch(`${gw.url}/vscode-proxy/${id}/`, { headers: { cookie: api.headers.cookie!, accept: 'text/html' } });
  assert.equal(offered.status, 409);
  assert.match(await offered.text(), /data-codeyard-start/);
  const pressed = await fetch(`${gw.url}/vscode-proxy/${id}/_codeyard/start`, { method: 'POST', headers: { cookie: api.headers.cookie!, origin: gw.url }, redirect: 'manual' });
  assert.equal(pressed.status, 303);
  // …and the IDE's address shows the "starting" page, which turns into the IDE.
  const opening = await fetch(`${gw.url}/vscode-proxy/${id}/`, { headers: { cookie: api.headers.cookie!, accept: 'text/html' } });
  assert.equal(opening.status, 503);
  assert.equal(opening.headers.get('refresh'), '2');
  assert.equal(opening.headers.get('retry-after'), '2');
  assert.match(await opening.text(), /Starting your workspace/);
  for (let i = 0; i < 100 && state !== 'running'; i++) {
    await new Promise((r) => setTimeout(r, 100));
    state = (await api.call('GET', `/api/sandboxes/${id}`)).body.state;
  }
  assert.equal(state, 'running');
  const page = await api.call('GET', `/vscode-proxy/${id}/`, undefined, { accept: 'text/html' });
  assert.ok(page.status === 200 || page.status === 302, String(page.status));
  assert.equal((await api.call('POST', `/api/sandboxes/${id}/exec`, { cmd: 'cat idle.txt' })).body.stdout, 'still-here\n');
  // A command running through exec is use too: it outlives the idle limit.
  const long = await api.call('POST', `/api/sandboxes/${id}/exec`, { cmd: 'sleep 4 && echo finished' });
  assert.equal(long.body.exitCode, 0, long.text);
  assert.equal(long.body.stdout, 'finished\n');
  // A program (no text/html) asking for a stopped IDE does not start it.
  await api.call('POST', `/api/sandboxes/${id}/stop`);
  assert.equal((await api.call('GET', `/vscode-proxy/${id}/`)).status, 502);
  assert.equal((await api.call('GET', `/api/sandboxes/${id}`)).body.state, 'stopped');
});

test('at its timeout a throwaway sandbox is deleted; one on a persistent workspace is stopped with its files', { timeout: 120_000 }, async () => {
  const api = await Api.login(gw.url);
  const [throwaway, persistent] = await Promise.all([null, 'expiring'].map(async (workspace) => {
    const r = await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', workspace });
    assert.equal(r.status, 201, r.text);
    return r.body.sandboxID as string;
  }));
  assert.equal((await api.call('POST', `/api/sandboxes/${persistent}/exec`, { cmd: 'echo kept > kept.txt' })).body.exitCode, 0);
  for (const id of [throwaway, persistent]) assert.equal((await api.call('POST', `/api/sandboxes/${id}/timeout`, { timeout: 1 })).status, 200);
  let gone = false;
  for (let i = 0; i < 100 && !gone; i++) {
    await new Promise((r) => setTimeout(r, 100));
    gone = (await api.call('GET', `/api/sandboxes/${throwaway}`)).status === 404;
  }
  assert.ok(gone, 'the throwaway sandbox is deleted');
  assert.deepEqual(sandboxProcesses(throwaway!), []);
  assert.ok(!existsSync(join(gw.dataDir, 'sandboxes', throwaway!)), 'with its files');
  let state = '';
  for (let i = 0; i < 100 && state !== 'stopped'; i++) {
    await new Promise((r) => setTimeout(r, 100));
    state = (await api.call('GET', `/api/sandboxes/${persistent}`)).body.state;
  }
  assert.equal(state, 'stopped');
  assert.deepEqual(sandboxProcesses(persistent!), []);
  assert.equal(readFileSync(join(gw.dataDir, 'users/admin/expiring/workspace/kept.txt'), 'utf8'), 'kept\n');
});
