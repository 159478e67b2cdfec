// The model proxy's bookkeeping: usage totals and groups, the monthly budget
// (a user's own key is outside it), key hints, and the AI routes over inject().
// The proxy itself, with a real opencode, is in test/e2e/model-proxy.test.ts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Store } from '../../src/store/store.ts';
import { ProviderKeys } from '../../src/ai/provider-keys.ts';
import { monthlyBudget, monthStart } from '../../src/ai/budget.ts';
import { loadConfig } from '../../src/config.ts';
import { startGateway, type Gateway } from '../../src/gateway.ts';
import { hashPassword } from '../../src/auth/passwords.ts';
import { FakeRuntime } from '../helpers/fake-runtime.ts';
import { fakeProviderConfig, startFakeModelProvider } from '../helpers/fake-model-provider.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const call = (userId: number, at: string, provider: string, model: string, input: number, output: number, ownKey = false) =>
  ({ at, userId, sandboxID: 's1', provider, model, inputTokens: input, outputTokens: output, latencyMs: 5, status: 200, ownKey });

test('usage: totals count every call of the period, groups are by user, provider and model; own-key calls are outside the budget', () => {
  const s = Store.inMemory();
  const dan = s.users.create('dan', 'h', 'user');
  const eve = s.users.create('eve', 'h', 'user');
  const now = new Date('2025-11-20T12:00:00Z');
  s.ai.recordUsage(call(dan.id, '2025-10-31T23:59:59.000Z', 'anthropic', 'claude', 1000, 1000));
  s.ai.recordUsage(call(dan.id, '2025-11-02T10:00:00.000Z', 'anthropic', 'claude', 10, 5));
  s.ai.recordUsage(call(dan.id, '2025-11-03T10:00:00.000Z', 'anthropic', 'claude', 20, 5));
  s.ai.recordUsage(call(dan.id, '2025-11-04T10:00:00.000Z', 'openai', 'gpt', 7, 3, true));
  s.ai.recordUsage(call(eve.id, '2025-11-05T10:00:00.000Z', 'openai', 'gpt', 1, 1));

  const november = { from: monthStart(now), to: '2025-12-01T00:00:00.000Z' };
  assert.equal(november.from, '2025-11-01T00:00:00.000Z');
  assert.deepEqual(s.ai.totals(november), { calls: 4, inputTokens: 38, outputTokens: 14 });
  assert.equal(s.ai.usage({ ...november, limit: 1 }).length, 1, 'the page is limited, the totals are not');
  assert.deepEqual(s.ai.grouped(november), [
    { userId: dan.id, provider: 'anthropic', model: 'claude', calls: 2, inputTokens: 30, outputTokens: 10, ownKeyCalls: 0 },
    { userId: dan.id, provider: 'openai', model: 'gpt', calls: 1, inputTokens: 7, outputTokens: 3, ownKeyCalls: 1 },
    { userId: eve.id, provider: 'openai', model: 'gpt', calls: 1, inputTokens: 1, outputTokens: 1, ownKeyCalls: 0 },
  ]);
  assert.deepEqual(monthlyBudget(s, dan.id, 100, now), { since: '2025-11-01T00:00:00.000Z', monthlyTokens: 100, usedTokens: 40, remainingTokens: 60 });
  assert.equal(monthlyBudget(s, dan.id, null, now).remainingTokens, null);
  assert.equal(monthlyBudget(s, dan.id, 10, now).remainingTokens, 0);
});

test('provider keys: a 0600 file; hints show the last four characters of a long key only', () => {
  const dir = tempDir('cy-keys-');
  const keys = new ProviderKeys(dir);
  keys.set('anthropic', 'sk-ant-0123456789abcdefWXYZ');
  keys.set('openai', 'short-key');
  keys.setForUser(7, 'openai', 'sk-own-key-of-user-seven-1234');
  assert.equal(statSync(join(dir, 'ai-keys.json')).mode & 0o777, 0o600);
  assert.deepEqual(keys.configured(), [{ provider: 'anthropic', hint: '…WXYZ' }, { provider: 'openai', hint: null }]);
  assert.deepEqual(keys.configuredForUser(7), [{ provider: 'openai', hint: '…1234' }]);
  assert.deepEqual(keys.forUser('openai', 7), { key: 'sk-own-key-of-user-seven-1234', own: true });
  assert.deepEqual(keys.forUser('openai', 8), { key: 'short-key', own: false });
  assert.ok(keys.delete('anthropic'));
  assert.ok(!readFileSync(join(dir, 'ai-keys.json'), 'utf8').includes('WXYZ'));
});

let gw: Gateway;
let runtime: FakeRuntime;
let admin: string;
let dan: string;

const inject = async (cookie: string, method: string, url: string, payload?: unknown) => {
  const r = await gw.app.inject({ method: method as 'GET', url, payload: payload as object, headers: { cookie } });
  return { status: r.statusCode, body: r.body ? JSON.parse(r.body) : undefined };
};
const login = async (username: string, password: string) => {
  const r = await gw.app.inject({ method: 'POST', url: '/api/auth/login', payload: { username, password } });
  return String(r.headers['set-cookie']).split(';')[0]!;
};

before(async () => {
  const dataDir = tempDir('cy-ai-');
  runtime = new FakeRuntime();
  writeFileSync(join(dataDir, 'codeyard.yaml'), 'ai:\n  monthlyTokens: 5000\n');
  const config = loadConfig({ env: {}, flags: { dataDir } });
  gw = await startGateway(config, { runtime, listen: false, log: pino({ level: 'silent' }), env: {} });
  admin = await login('admin', readFileSync(join(dataDir, 'initial-admin-password'), 'utf8').trim());
  gw.store.users.create('dan', await hashPassword('dan-password-1'), 'user');
  dan = await login('dan', 'dan-password-1');
});

after(async () => {
  await gw.close();
  await runtime.closeAll();
});

test('routes: every configured provider with whether it has a key; settings and budget for everyone; usage scoped to its user', async () => {
  const before = (await inject(admin, 'GET', '/api/ai/keys')).body;
  assert.deepEqual(before, [
    { provider: 'anthropic', kind: 'anthropic', configured: true, set: false, hint: null },
    { provider: 'openai', kind: 'openai', configured: true, set: false, hint: null },
  ]);
  assert.equal((await inject(admin, 'PUT', '/api/ai/keys/anthropic', { key: 'sk-ant-api03-abcdefghij-LAST' })).status, 204);
  const after = (await inject(admin, 'GET', '/api/ai/keys')).body;
  assert.deepEqual(after[0], { provider: 'anthropic', kind: 'anthropic', configured: true, set: true, hint: '…LAST' });
  assert.equal((await inject(dan, 'GET', '/api/ai/keys')).status, 403);

  assert.equal((await inject(dan, 'PUT', '/api/me/ai-keys/openai', { key: 'sk-dans-own-openai-key-9876' })).status, 204);
  const mine = (await inject(dan, 'GET', '/api/me/ai-keys')).body;
  assert.deepEqual(mine.map((k: { provider: string; set: boolean; hint: string | null }) => [k.provider, k.set, k.hint]), [['anthropic', false, null], ['openai', true, '…9876']]);
  assert.equal((await inject(dan, 'DELETE', '/api/me/ai-keys/openai')).status, 204);
  assert.equal((await inject(dan, 'DELETE', '/api/me/ai-keys/openai')).status, 404);

  const settings = (await inject(dan, 'GET', '/api/ai/settings')).body;
  assert.deepEqual({ ...settings, providers: settings.providers.map((p: { provider: string }) => p.provider) },
    { defaultModel: 'anthropic/claude-sonnet-4-5', requestsPerMinute: 60, monthlyTokens: 5000, upstreamTimeoutSeconds: 120, providers: ['anthropic', 'openai'] });
  const danId = gw.store.users.byUsername('dan')!.id;
  gw.store.ai.recordUsage(call(danId, new Date().toISOString(), 'anthropic', 'claude', 300, 200));
  const budget = (await inject(dan, 'GET', '/api/me/ai-budget')).body;
  assert.deepEqual([budget.monthlyTokens, budget.usedTokens, budget.remainingTokens], [5000, 500, 4500]);

  const summary = (await inject(admin, 'GET', '/api/ai/usage/summary?user=dan')).body;
  assert.deepEqual(summary.rows, [{ user: 'dan', provider: 'anthropic', model: 'claude', calls: 1, inputTokens: 300, outputTokens: 200, ownKeyCalls: 0 }]);
  assert.deepEqual((await inject(dan, 'GET', '/api/ai/usage/summary')).body.totals, { calls: 1, inputTokens: 300, outputTokens: 200 });
  assert.deepEqual((await inject(admin, 'GET', '/api/ai/usage/summary')).body.totals, { calls: 1, inputTokens: 300, outputTokens: 200 });
  assert.equal((await inject(dan, 'GET', '/api/ai/usage/summary?user=admin')).status, 403);
  const backwards = await inject(admin, 'GET', '/api/ai/usage/summary?from=2025-11-02T00:00:00Z&to=2025-11-01T00:00:00Z');
  assert.equal(backwards.status, 400);
  assert.match(backwards.body.message, /^to: must be later than from/);
  const bad = await inject(admin, 'GET', '/api/ai/usage/summary?from=yesterday');
  assert.equal(bad.status, 400);
  assert.match(bad.body.message, /^from: /);
});

test('the proxy: past requestsPerMinute a 429 that says when to retry; a provider with no key a 403 that says who must add one', async () => {
  const fake = await startFakeModelProvider();
  const dataDir = tempDir('cy-ai-proxy-');
  writeFileSync(join(dataDir, 'codeyard.yaml'), fakeProviderConfig(fake.port, ['  requestsPerMinute: 2']));
  const rt = new FakeRuntime();
  const proxyGw = await startGateway(loadConfig({ env: {}, flags: { dataDir, port: 0 } }), { runtime: rt, log: pino({ level: 'silent' }), env: {} });
  try {
    const cookie = await (async () => {
      const r = await proxyGw.app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'admin', password: readFileSync(join(dataDir, 'initial-admin-password'), 'utf8').trim() } });
      return String(r.headers['set-cookie']).split(';')[0]!;
    })();
    const created = await proxyGw.app.inject({ method: 'POST', url: '/api/sandboxes?wait=true', payload: { templateID: 'vscode', workspace: null }, headers: { cookie } });
    const { sandboxID } = JSON.parse(created.body);
    proxyGw.store.ai.setToken(sandboxID, 'cyai_unit-test-token');
    await proxyGw.app.inject({ method: 'PUT', url: '/api/ai/keys/fake', payload: { key: 'sk-unit-test-key' }, headers: { cookie } });
    const ask = (provider: string) => fetch(`${proxyGw.url}/ai/${provider}/chat/completions`, { method: 'POST', headers: { authorization: 'Bearer cyai_unit-test-token', 'content-type': 'application/json' }, body: '{"model":"fake-model"}' });

    const noKey = await ask('fakeanthropic');
    assert.equal(noKey.status, 403);
    assert.match((await noKey.json()).error.message, /no API key for model provider "fakeanthropic": an admin must add one/);
    assert.equal((await ask('fake')).status, 200);
    assert.equal((await ask('fake')).status, 200);
    const limited = await ask('fake');
    assert.equal(limited.status, 429);
    const retryAfter = Number(limited.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 60, String(retryAfter));
    assert.match((await limited.json()).error.message, /^rate limit: at most 2 model calls a minute; try again in \d+ s$/);
  } finally {
    await proxyGw.close();
    await rt.closeAll();
    await fake.close();
  }
});
