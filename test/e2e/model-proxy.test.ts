// The model proxy with the real opencode CLI inside a real sandbox, against a
// fake model provider (test/helpers/fake-model-provider.ts: OpenAI Chat
// Completions and Anthropic Messages, streaming and not) that records what it
// was sent.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Api, ROOT, sandboxProcesses, startGatewayProcess, type RunningGateway } from '../helpers/gateway-process.ts';
import { fakeProviderConfig, startFakeModelProvider, type FakeModelProvider, type SeenRequest } from '../helpers/fake-model-provider.ts';

const REAL_KEY = 'sk-real-provider-key-never-in-a-sandbox';
let gw: RunningGateway;
let api: Api;
let fake: FakeModelProvider;
let seen: SeenRequest[];
let sandboxID: string;

const exec = async (cmd: string, timeoutMs = 60_000) => {
  const r = await api.call('POST', `/api/sandboxes/${sandboxID}/exec`, { cmd, timeoutMs });
  assert.equal(r.status, 200, r.text);
  return r.body as { exitCode: number; stdout: string; stderr: string };
};

before(async () => {
  fake = await startFakeModelProvider();
  seen = fake.seen;
  gw = await startGatewayProcess({
    config: fakeProviderConfig(fake.port, [
      '    down:',
      '      kind: openai-compatible',
      '      baseUrl: http://127.0.0.1:9/v1',
      '      models: [x]',
      '  monthlyTokens: 50000',
      '  upstreamTimeoutSeconds: 2',
    ]),
  });
  api = await Api.login(gw.url);
  for (const provider of ['fake', 'fakeanthropic', 'down']) {
    assert.equal((await api.call('PUT', `/api/ai/keys/${provider}`, { key: REAL_KEY })).status, 204);
  }
  const created = await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', workspace: null });
  assert.equal(created.body.state, 'running', created.text);
  sandboxID = created.body.sandboxID;
});

after(async () => {
  await fake?.close();
  await gw?.destroy();
});

test('opencode in the sandbox answers through the gateway; the provider saw the real key, the sandbox never had it', { timeout: 120_000 }, async () => {
  const run = await exec('opencode run "say hi" 2>&1', 90_000);
  assert.equal(run.exitCode, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /Hello from the fake/);
  const calls = seen.filter((s) => s.path.startsWith('/v1/chat/completions'));
  assert.ok(calls.length >= 1, 'the fake was called');
  for (const c of calls) assert.equal(c.auth, `Bearer ${REAL_KEY}`, 'the proxy swapped in the real key');
  // Not in its environment (asked inside), its files or any of its processes (read from the host, so the
  // search itself, whose command line would name the key, is not among them).
  const env = (await exec('env')).stdout;
  assert.ok(!env.includes(REAL_KEY) && !env.includes('cyai_'), 'no key or token in the environment');
  for (const dir of ['home', 'workspace', 'run', 'gateway']) {
    const grep = spawnSync('grep', ['-rlsF', REAL_KEY, join(gw.dataDir, 'sandboxes', sandboxID, dir)], { encoding: 'utf8' });
    assert.equal(grep.stdout, '', `the key is in files under ${dir}`);
  }
  const pids = sandboxProcesses(sandboxID);
  assert.ok(pids.length > 2);
  for (const pid of pids) {
    for (const what of ['environ', 'cmdline']) {
      let text = '';
      try { text = readFileSync(`/proc/${pid}/${what}`, 'utf8'); } catch { /* exited */ }
      assert.ok(!text.includes(REAL_KEY), `pid ${pid} ${what}`);
    }
  }
  const usage = (await api.call('GET', '/api/ai/usage')).body;
  const mine = usage.calls.filter((c: { sandboxID: string; provider: string }) => c.sandboxID === sandboxID && c.provider === 'fake');
  assert.ok(mine.length >= 1);
  assert.ok(mine.every((c: { inputTokens: number; outputTokens: number; status: number; user: string }) => c.inputTokens === 11 && c.outputTokens === 4 && c.status === 200 && c.user === 'admin'), JSON.stringify(mine));
});

test('the Anthropic format streams through with its token counts; bad requests get clear errors and the gateway carries on', { timeout: 60_000 }, async () => {
  const base = JSON.parse((await exec('cat "$OPENCODE_CONFIG"')).stdout).provider.fakeanthropic.options;
  const stream = await exec(`curl -sN ${base.baseURL}/messages -H "x-api-key: ${base.apiKey}" -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' -d '{"model":"claude-fake","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}'`);
  assert.match(stream.stdout, /event: message_start[\s\S]*Hello from the fake[\s\S]*message_delta/);
  assert.equal(seen.at(-1)!.apiKey, REAL_KEY);
  const calls = (await api.call('GET', '/api/ai/usage')).body.calls as { provider: string; inputTokens: number; outputTokens: number; model: string }[];
  const anthropic = calls.find((c) => c.provider === 'fakeanthropic')!;
  assert.deepEqual([anthropic.inputTokens, anthropic.outputTokens, anthropic.model], [21, 7, 'claude-fake']);

  const ai = (path: string, init: RequestInit = {}) => fetch(`${gw.url}/ai/${path}`, init);
  const token = base.apiKey as string;
  const noToken = await ai('fake/chat/completions', { method: 'POST', body: '{}' });
  assert.equal(noToken.status, 401);
  assert.match((await noToken.json()).error.message, /no sandbox token/);
  assert.equal((await ai('fake/chat/completions', { method: 'POST', headers: { authorization: 'Bearer cyai_forged' }, body: '{}' })).status, 401);
  const unknown = await ai('nope/v1/x', { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  assert.equal(unknown.status, 404);
  assert.match((await unknown.json()).error.message, /no model provider "nope"/);
  const huge = await ai('fake/chat/completions', { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: Buffer.alloc(21 * 1024 * 1024) }).catch((e: Error) => e);
  if (!(huge instanceof Error)) assert.equal(huge.status, 413);
  const down = await ai('down/chat/completions', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"model":"x"}' });
  assert.equal(down.status, 502);
  assert.match((await down.json()).error.message, /model provider "down" is unreachable/);
  const slow = await ai('fake/chat/completions', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"model":"fake-slow"}' });
  assert.equal(slow.status, 504);
  assert.match((await slow.json()).error.message, /did not answer within 2 s/);
  assert.equal((await fetch(`${gw.url}/healthz`)).status, 200);
});

test('a user\'s own key is used for their calls only, outside the shared budget; without any key the answer says who must add one', { timeout: 120_000 }, async () => {
  const base = JSON.parse((await exec('cat "$OPENCODE_CONFIG"')).stdout).provider.fake.options;
  const call = () => fetch(`${gw.url}/ai/fake/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${base.apiKey}`, 'content-type': 'application/json' }, body: '{"model":"fake-model"}' });
  assert.equal((await api.call('PUT', '/api/me/ai-keys/fake', { key: 'sk-admins-own-key-1' })).status, 204);
  assert.equal((await call()).status, 200);
  assert.equal(seen.at(-1)!.auth, 'Bearer sk-admins-own-key-1');
  const own = (await api.call('GET', '/api/me/ai-keys')).body as { provider: string; set: boolean }[];
  assert.deepEqual(own.filter((k) => k.set).map((k) => k.provider), ['fake']);
  assert.equal((await api.call('DELETE', '/api/me/ai-keys/fake')).status, 204);
  assert.equal((await call()).status, 200);
  assert.equal(seen.at(-1)!.auth, `Bearer ${REAL_KEY}`);
  assert.equal((await api.call('PUT', '/api/me/ai-keys/typo', { key: 'sk-whatever-123' })).status, 404);
  // No key anywhere for a provider: opencode shows the proxy's message, not a stack trace.
  assert.equal((await api.call('DELETE', '/api/ai/keys/down')).status, 204);
  const none = await fetch(`${gw.url}/ai/down/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${base.apiKey}` }, body: '{}' });
  assert.equal(none.status, 403);
  assert.match((await none.json()).error.message, /no API key for model provider "down": an admin must add one/);
  const t0 = Date.now();
  const run = await exec('opencode run -m down/x "hi" 2>&1', 90_000);
  assert.match(run.stdout, /admin must add one/, run.stdout.slice(-600));
  // Not after a minute of retries: a missing key is not a passing outage.
  assert.ok(Date.now() - t0 < 30_000, `opencode took ${Date.now() - t0} ms to report it`);
});

test('past the monthly token budget: 429, and opencode says so', { timeout: 120_000 }, async () => {
  const base = JSON.parse((await exec('cat "$OPENCODE_CONFIG"')).stdout).provider.fake.options;
  // One call that uses more than the whole budget.
  await exec(`curl -s ${base.baseURL}/chat/completions -H "authorization: Bearer ${base.apiKey}" -H 'content-type: application/json' -d '{"model":"fake-big","messages":[{"role":"user","content":"hi"}]}'`);
  const refused = await fetch(`${gw.url}/ai/fake/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${base.apiKey}`, 'content-type': 'application/json' }, body: '{"model":"fake-model"}' });
  assert.equal(refused.status, 429);
  assert.match((await refused.json()).error.message, /monthly token budget used up/);
  const run = await exec('opencode run "say hi again" 2>&1', 90_000);
  assert.match(run.stdout, /budget/i, `opencode reports it: ${run.stdout.slice(-800)}`);
});

test('keys are for admins, set but never read back; usage is one\'s own', async () => {
  const keys = (await api.call('GET', '/api/ai/keys')).body;
  const names = keys.filter((k: { set: boolean }) => k.set).map((k: { provider: string }) => k.provider);
  assert.ok(names.includes('fake') && names.includes('fakeanthropic'), JSON.stringify(names));
  assert.ok(!JSON.stringify(keys).includes(REAL_KEY));
  assert.equal((await api.call('POST', '/api/users', { username: 'uma', password: 'uma-password-1' })).status, 201);
  const uma = await Api.login(gw.url, 'uma', 'uma-password-1');
  assert.equal((await uma.call('PUT', '/api/ai/keys/fake', { key: 'sk-stolen-1234' })).status, 403);
  assert.equal((await uma.call('GET', '/api/ai/usage?user=admin')).status, 403);
  assert.deepEqual((await uma.call('GET', '/api/ai/usage')).body.calls, []);
  // The CLI reads the key from standard input.
  const key = (await api.call('POST', '/api/keys', { name: 'cli' })).body.key;
  const cli = spawnSync(process.execPath, [join(ROOT, 'src/cli/main.ts'), 'ai', '--url', gw.url, '--api-key', key, 'set-key', 'fakeanthropic'], { input: `${REAL_KEY}\n`, encoding: 'utf8' });
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /key for fakeanthropic stored/);
  const bad = await api.call('PUT', '/api/ai/keys/fake', { key: 'short' });
  assert.equal(bad.status, 400);
  assert.match(bad.body.message, /^key: /);
});
