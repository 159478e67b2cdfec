// Default per-user limits, per-sandbox ceilings and a user's share of the
// host's memory: the rules (pure), the stored encoding, the lifecycle over a
// fake driver, and the users API over fastify's inject().
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.ts';
import { startGateway, type Gateway } from '../../src/gateway.ts';
import { MemoryAdmission } from '../../src/sandboxes/admission.ts';
import { checkSandboxSize, checkUserQuota, limitsInForce } from '../../src/sandboxes/limits.ts';
import { SandboxService, DEFAULT_SUPERVISION } from '../../src/sandboxes/sandbox-service.ts';
import { CapacityError, QuotaExceededError } from '../../src/errors.ts';
import { Store } from '../../src/store/store.ts';
import type { SandboxRecord } from '../../src/store/sandboxes.ts';
import { WorkspaceService } from '../../src/workspaces/workspace-service.ts';
import { FakeRuntime } from '../helpers/fake-runtime.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const GiB = 1024 ** 3;
const DEFAULTS = { maxSandboxes: 4, maxMemoryMB: 8192, maxCpu: 2 };

/** Runs `fn` and returns what it threw. */
const thrown = (fn: () => unknown): unknown => { try { fn(); } catch (err) { return err; } assert.fail('expected a throw'); };

test('limits in force: a set number or null wins; "default" is users.defaultLimits for users and no limit for admins', () => {
  const user = { role: 'user' as const, limits: { maxSandboxes: 'default' as const, maxMemoryMB: 3000, maxCpu: null } };
  assert.deepEqual(limitsInForce(user, DEFAULTS), { maxSandboxes: 4, maxMemoryMB: 3000, maxCpu: null });
  assert.deepEqual(limitsInForce({ ...user, role: 'admin' }, DEFAULTS), { maxSandboxes: null, maxMemoryMB: 3000, maxCpu: null });
  assert.deepEqual(limitsInForce(user), { maxSandboxes: null, maxMemoryMB: 3000, maxCpu: null }, 'no defaults configured: none');
});

test('stored limits: NULL columns (rows from before defaults) follow the default, -1 is no limit, numbers stay', () => {
  const store = Store.inMemory();
  const dan = store.users.create('dan', 'h', 'user', { maxSandboxes: 'default', maxMemoryMB: null, maxCpu: 1.5 });
  assert.deepEqual(dan.limits, { maxSandboxes: 'default', maxMemoryMB: null, maxCpu: 1.5 });
  assert.deepEqual(store.db.prepare('SELECT max_sandboxes, max_memory_mb, max_cpu FROM users WHERE id = ?').get(dan.id),
    { max_sandboxes: null, max_memory_mb: -1, max_cpu: 1.5 });
  // An account created before this version: every limit NULL.
  store.db.prepare('UPDATE users SET max_sandboxes = NULL, max_memory_mb = NULL, max_cpu = NULL WHERE id = ?').run(dan.id);
  assert.deepEqual(store.users.byId(dan.id)!.limits, { maxSandboxes: 'default', maxMemoryMB: 'default', maxCpu: 'default' });
  assert.deepEqual(store.users.update(dan.id, { limits: { maxMemoryMB: null, maxCpu: 2 } })!.limits, { maxSandboxes: 'default', maxMemoryMB: null, maxCpu: 2 });
  assert.deepEqual(store.users.create('eve', 'h', 'user').limits, { maxSandboxes: null, maxMemoryMB: null, maxCpu: null }, 'the store\'s own default: none');
});

test('per-sandbox ceilings: past sandboxes.maxMemoryMB or maxCpuCount is 403 quota_exceeded naming the key', () => {
  const ceilings = { maxMemoryMB: 8192, maxCpuCount: 2 };
  assert.doesNotThrow(() => checkSandboxSize({ memoryMB: 8192, cpuCount: 2 }, ceilings));
  const memory = thrown(() => checkSandboxSize({ memoryMB: 16384, cpuCount: 1 }, ceilings));
  assert.ok(memory instanceof QuotaExceededError);
  assert.deepEqual([memory.status, memory.kind, memory.limit], [403, 'quota_exceeded', 'sandboxes.maxMemoryMB']);
  assert.equal(memory.message, 'memoryMB 16384: a sandbox may have at most 8192 on this gateway (sandboxes.maxMemoryMB): ask for less, or an admin raises sandboxes.maxMemoryMB');
  const cpu = thrown(() => checkSandboxSize({ memoryMB: 512, cpuCount: 4 }, ceilings)) as QuotaExceededError;
  assert.equal(cpu.limit, 'sandboxes.maxCpuCount');
  assert.match(cpu.message, /^cpuCount 4: a sandbox may have at most 2 on this gateway \(sandboxes\.maxCpuCount\)/);
  const existing = thrown(() => checkSandboxSize({ memoryMB: 16384, cpuCount: 1 }, ceilings, 'abc')) as QuotaExceededError;
  assert.match(existing.message, /^sandbox abc has memoryMB 16384, more than one sandbox may have on this gateway \(sandboxes\.maxMemoryMB is 8192\): delete it and create one with less/);
  assert.doesNotThrow(() => checkSandboxSize({ memoryMB: 262144, cpuCount: 64 }, undefined), 'no ceilings configured');
});

test('a limit that comes from the defaults names its config key and who can raise it', () => {
  const dan = { username: 'dan', role: 'user' as const, limits: { maxSandboxes: 'default' as const, maxMemoryMB: 'default' as const, maxCpu: 1 } };
  const box = (id: string, state: SandboxRecord['state'], memoryMB = 2048) => ({ sandboxID: id, state, memoryMB, cpuCount: 0.5 }) as SandboxRecord;
  const four = [box('a', 'stopped'), box('b', 'stopped'), box('c', 'running'), box('d', 'stopped')];
  const count = thrown(() => checkUserQuota(dan, limitsInForce(dan, DEFAULTS), four, { memoryMB: 512, cpuCount: 0.5 })) as QuotaExceededError;
  assert.equal(count.limit, 'maxSandboxes');
  assert.equal(count.message, 'quota: maxSandboxes for dan is 4 (users.defaultLimits.maxSandboxes) and 4 exist; delete one first; an admin can raise it for dan (limits.maxSandboxes)');
  // Starting one of them again is not a new sandbox; stopped ones hold no memory.
  assert.doesNotThrow(() => checkUserQuota(dan, limitsInForce(dan, DEFAULTS), four, { memoryMB: 2048, cpuCount: 0.5 }, 'a'));
  const memory = thrown(() => checkUserQuota(dan, limitsInForce(dan, DEFAULTS), [box('c', 'running', 6144)], { memoryMB: 4096, cpuCount: 0.5 })) as QuotaExceededError;
  assert.equal(memory.message, 'quota: maxMemoryMB for dan is 8192 (users.defaultLimits.maxMemoryMB); running sandboxes hold 6144 and this one needs 4096: stop one, or ask for less memoryMB; an admin can raise it for dan (limits.maxMemoryMB)');
  const cpu = thrown(() => checkUserQuota(dan, limitsInForce(dan, DEFAULTS), [box('c', 'running', 512)], { memoryMB: 512, cpuCount: 1 })) as QuotaExceededError;
  assert.equal(cpu.message, 'quota: maxCpu for dan is 1; running sandboxes hold 0.5 and this one needs 1: stop one, or ask for fewer cpuCount', 'a limit set for the user reads as before');
});

test('userShare: one user\'s sandboxes may hold only their share of what the host admits (403); others and admins are not refused', () => {
  // 8 GiB host, memoryShare 0.5: 4 GiB admitted; userShare 0.5: 2 GiB per user.
  const admission = new MemoryAdmission({ memoryShare: 0.5, userShare: 0.5, totalBytes: 8 * GiB });
  const ann = { id: 1, username: 'ann', role: 'user' as const };
  const bob = { id: 2, username: 'bob', role: 'user' as const };
  const admin = { id: 3, username: 'admin', role: 'admin' as const };
  const records = [
    { sandboxID: 'a1', ownerId: 1, state: 'running', memoryMB: 1024 },
    { sandboxID: 'a2', ownerId: 1, state: 'restarting', memoryMB: 1024 },
    { sandboxID: 'a3', ownerId: 1, state: 'stopped', memoryMB: 4096 },
  ] as SandboxRecord[];
  const refused = thrown(() => admission.admit(records, 512, undefined, ann));
  assert.ok(refused instanceof QuotaExceededError);
  assert.equal(refused.status, 403);
  assert.equal(refused.limit, 'sandboxes.userShare');
  assert.equal(refused.message, 'ann\'s sandboxes hold 2 GiB and one user may hold 2 GiB (sandboxes.userShare 50 % of the 4 GiB this host admits), to leave room for others: ' +
    'a 0.5 GiB sandbox would pass it; stop one of ann\'s sandboxes or ask for less memoryMB (an admin can raise sandboxes.userShare)');
  // Starting a2 again does not count it twice.
  assert.doesNotThrow(() => admission.admit(records, 1024, 'a2', ann));
  assert.doesNotThrow(() => admission.admit(records, 2048, undefined, bob), 'bob still has his share');
  assert.doesNotThrow(() => admission.admit(records, 2048, undefined, admin), 'admins are exempt');
  assert.throws(() => admission.admit(records, 2049, undefined, admin), CapacityError, 'the host\'s own limit still holds');
  assert.doesNotThrow(() => new MemoryAdmission({ memoryShare: 0.5, totalBytes: 8 * GiB }).admit(records, 2048, undefined, ann), 'no userShare: off');
  assert.doesNotThrow(() => new MemoryAdmission({ memoryShare: 0, userShare: 0.5, totalBytes: 8 * GiB }).admit(records, 65536, undefined, ann), 'admission off: share off');
});

test('lifecycle: the greedy user is refused at their share with 403 and another user\'s create still runs', async (t) => {
  const store = Store.inMemory();
  const runtime = new FakeRuntime();
  const log = pino({ level: 'silent' });
  const ann = store.users.create('ann', 'h', 'user');
  const bob = store.users.create('bob', 'h', 'user');
  const service = new SandboxService({
    store, runtime, log, workspaces: new WorkspaceService({ store, dataDir: tempDir('cy-limits-ws-'), log }),
    defaults: { memoryMB: 512, cpuCount: 1 }, startTimeoutMs: 10_000,
    // 4 GiB host, all of it admitted; 2 GiB per user.
    admission: new MemoryAdmission({ memoryShare: 1, userShare: 0.5, totalBytes: 4 * GiB }),
    limits: { userDefaults: DEFAULTS, sandbox: { maxMemoryMB: 1024, maxCpuCount: 2 } },
    supervision: { ...DEFAULT_SUPERVISION, checkIntervalMs: 20 },
  });
  t.after(async () => { await service.close(); await runtime.closeAll(); });
  const create = async (owner: typeof ann, memoryMB = 1024) => service.settled(service.create(owner, { templateID: 'vscode', workspace: null, memoryMB }).sandboxID);
  assert.equal((await create(ann)).state, 'running');
  const second = await create(ann);
  assert.equal(second.state, 'running');
  assert.throws(() => service.create(ann, { templateID: 'vscode', workspace: null, memoryMB: 512 }), (err: QuotaExceededError) => err.limit === 'sandboxes.userShare');
  assert.throws(() => service.create(bob, { templateID: 'vscode', workspace: null, memoryMB: 2048 }), (err: QuotaExceededError) => err.limit === 'sandboxes.maxMemoryMB');
  assert.equal((await create(bob)).state, 'running', 'bob is not refused for what ann holds');
  assert.equal(service.listFor(ann).length, 2, 'the refused create left no record');
  // A stop frees ann's share; starting it again is checked the same way.
  await service.stop(ann, second.sandboxID);
  assert.equal((await create(ann, 512)).state, 'running');
  await assert.rejects(service.start(ann, second.sandboxID), (err: QuotaExceededError) => err.limit === 'sandboxes.userShare');
});

let gw: Gateway;
let runtime: FakeRuntime;
type Res = { status: number; body: any };
const call = async (cookie: string | undefined, method: string, url: string, payload?: unknown): Promise<Res> => {
  const r = await gw.app.inject({ method: method as 'GET', url, payload: payload as object, headers: cookie ? { cookie } : {} });
  return { status: r.statusCode, body: r.body ? JSON.parse(r.body) : undefined };
};
const login = async (username: string, password: string) => {
  const r = await gw.app.inject({ method: 'POST', url: '/api/auth/login', payload: { username, password } });
  assert.equal(r.statusCode, 200, r.body);
  return String(r.headers['set-cookie']).split(';')[0]!;
};
let admin: string;

before(async () => {
  const dataDir = tempDir('cy-limits-');
  runtime = new FakeRuntime();
  writeFileSync(join(dataDir, 'codeyard.yaml'), 'users:\n  defaultLimits:\n    maxSandboxes: 2\n    maxMemoryMB: 3072\nsandboxes:\n  maxMemoryMB: 2048\n  maxCpuCount: 2\n');
  gw = await startGateway(loadConfig({ env: {}, flags: { dataDir } }), { runtime, listen: false, log: pino({ level: 'silent' }), env: { CODEYARD_ADMIN_PASSWORD: 'admin-password-1' } });
  admin = await login('admin', 'admin-password-1');
});

after(async () => {
  await gw?.close();
  await runtime?.closeAll();
});

test('API: a new user gets the configured defaults (shown in force and as set); null grants no limit; "default" goes back', async () => {
  const created = await call(admin, 'POST', '/api/users', { username: 'dan', password: 'dan-password-1' });
  assert.equal(created.status, 201);
  assert.deepEqual(created.body.limits, { maxSandboxes: 2, maxMemoryMB: 3072, maxCpu: null });
  assert.deepEqual(created.body.limitSettings, { maxSandboxes: 'default', maxMemoryMB: 'default', maxCpu: 'default' });
  const dan = await login('dan', 'dan-password-1');
  assert.deepEqual((await call(dan, 'GET', '/api/me')).body.limits, { maxSandboxes: 2, maxMemoryMB: 3072, maxCpu: null });
  assert.deepEqual((await call(admin, 'GET', '/api/me')).body.limits, { maxSandboxes: null, maxMemoryMB: null, maxCpu: null }, 'admins follow no default');

  const opened = await call(admin, 'PATCH', '/api/users/dan', { limits: { maxSandboxes: null, maxMemoryMB: 4096 } });
  assert.deepEqual(opened.body.limits, { maxSandboxes: null, maxMemoryMB: 4096, maxCpu: null });
  assert.deepEqual(opened.body.limitSettings, { maxSandboxes: null, maxMemoryMB: 4096, maxCpu: 'default' });
  const back = await call(admin, 'PATCH', '/api/users/dan', { limits: { maxSandboxes: 'default', maxMemoryMB: 'default' } });
  assert.deepEqual(back.body.limits, { maxSandboxes: 2, maxMemoryMB: 3072, maxCpu: null });
  const bad = await call(admin, 'PATCH', '/api/users/dan', { limits: { maxSandboxes: 'lots' } });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.message, 'limits.maxSandboxes: expected a whole number of sandboxes, null for no limit, or "default" for the configured default');
  assert.match((await call(admin, 'PATCH', '/api/users/dan', { limits: { maxCpu: -1 } })).body.message, /limits\.maxCpu: .*>=0/);
});

test('API: at the default maxSandboxes, and past sandboxes.maxMemoryMB, creates get 403 quota_exceeded saying which and what to do', async () => {
  const dan = await login('dan', 'dan-password-1');
  const big = await call(dan, 'POST', '/api/sandboxes', { templateID: 'vscode', memoryMB: 4096 });
  assert.equal(big.status, 403);
  assert.equal(big.body.error, 'quota_exceeded');
  assert.match(big.body.message, /^memoryMB 4096: a sandbox may have at most 2048 on this gateway \(sandboxes\.maxMemoryMB\): ask for less/);
  const bigAdmin = await call(admin, 'POST', '/api/sandboxes', { templateID: 'vscode', memoryMB: 4096 });
  assert.equal(bigAdmin.status, 403, 'the ceiling holds for admins too');
  for (let i = 0; i < 2; i++) assert.equal((await call(dan, 'POST', '/api/sandboxes?wait=true', { templateID: 'vscode', memoryMB: 512, workspace: null })).status, 201);
  const third = await call(dan, 'POST', '/api/sandboxes', { templateID: 'vscode', memoryMB: 512, workspace: null });
  assert.equal(third.status, 403);
  assert.deepEqual(third.body, {
    code: 403, error: 'quota_exceeded',
    message: 'quota: maxSandboxes for dan is 2 (users.defaultLimits.maxSandboxes) and 2 exist; delete one first; an admin can raise it for dan (limits.maxSandboxes)',
  });
  const audit = (await call(admin, 'GET', '/api/audit?user=dan&action=sandbox.create')).body as { outcome: string }[];
  assert.deepEqual(audit.map((e) => e.outcome), ['denied', 'ok', 'ok', 'denied']);
  // The admin lets dan have more: no default for maxSandboxes any more.
  await call(admin, 'PATCH', '/api/users/dan', { limits: { maxSandboxes: 3 } });
  assert.equal((await call(dan, 'POST', '/api/sandboxes', { templateID: 'vscode', memoryMB: 512, workspace: null })).status, 201);
});

test('config: the defaults, and a default sandbox size above its ceiling is an error naming both keys', () => {
  const c = loadConfig({ env: {}, flags: { dataDir: tempDir('cy-limits-cfg-') } });
  assert.deepEqual(c.users.defaultLimits, { maxSandboxes: 4, maxMemoryMB: 8192, maxCpu: null, workspaceMB: 10240 });
  assert.equal(c.sandboxes.maxMemoryMB, 8192);
  assert.ok(c.sandboxes.maxCpuCount >= 1);
  assert.equal(c.sandboxes.userShare, 0.5);
  assert.throws(() => loadConfig({ env: {}, flags: { dataDir: tempDir('cy-limits-cfg-'), sandboxes: { defaultMemoryMB: 16384 } } }),
    /config key "sandboxes\.defaultMemoryMB": 16384 is above sandboxes\.maxMemoryMB \(8192\)/);
  assert.throws(() => loadConfig({ env: {}, flags: { dataDir: tempDir('cy-limits-cfg-'), users: { defaultLimits: { maxSandboxes: -1 } } } }),
    /config key "users\.defaultLimits\.maxSandboxes"/);
  assert.throws(() => loadConfig({ env: {}, flags: { dataDir: tempDir('cy-limits-cfg-'), sandboxes: { userShare: 0 } } }), /config key "sandboxes\.userShare"/);
});
