// Accounts over fastify's inject() with a fake driver: users, passwords,
// sessions, quotas, CSRF, headers and the audit log.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.ts';
import { startGateway, type Gateway } from '../../src/gateway.ts';
import { FakeRuntime } from '../helpers/fake-runtime.ts';
import { tempDir } from '../helpers/temp-dir.ts';

let gw: Gateway;
let runtime: FakeRuntime;
let dataDir: string;
let admin: string;

type Res = { status: number; body: any; headers: Record<string, unknown> };
const call = async (cookie: string | undefined, method: string, url: string, payload?: unknown, headers: Record<string, string> = {}): Promise<Res> => {
  const r = await gw.app.inject({ method: method as 'GET', url, payload: payload as object, headers: { ...(cookie ? { cookie } : {}), ...headers } });
  return { status: r.statusCode, body: r.body ? JSON.parse(r.body) : undefined, headers: r.headers };
};
const login = async (username: string, password: string) => {
  const r = await gw.app.inject({ method: 'POST', url: '/api/auth/login', payload: { username, password } });
  assert.equal(r.statusCode, 200, r.body);
  return String(r.headers['set-cookie']).split(';')[0]!;
};

before(async () => {
  dataDir = tempDir('cy-acc-');
  runtime = new FakeRuntime();
  gw = await startGateway(loadConfig({ env: {}, flags: { dataDir } }), { runtime, listen: false, log: pino({ level: 'silent' }), env: { CODEYARD_ADMIN_PASSWORD: 'admin-password-1' } });
  admin = await login('admin', 'admin-password-1');
});

after(async () => {
  await gw.close();
  await runtime.closeAll();
});

test('the session secret is generated on first start in a 0600 file', () => {
  assert.equal(statSync(join(dataDir, 'session-secret')).mode & 0o777, 0o600);
});

test('users: create with validation, list, get, conflicts', async () => {
  const bad = [
    [{ username: 'Dan', password: 'longenough1' }, /username: must be 1–32 lowercase/],
    [{ username: 'dan_1', password: 'longenough1' }, /username/],
    [{ username: '-dan', password: 'longenough1' }, /username/],
    [{ username: 'a'.repeat(33), password: 'longenough1' }, /username/],
    [{ username: 'dan', password: 'short' }, /password: must be at least 8 characters/],
    [{ username: 'dan', password: 'longenough1', role: 'root' }, /role/],
    [{ username: 'dan', password: 'longenough1', limits: { maxMemoryMB: '4G' } }, /limits\.maxMemoryMB: expected a whole number of megabytes/],
    [{ username: 'dan', password: 'longenough1', shell: '/bin/sh' }, /unknown field in body: shell/],
  ] as const;
  for (const [body, message] of bad) {
    const r = await call(admin, 'POST', '/api/users', body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.match(r.body.message, message);
  }
  const created = await call(admin, 'POST', '/api/users', { username: 'dan', password: 'dan-password-1', limits: { maxSandboxes: 2, maxMemoryMB: 3000 } });
  assert.equal(created.status, 201);
  assert.deepEqual(created.body.limits, { maxSandboxes: 2, maxMemoryMB: 3000, maxCpu: null });
  assert.equal(created.body.password, undefined);
  assert.equal((await call(admin, 'POST', '/api/users', { username: 'dan', password: 'dan-password-1' })).status, 409);
  assert.deepEqual((await call(admin, 'GET', '/api/users')).body.map((u: { username: string }) => u.username), ['admin', 'dan']);
  assert.equal((await call(admin, 'GET', '/api/users/dan')).body.role, 'user');
  assert.equal((await call(admin, 'GET', '/api/users/nobody')).status, 404);
});

test('quotas: beyond maxSandboxes or maxMemoryMB gets 403 naming the limit and the use', async () => {
  const dan = await login('dan', 'dan-password-1');
  assert.equal((await call(dan, 'POST', '/api/sandboxes?wait=true', { templateID: 'vscode', memoryMB: 2048 })).status, 201);
  const tooMuch = await call(dan, 'POST', '/api/sandboxes', { templateID: 'vscode', memoryMB: 1024 });
  assert.equal(tooMuch.status, 403);
  assert.equal(tooMuch.body.message, 'quota: maxMemoryMB for dan is 3000; running sandboxes hold 2048 and this one needs 1024: stop one, or ask for less memoryMB');
  assert.equal((await call(dan, 'POST', '/api/sandboxes?wait=true', { templateID: 'vscode', memoryMB: 512 })).status, 201);
  const third = await call(dan, 'POST', '/api/sandboxes', { templateID: 'vscode', memoryMB: 256 });
  assert.equal(third.status, 403);
  assert.match(third.body.message, /quota: maxSandboxes for dan is 2 and 2 exist/);
  await call(admin, 'PATCH', '/api/users/dan', { limits: { maxSandboxes: null, maxCpu: 2.5 } });
  const cpu = await call(dan, 'POST', '/api/sandboxes', { templateID: 'vscode', memoryMB: 256, cpuCount: 1 });
  assert.equal(cpu.status, 403);
  assert.match(cpu.body.message, /quota: maxCpu for dan is 2.5; running sandboxes hold 2 and this one needs 1/);
  const audit = (await call(admin, 'GET', '/api/audit?user=dan&action=sandbox.create')).body as { outcome: string }[];
  assert.deepEqual(audit.map((e) => e.outcome), ['denied', 'denied', 'ok', 'denied', 'ok']);
});

test('own password change needs the old password and ends the other sessions; admin reset ends them all', async () => {
  const first = await login('dan', 'dan-password-1');
  const second = await login('dan', 'dan-password-1');
  const wrong = await call(first, 'POST', '/api/me/password', { oldPassword: 'nope-nope', newPassword: 'dan-password-2' });
  assert.equal(wrong.status, 403);
  assert.match(wrong.body.message, /oldPassword: does not match/);
  assert.equal((await call(first, 'POST', '/api/me/password', { oldPassword: 'dan-password-1', newPassword: 'dan-password-2' })).status, 204);
  assert.equal((await call(first, 'GET', '/api/me')).status, 200, 'the session that changed it stays');
  assert.equal((await call(second, 'GET', '/api/me')).status, 401);
  const third = await login('dan', 'dan-password-2');
  assert.equal((await call(admin, 'PATCH', '/api/users/dan', { password: 'dan-password-3' })).status, 200);
  assert.equal((await call(first, 'GET', '/api/me')).status, 401);
  assert.equal((await call(third, 'GET', '/api/me')).status, 401);
  const fourth = await login('dan', 'dan-password-3');
  assert.equal((await call(fourth, 'POST', '/api/auth/logout-all')).status, 204);
  assert.equal((await call(fourth, 'GET', '/api/me')).status, 401);
});

test('the last active admin cannot be demoted, disabled or deleted; nobody deletes themselves', async () => {
  assert.match((await call(admin, 'PATCH', '/api/users/admin', { role: 'user' })).body.message, /last active admin/);
  assert.match((await call(admin, 'PATCH', '/api/users/admin', { disabled: true })).body.message, /last active admin/);
  assert.match((await call(admin, 'DELETE', '/api/users/admin')).body.message, /cannot delete your own account/);
});

test('deleting a user stops their sandboxes and keeps them unless purged', async () => {
  await call(admin, 'POST', '/api/users', { username: 'eve', password: 'eve-password-1' });
  const eve = await login('eve', 'eve-password-1');
  const box = (await call(eve, 'POST', '/api/sandboxes?wait=true', { templateID: 'vscode' })).body.sandboxID;
  assert.equal((await call(admin, 'DELETE', '/api/users/eve')).status, 204);
  assert.equal((await call(eve, 'GET', '/api/me')).status, 401);
  const kept = await call(admin, 'GET', `/api/sandboxes/${box}`);
  assert.equal(kept.body.state, 'stopped');
  assert.equal(kept.body.owner, 'eve');
  assert.ok(!runtime.calls.includes(`remove ${box}`));
  assert.equal((await call(admin, 'GET', '/api/users/eve')).status, 404);
  assert.match((await call(admin, 'POST', '/api/users', { username: 'eve', password: 'eve-password-1' })).body.message, /purge it first/);
  assert.equal((await call(admin, 'DELETE', '/api/users/eve?purge=true')).status, 204);
  assert.equal((await call(admin, 'GET', `/api/sandboxes/${box}`)).status, 404);
  assert.ok(runtime.calls.includes(`remove ${box}`));
  assert.equal((await call(admin, 'POST', '/api/users', { username: 'eve', password: 'eve-password-1' })).status, 201);
});

test('cookie-authenticated changes from another origin are refused; API keys and same-origin pass', async () => {
  const foreign = await call(admin, 'POST', '/api/keys', { name: 'x' }, { origin: 'https://evil.example' });
  assert.equal(foreign.status, 403);
  assert.match(foreign.body.message, /cross-site request refused/);
  assert.equal((await call(admin, 'POST', '/api/keys', { name: 'x' }, { 'sec-fetch-site': 'cross-site' })).status, 403);
  assert.equal((await call(admin, 'POST', '/api/keys', { name: 'x' }, { origin: 'http://localhost:80' })).status, 201);
  const key = (await call(admin, 'POST', '/api/keys', { name: 'y' })).body.key;
  assert.equal((await call(undefined, 'POST', '/api/keys', { name: 'z' }, { 'x-api-key': key, origin: 'https://elsewhere.example' })).status, 201);
  assert.equal((await call(undefined, 'POST', '/api/auth/login', { username: 'admin', password: 'admin-password-1' }, { origin: 'https://evil.example' })).status, 403);
});

test('gateway answers carry security headers', async () => {
  const r = await call(admin, 'GET', '/api/me');
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
  assert.equal(r.headers['x-frame-options'], 'DENY');
  assert.equal(r.headers['referrer-policy'], 'no-referrer');
  assert.equal(r.headers['cache-control'], 'no-store');
  const page = await gw.app.inject({ method: 'GET', url: '/login' });
  assert.match(String(page.headers['content-security-policy']), /default-src 'none'/);
});

test('audit log: who did what, filterable by user, action prefix and time; admin only', async () => {
  const since = new Date().toISOString();
  const dan = await login('dan', 'dan-password-3');
  const key = (await call(dan, 'POST', '/api/keys', { name: 'audited' })).body;
  await call(dan, 'DELETE', `/api/keys/${key.id}`);
  const mine = (await call(admin, 'GET', `/api/audit?user=dan&since=${encodeURIComponent(since)}`)).body as { action: string; actor: string; ip: string; at: string }[];
  assert.deepEqual(mine.map((e) => e.action), ['key.delete', 'key.create', 'auth.login']);
  assert.ok(mine.every((e) => e.actor === 'dan' && e.ip && e.at >= since));
  const keys = (await call(admin, 'GET', `/api/audit?action=key.&since=${encodeURIComponent(since)}`)).body as { action: string }[];
  assert.deepEqual(keys.map((e) => e.action), ['key.delete', 'key.create']);
  assert.equal((await call(dan, 'GET', '/api/audit')).status, 403);
  assert.match((await call(admin, 'GET', '/api/audit?since=yesterday')).body.message, /since/);
  assert.doesNotMatch(JSON.stringify((await call(admin, 'GET', '/api/audit?limit=1000')).body), /password-\d|cy_[A-Za-z0-9_-]{20}/, 'no secret in the audit log');
});
