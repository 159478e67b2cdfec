// The CLI as an operator runs it: through bin/codeyard.js on the machine's own
// node (20 here, which hands over to the provisioned Node 24), against a real gateway.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Api, ROOT, freePort, removeDataDir, startGatewayProcess, tempDataDir, type RunningGateway } from '../helpers/gateway-process.ts';

const run = promisify(execFile);
// The machine's node when it exists (the launcher's real-world case), else ours.
const SHELL_NODE = existsSync('/usr/bin/node') ? '/usr/bin/node' : process.execPath;
const codeyard = (args: string[], env: Record<string, string> = {}) =>
  run(SHELL_NODE, [join(ROOT, 'bin/codeyard.js'), ...args], { env: { ...process.env, ...env }, timeout: 120_000 })
    .then((r) => ({ code: 0, ...r }), (e) => ({ code: e.code as number, stdout: e.stdout as string, stderr: e.stderr as string }));

let gw: RunningGateway;
let key: string;

before(async () => {
  gw = await startGatewayProcess();
  const api = await Api.login(gw.url);
  key = (await api.call('POST', '/api/keys', { name: 'cli' })).body.key;
});

after(async () => {
  await gw?.destroy();
});

test('the launcher runs the CLI even from an older node', async () => {
  const r = await codeyard(['--help']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /serve/);
  assert.match(r.stdout, /setup/);
  assert.match(r.stdout, /doctor/);
  assert.match(r.stdout, /sandbox/);
});

test('doctor passes on a set-up machine and names what it checked', async () => {
  const dataDir = tempDataDir();
  const r = await codeyard(['doctor', '--data-dir', dataDir, '--port', String(await freePort())]);
  removeDataDir(dataDir);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  for (const check of ['node', 'code-server', 'bwrap', 'namespaces', 'cgroups', 'data dir', 'port']) {
    assert.match(r.stdout, new RegExp(`✓.* ${check}:`), `${check} line missing:\n${r.stdout}`);
  }
});

test('doctor fails with a fix when the port is taken by something else', async () => {
  const dataDir = tempDataDir();
  const r = await codeyard(['doctor', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', '1']);
  removeDataDir(dataDir);
  // Port 1 is privileged or refused; either way the line must say what to do.
  assert.match(r.stdout, /port: 127\.0\.0\.1:1/);
});

test('bad config is reported naming the key, exit 1, no stack trace', async () => {
  const r = await codeyard(['doctor', '--port', 'eighty']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /codeyard: config key "port"/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('sandbox create, ls, rm against the running gateway', async () => {
  const env = { CODEYARD_API_KEY: key };
  const created = await codeyard(['sandbox', '--url', gw.url, 'create', '--name', 'from-cli'], env);
  assert.equal(created.code, 0, created.stderr);
  const [id, state, ide] = created.stdout.trim().split('\t');
  assert.equal(state, 'running');
  assert.equal(ide, `/vscode-proxy/${id}/`);
  const ls = await codeyard(['sandbox', '--url', gw.url, 'ls'], env);
  assert.match(ls.stdout, new RegExp(`${id}\\tvscode\\trunning\\tadmin\\tfrom-cli`));
  assert.match(ls.stdout, /\tdefault$/m, 'the WORKSPACE column');
  assert.match((await codeyard(['sandbox', '--url', gw.url, 'stop', id!], env)).stdout, new RegExp(`^${id}\tstopped`));
  assert.match((await codeyard(['sandbox', '--url', gw.url, 'start', id!], env)).stdout, new RegExp(`^${id}\trunning`));
  const contradiction = await codeyard(['sandbox', '--url', gw.url, 'create', '--workspace', 'x', '--throwaway'], env);
  assert.equal(contradiction.code, 1);
  assert.match(contradiction.stderr, /--workspace and --throwaway contradict/);
  const rm = await codeyard(['sandbox', '--url', gw.url, 'rm', id!], env);
  assert.equal(rm.code, 0, rm.stderr);
  assert.match((await codeyard(['sandbox', '--url', gw.url, 'ls'], env)).stdout, /no sandboxes/);
  const badMemory = await codeyard(['sandbox', '--url', gw.url, 'create', '--memory', '2GB'], env);
  assert.equal(badMemory.code, 1);
  assert.match(badMemory.stderr, /--memory must be a whole number of megabytes, e\.g\. 2048/);
  const bad = await codeyard(['sandbox', '--url', gw.url, 'rm', 'nope'], env);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /404 sandbox nope not found/);
});

test('user add, ls, passwd, disable, enable, rm', async () => {
  const env = { CODEYARD_API_KEY: key };
  const add = await codeyard(['user', '--url', gw.url, 'add', 'zoe', '--max-sandboxes', '2'], env);
  assert.equal(add.code, 0, add.stderr);
  const password = /with password: (\S+)/.exec(add.stdout)![1]!;
  assert.equal((await (await Api.login(gw.url, 'zoe', password)).call('GET', '/api/me')).body.username, 'zoe');
  assert.match((await codeyard(['user', '--url', gw.url, 'ls'], env)).stdout, /zoe\tuser\tactive\t0\tsandboxes≤2/);
  const piped = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(SHELL_NODE, [join(ROOT, 'bin/codeyard.js'), 'user', '--url', gw.url, 'passwd', 'zoe', '--password-stdin'], { env: { ...process.env, ...env } },
      (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }));
    child.stdin!.end('zoe-new-password\n');
  });
  assert.equal(piped.code, 0, piped.stderr);
  await Api.login(gw.url, 'zoe', 'zoe-new-password');
  assert.equal((await codeyard(['user', '--url', gw.url, 'disable', 'zoe'], env)).code, 0);
  await assert.rejects(Api.login(gw.url, 'zoe', 'zoe-new-password'));
  assert.equal((await codeyard(['user', '--url', gw.url, 'enable', 'zoe'], env)).code, 0);
  const rm = await codeyard(['user', '--url', gw.url, 'rm', 'zoe', '--purge'], env);
  assert.equal(rm.code, 0, rm.stderr);
  assert.doesNotMatch((await codeyard(['user', '--url', gw.url, 'ls'], env)).stdout, /zoe/);
  const bad = await codeyard(['user', '--url', gw.url, 'add', 'Not-Valid'], env);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /username: must be 1–32 lowercase/);
});

test('workspace create, ls, rename, rm --confirm; sandbox create --workspace and --throwaway', async () => {
  const env = { CODEYARD_API_KEY: key };
  const ws = (...args: string[]) => codeyard(['workspace', '--url', gw.url, ...args], env);
  assert.equal((await ws('create', 'cli-ws')).code, 0);
  const box = await codeyard(['sandbox', '--url', gw.url, 'create', '--workspace', 'cli-ws'], env);
  assert.equal(box.code, 0, box.stderr);
  const id = box.stdout.split('\t')[0]!;
  assert.match((await ws('ls')).stdout, new RegExp(`cli-ws\\tadmin\\t\\S+\\t${id}`));
  const renamed = await ws('rename', 'cli-ws', 'cli-renamed');
  assert.equal(renamed.code, 0, renamed.stderr);
  const unconfirmed = await ws('rm', 'cli-renamed');
  assert.equal(unconfirmed.code, 1);
  assert.match(unconfirmed.stderr, /required option '--confirm <name>'/);
  const inUse = await ws('rm', 'cli-renamed', '--confirm', 'cli-renamed');
  assert.equal(inUse.code, 1);
  assert.match(inUse.stderr, /409 workspace cli-renamed is used by sandbox/);
  assert.equal((await codeyard(['sandbox', '--url', gw.url, 'rm', id], env)).code, 0);
  assert.equal((await ws('rm', 'cli-renamed', '--confirm', 'cli-renamed')).code, 0);
  assert.doesNotMatch((await ws('ls')).stdout, /cli-renamed/);
  const throwaway = await codeyard(['sandbox', '--url', gw.url, 'create', '--throwaway', '--no-wait'], env);
  assert.equal(throwaway.code, 0, throwaway.stderr);
  const tid = throwaway.stdout.split('\t')[0]!;
  const api = new Api(gw.url, { 'x-api-key': key });
  assert.equal((await api.call('GET', `/api/sandboxes/${tid}`)).body.workspace, null);
  await api.call('DELETE', `/api/sandboxes/${tid}`);
});

test('one gateway per data dir; SIGTERM does not wait for clients following a log', { timeout: 120_000 }, async () => {
  const dataDir = tempDataDir();
  const first = await startGatewayProcess({ dataDir });
  try {
    await assert.rejects(startGatewayProcess({ dataDir }), /another codeyard gateway \(pid \d+, port \d+\) is serving/);
    const api = await Api.login(first.url);
    const id = (await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', workspace: null })).body.sandboxID;
    const follow = await fetch(`${first.url}/api/sandboxes/${id}/logs?follow=true&tail=1`, { headers: api.headers });
    assert.equal(follow.status, 200);
    const t0 = Date.now();
    await first.stop();
    assert.ok(Date.now() - t0 < 10_000, `SIGTERM took ${Date.now() - t0} ms with a follower connected`);
    await follow.body?.cancel().catch(() => {});
  } finally {
    await first.destroy();
  }
});
