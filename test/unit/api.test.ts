// The API over fastify's inject(), with a fake driver: routing, auth, ownership
// and lifecycle rules. The real driver is exercised in test/e2e/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.ts';
import { startGateway, type Gateway } from '../../src/gateway.ts';
import { hashPassword } from '../../src/auth/passwords.ts';
import { FakeRuntime } from '../helpers/fake-runtime.ts';
import { tempDir } from '../helpers/temp-dir.ts';

let gw: Gateway;
let runtime: FakeRuntime;
let dataDir: string;
let admin: string;
let dan: string;

const inject = async (cookie: string | undefined, method: string, url: string, payload?: unknown) => {
  const r = await gw.app.inject({ method: method as 'GET', url, payload: payload as object, headers: cookie ? { cookie } : {} });
  return { status: r.statusCode, body: r.body ? JSON.parse(r.body) : undefined, headers: r.headers };
};

const login = async (username: string, password: string) => {
  const r = await gw.app.inject({ method: 'POST', url: '/api/auth/login', payload: { username, password } });
  assert.equal(r.statusCode, 200, r.body);
  const setCookie = String(r.headers['set-cookie']);
  assert.match(setCookie, /HttpOnly/);
  assert.match(setCookie, /SameSite=Lax/);
  return setCookie.split(';')[0]!;
};

before(async () => {
  dataDir = tempDir('cy-api-');
  runtime = new FakeRuntime();
  gw = await startGateway(loadConfig({ env: {}, flags: { dataDir } }), { runtime, listen: false, log: pino({ level: 'silent' }), env: {} });
  const password = readFileSync(join(dataDir, 'initial-admin-password'), 'utf8').trim();
  admin = await login('admin', password);
  gw.store.users.create('dan', await hashPassword('dan-password-1'), 'user');
  dan = await login('dan', 'dan-password-1');
});

after(async () => {
  await gw.close();
  await runtime.closeAll();
});

test('first start creates admin with a generated password in a 0600 file', () => {
  assert.equal(statSync(join(dataDir, 'initial-admin-password')).mode & 0o777, 0o600);
  assert.equal(statSync(dataDir).mode & 0o777, 0o700);
});

test('me, keys: create shows the key once, list hides it, key authenticates, delete revokes', async () => {
  assert.deepEqual((await inject(dan, 'GET', '/api/me')).body, { username: 'dan', role: 'user', via: 'session', limits: { maxSandboxes: null, maxMemoryMB: null, maxCpu: null } });
  const created = await inject(dan, 'POST', '/api/keys', { name: 'laptop' });
  assert.equal(created.status, 201);
  assert.match(created.body.key, /^cy_/);
  const list = await inject(dan, 'GET', '/api/keys');
  assert.equal(list.body.length, 1);
  assert.equal(list.body[0].key, undefined);
  const viaKey = await gw.app.inject({ method: 'GET', url: '/api/me', headers: { 'x-api-key': created.body.key } });
  assert.equal(JSON.parse(viaKey.body).via, 'key');
  assert.equal((await inject(admin, 'DELETE', `/api/keys/${created.body.id}`)).status, 404, 'admin cannot delete dan\'s key by id');
  assert.equal((await inject(dan, 'DELETE', `/api/keys/${created.body.id}`)).status, 204);
  const revoked = await gw.app.inject({ method: 'GET', url: '/api/me', headers: { 'x-api-key': created.body.key } });
  assert.equal(revoked.statusCode, 401);
});

test('templates are listed', async () => {
  assert.deepEqual((await inject(dan, 'GET', '/api/templates')).body.map((t: { templateID: string }) => t.templateID), ['vscode', 'browser']);
});

test('create returns at once in state starting; ?wait=true returns running; urls.ide is the proxy path', async () => {
  const fast = await inject(dan, 'POST', '/api/sandboxes', { templateID: 'vscode', metadata: { course: 'py101' }, envVars: { TOKEN: 'x' } });
  assert.equal(fast.status, 201);
  assert.equal(fast.body.state, 'starting');
  assert.equal(fast.body.owner, 'dan');
  assert.deepEqual(fast.body.envVarNames, ['TOKEN']);
  assert.equal(JSON.stringify(fast.body).includes('"x"'), false, 'env values are never echoed');
  assert.equal(fast.body.urls.ide, `/vscode-proxy/${fast.body.sandboxID}/`);
  const waited = await inject(dan, 'POST', '/api/sandboxes?wait=true', { templateID: 'vscode', memoryMB: 1024, cpuCount: 2, timeout: 3600 });
  assert.equal(waited.body.state, 'running');
  assert.equal(waited.body.memoryMB, 1024);
  assert.ok(Date.parse(waited.body.endAt) > Date.now() + 3500_000);
});

test('a start that fails is recorded as a crash and retried after a back-off', async () => {
  runtime.failNextStart = true;
  const r = await inject(dan, 'POST', '/api/sandboxes?wait=true', { templateID: 'vscode' });
  assert.equal(r.body.state, 'restarting');
  assert.match(r.body.error, /failed to start: its main process exited.*\(nonzero_exit\); restarting in 30 s/s);
  const status = await inject(dan, 'GET', `/api/sandboxes/${r.body.sandboxID}/status`);
  assert.equal(status.body.lastCrash.classification, 'nonzero_exit');
  assert.equal(status.body.restarts, 1);
  assert.match(status.body.lastCrash.logTail, /fake log/);
  await inject(dan, 'POST', `/api/sandboxes/${r.body.sandboxID}/stop`);
});

test('users see only their own sandboxes; admin sees all; others get 403', async () => {
  const mine = await inject(admin, 'POST', '/api/sandboxes?wait=true', { templateID: 'vscode', name: 'admins' });
  const id = mine.body.sandboxID;
  const danList = (await inject(dan, 'GET', '/api/sandboxes')).body as { owner: string }[];
  assert.ok(danList.length >= 1 && danList.every((s) => s.owner === 'dan'));
  const adminList = (await inject(admin, 'GET', '/api/sandboxes')).body as { owner: string }[];
  assert.ok(adminList.some((s) => s.owner === 'dan') && adminList.some((s) => s.owner === 'admin'));
  for (const [method, url, body] of [['GET', `/api/sandboxes/${id}`], ['DELETE', `/api/sandboxes/${id}`], ['POST', `/api/sandboxes/${id}/exec`, { cmd: 'id' }], ['POST', `/api/sandboxes/${id}/stop`]] as const) {
    const r = await inject(dan, method, url, body);
    assert.equal(r.status, 403, `${method} ${url}`);
    assert.equal(r.body.message, 'you do not have access to this sandbox');
  }
  assert.equal((await inject(admin, 'GET', `/api/sandboxes/${id}`)).body.state, 'running');
});

test('exec, stop, start, delete through the lifecycle', async () => {
  const { body } = await inject(dan, 'POST', '/api/sandboxes?wait=true', { templateID: 'vscode' });
  const id = body.sandboxID;
  assert.equal((await inject(dan, 'POST', `/api/sandboxes/${id}/exec`, { cmd: ['echo', 'x'] })).body.stdout, '["echo","x"]');
  assert.equal((await inject(dan, 'POST', `/api/sandboxes/${id}/stop`)).body.state, 'stopped');
  const execStopped = await inject(dan, 'POST', `/api/sandboxes/${id}/exec`, { cmd: 'true' });
  assert.equal(execStopped.status, 409);
  assert.match(execStopped.body.message, /is stopped, not running: start it first/);
  assert.equal((await inject(dan, 'POST', `/api/sandboxes/${id}/start?wait=true`)).body.state, 'running');
  assert.equal((await inject(dan, 'DELETE', `/api/sandboxes/${id}`)).status, 204);
  assert.equal((await inject(dan, 'GET', `/api/sandboxes/${id}`)).status, 404);
  assert.ok(runtime.calls.includes(`remove ${id}`));
});

test('logout ends the session', async () => {
  const c = await login('dan', 'dan-password-1');
  assert.equal((await inject(c, 'POST', '/api/auth/logout')).status, 204);
  assert.equal((await inject(c, 'GET', '/api/me')).status, 401);
});

test('progress events: the state now, then each step of a start, as server-sent events', async () => {
  const created = await inject(dan, 'POST', '/api/sandboxes', { templateID: 'vscode', workspace: null });
  const id = created.body.sandboxID;
  await gw.sandboxes.settled(id);
  const phases: string[] = [];
  const listener = (e: { sandboxID: string; phase: string }) => { if (e.sandboxID === id) phases.push(e.phase); };
  gw.sandboxes.progress.on('progress', listener);
  await inject(dan, 'POST', `/api/sandboxes/${id}/restart?wait=true`);
  await gw.sandboxes.settled(id);
  gw.sandboxes.progress.off('progress', listener);
  assert.deepEqual(phases, ['stopping', 'stopped', 'preparing', 'starting', 'waiting', 'running']);
  // Over HTTP: the first event is the state now.
  const stream = await fetchEvents(id, dan);
  assert.match(stream, /^event: progress\ndata: \{"phase":"running"/);
  assert.equal((await inject(admin, 'GET', `/api/sandboxes/${id}/crashes`)).body.length, 0);
  assert.equal((await inject(undefined, 'GET', `/api/sandboxes/${id}/events`)).status, 401);
  await inject(dan, 'DELETE', `/api/sandboxes/${id}`);
});

/** The first chunk of an event stream (inject cannot read a hijacked, endless response). */
async function fetchEvents(id: string, cookie: string): Promise<string> {
  const address = await gw.app.listen({ port: 0, host: '127.0.0.1' }).catch(() => `http://127.0.0.1:${(gw.app.server.address() as { port: number }).port}`);
  const controller = new AbortController();
  const res = await fetch(`${address}/api/sandboxes/${id}/events`, { headers: { cookie }, signal: controller.signal });
  const reader = res.body!.getReader();
  const { value } = await reader.read();
  controller.abort();
  return new TextDecoder().decode(value);
}

test('host overview is for admins; the portal page redirects strangers to log in; assets are checked by name', async () => {
  assert.equal((await inject(dan, 'GET', '/api/host')).status, 403);
  const host = await inject(admin, 'GET', '/api/host');
  assert.equal(host.status, 200);
  assert.ok(host.body.memory.totalBytes > 0 && host.body.cpu.count > 0, JSON.stringify(host.body));
  const stranger = await gw.app.inject({ method: 'GET', url: '/' });
  assert.equal(stranger.statusCode, 302);
  assert.equal(stranger.headers.location, '/login?next=%2F');
  assert.equal((await gw.app.inject({ method: 'GET', url: '/assets/..%2Fcodeyard.db' })).statusCode, 404);
  assert.equal((await gw.app.inject({ method: 'GET', url: '/assets/nothing-here.js' })).statusCode, 404);
});

test('lifecycle calls refuse a body with fields; logs?tail=0 gives no lines', async () => {
  const created = await inject(dan, 'POST', '/api/sandboxes?wait=true', { templateID: 'vscode', workspace: null });
  const id = created.body.sandboxID;
  const withBody = await inject(dan, 'POST', `/api/sandboxes/${id}/stop`, { force: true });
  assert.equal(withBody.status, 400);
  assert.match(withBody.body.message, /force/);
  const none = await gw.app.inject({ method: 'GET', url: `/api/sandboxes/${id}/logs?tail=0`, headers: { cookie: dan } });
  assert.equal(none.statusCode, 200);
  assert.equal(none.body, '');
  await inject(dan, 'DELETE', `/api/sandboxes/${id}`);
});

test('front door: /readyz names what is down; /metrics needs its token (sandboxes come in from loopback); the hand-off refuses what it cannot route', async () => {
  assert.deepEqual((await inject(undefined, 'GET', '/readyz')).body, { status: 'ready' });
  // Sandboxes reach the gateway from loopback (their relay to the model proxy): loopback alone gets nothing.
  const local = await gw.app.inject({ method: 'GET', url: '/metrics', remoteAddress: '127.0.0.1' });
  assert.equal(local.statusCode, 403);
  assert.match(JSON.parse(local.body).message, /needs metrics\.token/);
  const remote = await gw.app.inject({ method: 'GET', url: '/metrics', remoteAddress: '10.1.2.3' });
  assert.equal(remote.statusCode, 403);
  // Without subdomain routing there is nothing to hand off to.
  const handoff = await gw.app.inject({ method: 'GET', url: '/auth/handoff?host=dan.example.test', headers: { cookie: admin, accept: 'text/html' } });
  assert.equal(handoff.statusCode, 404);
  assert.match(handoff.body, /subdomain routing is off/);
  // A stranger asking is sent to log in first, and back here after.
  const stranger = await gw.app.inject({ method: 'GET', url: '/auth/handoff?host=dan.example.test' });
  assert.equal(stranger.statusCode, 302);
  assert.equal(stranger.headers.location, '/login?next=%2Fauth%2Fhandoff%3Fhost%3Ddan.example.test');
});
