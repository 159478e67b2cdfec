// runtime: docker against the real engine (dockerd, started by `npm test`'s
// setup) and the real workspace image: the browser path, opencode through the
// model proxy, limits, isolation, and recovery from a killed gateway, a
// restarted container and a restarted engine.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { ADMIN_PASSWORD, Api, ROOT, startGatewayProcess, tempDataDir, type RunningGateway } from '../helpers/gateway-process.ts';
import { GATEWAY_WRITTEN_NAMES, rootOnlySentinel } from '../helpers/sentinel.ts';
import { FAKE_ANSWER, fakeProviderConfig, OPENAI_USAGE, startFakeModelProvider, type FakeModelProvider } from '../helpers/fake-model-provider.ts';
import { DOM_TERMINAL_SETTINGS, launchChromium, openIde, runInTerminal } from '../helpers/browser.ts';
import { dockerClient } from '../../src/runtime/docker/docker-client.ts';
import { ensureDockerEngine } from '../../src/toolchain/docker-engine.ts';
import { DEFAULT_IMAGE } from '../../src/config.ts';
import { DockerRuntime } from '../../src/runtime/docker/docker-runtime.ts';
import { findTemplate } from '../../src/templates/catalog.ts';
import type { SandboxSpec } from '../../src/runtime/interface.ts';
import { pino } from 'pino';

const { docker } = dockerClient();
let dataDir: string;
let gw: RunningGateway;
let api: Api;
let browser: Browser;
let fake: FakeModelProvider;
const REAL_KEY = 'sk-real-provider-key-never-in-a-container';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CONFIG = 'runtime:\n  driver: docker\nsupervisor:\n  backoffSeconds: [0.5]\n  maxFailures: 4\n  checkIntervalMs: 200\n  healthIntervalSeconds: 1\n';

before(async () => {
  await ensureDockerEngine(docker, () => {});
  await docker.getImage(DEFAULT_IMAGE).inspect().catch(() => { throw new Error(`${DEFAULT_IMAGE} is missing: npm test's setup builds it (codeyard setup --with-test-deps)`); });
  dataDir = tempDataDir();
  // The fake model provider is on the host's loopback, which containers cannot reach: only the gateway can.
  fake = await startFakeModelProvider();
  gw = await startGatewayProcess({ dataDir, config: CONFIG + fakeProviderConfig(fake.port) });
  api = await Api.login(gw.url);
  assert.equal((await api.call('PUT', '/api/ai/keys/fake', { key: REAL_KEY })).status, 204);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await gw?.destroy();
  await fake?.close();
  for (const c of await docker.listContainers({ all: true, filters: { label: ['codeyard.sandbox'] } })) {
    if ((c.Mounts ?? []).some((m) => m.Source?.startsWith(dataDir))) await docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
  }
});

async function create(body: Record<string, unknown> = {}): Promise<string> {
  const r = await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', ...body });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.body.state, 'running', r.text);
  return r.body.sandboxID;
}

const exec = async (id: string, cmd: string, extra: Record<string, unknown> = {}) => {
  const r = await api.call('POST', `/api/sandboxes/${id}/exec`, { cmd, ...extra });
  assert.equal(r.status, 200, r.text);
  return r.body as { exitCode: number; stdout: string; stderr: string; timedOut: boolean };
};

const container = (id: string) => docker.getContainer(`codeyard-${id}`).inspect();

async function waitFor<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = await get();
  while (!ok(last)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last).slice(0, 600)}`);
    await sleep(200);
    last = await get();
  }
  return last;
}

test('VS Code in a container through the proxy: workbench, explorer, terminal', { timeout: 240_000 }, async () => {
  const id = await create();
  const record = await container(id);
  assert.equal(record.Config.Image, DEFAULT_IMAGE);
  assert.equal(record.Config.Labels['codeyard.sandbox'], id);
  assert.equal(record.Config.Labels['codeyard.workspace'], 'default');
  assert.equal(record.Config.Labels['codeyard.user'], 'admin');
  assert.equal((await exec(id, `echo "from a container" > in-container.txt && ${DOM_TERMINAL_SETTINGS}`)).exitCode, 0);
  // The model proxy is on the host's loopback; the container reaches it through the relay, at the URL its opencode config names.
  const providers = JSON.parse((await exec(id, 'cat "$OPENCODE_CONFIG"')).stdout).provider as Record<string, { options: { baseURL: string } }>;
  const baseURL = Object.values(providers)[0]!.options.baseURL;
  const health = await exec(id, `curl -s ${new URL(baseURL).origin}/healthz`);
  assert.equal(health.stdout, '{"status":"ok"}', health.stderr);
  const page = await openIde(browser, gw.url, id, 'admin', ADMIN_PASSWORD);
  await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'in-container.txt' }).waitFor({ timeout: 60_000 });
  await runInTerminal(page, 'cat in-container.txt; echo sum-$((20+22))', 'sum-42');
  await page.locator('.xterm-rows', { hasText: 'from a container' }).first().waitFor();
  await page.context().close();
  assert.equal((await api.call('DELETE', `/api/sandboxes/${id}`)).status, 204);
  await assert.rejects(container(id), /404|no such container/i);
  assert.ok(existsSync(join(dataDir, 'users/admin/default/workspace/in-container.txt')), 'the persistent workspace outlives the container');
});

test('opencode in a container answers through the gateway relay; the key never enters the container; usage is recorded', { timeout: 240_000 }, async () => {
  const id = await create({ workspace: null });
  const run = await exec(id, 'opencode run "say hi" 2>&1', { timeoutMs: 120_000 });
  assert.equal(run.exitCode, 0, run.stdout + run.stderr);
  assert.match(run.stdout, new RegExp(FAKE_ANSWER));
  const calls = fake.seen.filter((s) => s.path.startsWith('/v1/chat/completions'));
  assert.ok(calls.length >= 1, 'the fake was called');
  for (const c of calls) assert.equal(c.auth, `Bearer ${REAL_KEY}`, 'the proxy swapped in the real key');

  // Not in any process's environment or command line: read from the host, every process of the container.
  const top = await docker.getContainer(`codeyard-${id}`).top({ ps_args: '-o pid' });
  const pids = (top.Processes as string[][]).map((p) => Number(p[0]));
  assert.ok(pids.length >= 2, JSON.stringify(top));
  for (const pid of pids) {
    for (const what of ['environ', 'cmdline']) {
      let text = '';
      try { text = readFileSync(`/proc/${pid}/${what}`, 'utf8'); } catch { /* exited */ }
      assert.ok(!text.includes(REAL_KEY), `pid ${pid} ${what}`);
    }
  }
  // Nor as the container sees itself: its environment, its processes' environments, its /tmp.
  const inside = await exec(id, 'env; cat /proc/[0-9]*/environ 2>/dev/null | tr "\\0" "\\n"; ls -a /tmp');
  assert.ok(!inside.stdout.includes(REAL_KEY), 'the key is visible inside the container');
  assert.match(inside.stdout, /OPENCODE_CONFIG=/, 'the environment was read');
  const tmp = await exec(id, `grep -rlsF -e '${REAL_KEY}' /tmp /home/coder /run/codeyard /run/codeyard-gateway; true`);
  assert.equal(tmp.stdout, '', 'the key is in files inside the container');
  // Nor in its files on the host: its home, workspace, run and gateway directories (opencode.json holds only the sandbox token).
  for (const dir of ['home', 'workspace', 'run', 'gateway']) {
    const grep = spawnSync('grep', ['-rlsF', REAL_KEY, join(dataDir, 'sandboxes', id, dir)], { encoding: 'utf8' });
    assert.equal(grep.stdout, '', `the key is in files under ${dir}`);
  }
  assert.match(readFileSync(join(dataDir, 'sandboxes', id, 'gateway', 'opencode.json'), 'utf8'), /"apiKey": "cyai_/);

  const usage = (await api.call('GET', '/api/ai/usage')).body.calls as { sandboxID: string; provider: string; inputTokens: number; outputTokens: number; status: number; user: string }[];
  const mine = usage.filter((c) => c.sandboxID === id);
  assert.ok(mine.length >= 1, JSON.stringify(usage));
  for (const c of mine) assert.deepEqual([c.provider, c.user, c.status, c.inputTokens, c.outputTokens], ['fake', 'admin', 200, OPENAI_USAGE.input, OPENAI_USAGE.output]);
  assert.equal((await api.call('DELETE', `/api/sandboxes/${id}`)).status, 204);
});

test('limits: memoryMB, cpuCount and pids in the container; a process past memoryMB is killed and the crash classified oom', { timeout: 180_000 }, async () => {
  const id = await create({ memoryMB: 256, cpuCount: 0.5, workspace: null });
  const hc = (await container(id)).HostConfig;
  assert.equal(hc.Memory, 256 * 1024 * 1024);
  assert.equal(hc.MemorySwap, 256 * 1024 * 1024);
  assert.equal(hc.NanoCpus, 500_000_000);
  assert.equal(hc.PidsLimit, 4096);
  assert.deepEqual(hc.CapDrop, ['ALL']);
  assert.ok(hc.SecurityOpt?.includes('no-new-privileges:true'));
  assert.equal(hc.ReadonlyRootfs, true);
  const hog = await exec(id, 'node -e "const k=[];for(let i=0;i<64;i++)k.push(Buffer.alloc(32<<20,1))"', { timeoutMs: 60_000 });
  assert.equal(hog.exitCode, 137);
  assert.match(hog.stderr, /killed \(SIGKILL\), most likely for running out of memory \(memoryMB=256\)/);
  await api.call('DELETE', `/api/sandboxes/${id}`);

  // The main process itself: the memory limit kills it, the supervisor says oom.
  const crashing = (await api.call('POST', '/api/sandboxes', { templateID: 'vscode', memoryMB: 256, workspace: null, envVars: { NODE_OPTIONS: '--require /home/coder/workspace/hog.js' } })).body.sandboxID;
  const hogFile = join(dataDir, 'sandboxes', crashing, 'workspace', 'hog.js');
  await waitFor('the workspace', async () => existsSync(join(dataDir, 'sandboxes', crashing, 'workspace')), Boolean);
  writeFileSync(hogFile, 'const keep = []; for (let i = 0; i < 64; i++) keep.push(Buffer.alloc(32 << 20, 1));\n', { mode: 0o644 });
  const crashed = await waitFor('an oom crash', async () => (await api.call('GET', `/api/sandboxes/${crashing}/status`)).body,
    (s) => s.lastCrash?.classification === 'oom');
  assert.equal(crashed.lastCrash.classification, 'oom');
  await api.call('DELETE', `/api/sandboxes/${crashing}`);
});

test("isolation: no host /root, data dir, Docker socket or other sandbox's files; no capabilities; files belong to the image's uid", { timeout: 180_000 }, async () => {
  const [a, b] = [await create({ workspace: null }), await create({ workspace: null })];
  assert.equal((await exec(b, 'echo secret-of-b > secret-b.txt')).exitCode, 0);
  const r = await exec(a, `id -u; ls /root 2>&1; ls ${dataDir} 2>&1; ls /var/run/docker.sock /run/docker.sock 2>&1; ` +
    `find / -xdev -name secret-b.txt 2>/dev/null; grep CapEff /proc/self/status; touch /usr/x 2>&1; ` +
    `printf '#!/bin/sh\\necho ran-from-tmp\\n' > /tmp/s.sh && chmod +x /tmp/s.sh && /tmp/s.sh; echo done`);
  const out = r.stdout;
  assert.match(out, /^1000\n/);
  assert.match(out, /ls: cannot open directory '\/root': Permission denied|No such file/);
  assert.match(out, new RegExp(`${dataDir}.*No such file or directory`));
  assert.match(out, /docker\.sock.*No such file or directory/);
  assert.ok(!out.includes('secret-b.txt'), out);
  assert.match(out, /CapEff:\s+0000000000000000/);
  assert.match(out, /Read-only file system/);
  assert.match(out, /ran-from-tmp/, '/tmp allows running what is built there');
  const written = statSync(join(dataDir, 'sandboxes', b, 'workspace', 'secret-b.txt'));
  assert.equal(written.uid, 1000);
  assert.equal(written.gid, 1000);
  for (const id of [a, b]) await api.call('DELETE', `/api/sandboxes/${id}`);
});

test('symlinks a container plants where the gateway works never make root touch a host file: restart, self-inflicted crash, gateway SIGKILL and adoption', { timeout: 300_000 }, async () => {
  const { untouched, plantIn } = rootOnlySentinel();
  const id = await create();
  // What the gateway provides is root's and read-only in the container.
  const provided = await exec(id, 'stat -c "%U %a" /run/codeyard-gateway; touch /run/codeyard-gateway/x 2>&1; head -c 1 "$OPENCODE_CONFIG"; echo');
  assert.match(provided.stdout, /^root 755\n.*Read-only file system\n\{\n$/, provided.stdout);
  const plant = async () => {
    const r = await exec(id, plantIn('/run/codeyard'));
    assert.equal(r.stdout.trim(), String(GATEWAY_WRITTEN_NAMES.length), r.stdout + r.stderr);
  };
  const works = async () => assert.equal((await exec(id, 'head -c 1 "$OPENCODE_CONFIG"; id -un')).stdout, '{coder\n');
  const status = async () => (await api.call('GET', `/api/sandboxes/${id}/status`)).body;

  await plant();
  assert.equal((await api.call('POST', `/api/sandboxes/${id}/restart`)).status, 200);
  await waitFor('running after restart', status, (s) => s.state === 'running');
  untouched();
  await works();

  await plant();
  const before = (await status()).restarts;
  await exec(id, "kill -KILL $(pgrep -o -f '^/opt/codeyard/node/bin/node /opt/codeyard/code-server')");
  await waitFor('a supervisor restart', status, (s) => s.restarts > before && s.state === 'running');
  untouched();
  await works();

  await plant();
  gw.process.kill('SIGKILL');
  await new Promise((r) => gw.process.once('exit', r));
  gw = await startGatewayProcess({ dataDir });
  api = await Api.login(gw.url);
  assert.equal((await status()).state, 'running');
  untouched();
  await works();
  assert.equal((await api.call('POST', `/api/sandboxes/${id}/restart`)).status, 200);
  await waitFor('running after restart', status, (s) => s.state === 'running');
  untouched();
  await works();
  await api.call('DELETE', `/api/sandboxes/${id}`);
});

test('recovery: a gateway SIGKILL adopts the container; `docker restart` and a dockerd restart are noticed and the sandbox comes back', { timeout: 300_000 }, async () => {
  const id = await create({ workspace: null });
  await exec(id, 'echo kept > kept.txt');
  const pid = (await container(id)).State.Pid;

  gw.process.kill('SIGKILL');
  await new Promise((r) => gw.process.once('exit', r));
  gw = await startGatewayProcess({ dataDir });
  api = await Api.login(gw.url);
  const adopted = (await api.call('GET', `/api/sandboxes/${id}/status`)).body;
  assert.equal(adopted.state, 'running');
  assert.equal((await container(id)).State.Pid, pid, 'adopted, not restarted');
  assert.equal((await exec(id, 'cat kept.txt')).stdout, 'kept\n');

  // Someone restarts the container behind the gateway's back.
  await docker.getContainer(`codeyard-${id}`).restart({ t: 0 });
  await waitFor('a restart after docker restart', async () => (await api.call('GET', `/api/sandboxes/${id}/status`)).body, (s) => s.restarts >= 1 && s.state === 'running');
  assert.equal((await exec(id, 'cat kept.txt')).stdout, 'kept\n');
  const ide = await api.call('GET', `/vscode-proxy/${id}/`, undefined, { accept: 'text/html' });
  assert.ok(ide.status === 200 || ide.status === 302, String(ide.status));

  // The engine itself restarts (live-restore off: its containers stop with it).
  const before = (await api.call('GET', `/api/sandboxes/${id}/status`)).body.restarts;
  const enginePid = Number(readFileSync('/var/run/docker.pid', 'utf8'));
  process.kill(enginePid, 'SIGTERM');
  await waitFor('dockerd gone', async () => { try { process.kill(enginePid, 0); return false; } catch { return true; } }, Boolean, 60_000);
  // While it is away: a clear refusal on create, and a doctor finding.
  const refused = await api.call('POST', '/api/sandboxes', { templateID: 'vscode' });
  assert.equal(refused.status, 502);
  assert.match(refused.body.message, /cannot reach the Docker engine at unix:\/\/\/var\/run\/docker\.sock .*start it/);
  const doctor = spawnSync(process.execPath, [join(ROOT, 'src/cli/main.ts'), 'doctor', '--runtime', 'docker', '--data-dir', dataDir, '--port', '1'], { encoding: 'utf8' });
  assert.match(doctor.stdout, /✗ docker: cannot reach the Docker engine/);
  await ensureDockerEngine(docker, () => {});
  const back = await waitFor('running after the engine restart', async () => (await api.call('GET', `/api/sandboxes/${id}/status`)).body,
    (s) => s.state === 'running' && s.restarts > before, 120_000);
  assert.equal(back.health.ok, true);
  assert.equal((await exec(id, 'cat kept.txt')).stdout, 'kept\n');
  await api.call('DELETE', `/api/sandboxes/${id}`);
});

test('templates.<id>.network: none gives the container no network; a missing image names the command that builds it', { timeout: 120_000 }, async () => {
  const runtime = new DockerRuntime({
    docker, where: 'unix:///var/run/docker.sock', dataDir, image: DEFAULT_IMAGE, uid: 1000, maxProcesses: 4096, socketWaitMs: 60_000,
    networks: { vscode: 'none' }, log: pino({ level: 'silent' }),
  });
  const template = findTemplate('vscode')!;
  const spec: SandboxSpec = {
    sandboxID: 'netnone0000000000000', templateID: 'vscode', seq: 1, ownerId: 1, owner: 'admin', workspace: null, network: 'outbound', memoryMB: 512, cpuCount: 1,
    envVars: {}, command: (l) => template.command(l, {}), services: template.services, driverState: {},
  };
  try {
    await runtime.create(spec);
    spec.driverState = (await runtime.start(spec)).driverState;
    assert.equal((await container(spec.sandboxID)).HostConfig.NetworkMode, 'none');
    const r = await runtime.exec(spec, { cmd: 'ls /sys/class/net', timeoutMs: 10_000, maxOutputBytes: 1 << 16 });
    assert.equal(r.stdout, 'lo\n');
  } finally {
    await runtime.remove(spec);
  }
  const missing = new DockerRuntime({ docker, where: 'unix:///var/run/docker.sock', dataDir, image: 'codeyard/workspace:does-not-exist', uid: 1000, maxProcesses: 64, socketWaitMs: 1000, networks: {}, log: pino({ level: 'silent' }) });
  assert.match((await missing.available())!, /codeyard\/workspace:does-not-exist is not built: run `codeyard image build --tag codeyard\/workspace:does-not-exist`/);
});

test('the browser template in a container: Chromium over CDP through the gateway, pages reached through its egress proxy', { timeout: 180_000 }, async () => {
  const site = createServer((_req, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<title>seen from a container</title>'); });
  await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
  try {
    const created = (await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'browser' })).body;
    assert.equal(created.state, 'running', JSON.stringify(created));
    assert.equal((await container(created.sandboxID)).HostConfig.NetworkMode, 'none', 'out only through the gateway');
    const key = (await api.call('POST', '/api/keys', { name: 'cdp' })).body.key;
    const browser = await chromium.connectOverCDP(created.urls.cdp, { headers: { 'x-api-key': key } });
    const page = await browser.contexts()[0]!.newPage();
    await page.goto(`http://127.0.0.1:${(site.address() as { port: number }).port}/`);
    assert.equal(await page.title(), 'seen from a container');
    await browser.close();
    await api.call('DELETE', `/api/sandboxes/${created.sandboxID}`);
  } finally {
    site.close();
  }
});
