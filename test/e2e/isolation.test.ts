// What a sandbox can and cannot reach, checked from inside real bubblewrap
// sandboxes run by the real gateway.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Api, sandboxProcesses, startGatewayProcess, type RunningGateway } from '../helpers/gateway-process.ts';

let gw: RunningGateway;
let api: Api;
let a: string;
let b: string;

const exec = async (id: string, cmd: string | string[], extra: Record<string, unknown> = {}) => {
  const r = await api.call('POST', `/api/sandboxes/${id}/exec`, { cmd, ...extra });
  assert.equal(r.status, 200, r.text);
  return r.body as { exitCode: number; stdout: string; stderr: string; timedOut: boolean; truncated: boolean };
};

before(async () => {
  gw = await startGatewayProcess({ env: { CODEYARD_SECRET_CANARY: 'gateway-secret-canary' } });
  api = await Api.login(gw.url);
  // a belongs to another user; b is the admin's, on a throwaway workspace.
  assert.equal((await api.call('POST', '/api/users', { username: 'ann', password: 'ann-password-1', limits: {} })).status, 201);
  const ann = await Api.login(gw.url, 'ann', 'ann-password-1');
  const [ra, rb] = await Promise.all([
    ann.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', name: 'a', memoryMB: 768 }),
    api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', name: 'b', workspace: null, envVars: { GREETING: 'hi-from-b' } }),
  ]);
  assert.equal(ra.body.state, 'running', ra.text);
  assert.equal(rb.body.state, 'running', rb.text);
  a = ra.body.sandboxID;
  b = rb.body.sandboxID;
  assert.equal((await exec(b, 'echo top-secret > secret-of-b.txt')).exitCode, 0);
});

after(async () => {
  await gw?.destroy();
});

test('a sandbox sees its own workspace as user coder, with its envVars', async () => {
  const r = await exec(b, 'id -un; pwd; cat secret-of-b.txt; echo $GREETING');
  assert.equal(r.stdout, 'coder\n/home/coder/workspace\ntop-secret\nhi-from-b\n');
});

test('a sandbox has its own writable /tmp (sticky, like any /tmp)', async () => {
  const r = await exec(b, 'stat -c %a /tmp && f=$(mktemp) && echo ok > "$f" && cat "$f"');
  assert.equal(r.stdout, '1777\nok\n', r.stderr);
});

test("another sandbox's workspace, the data dir and /root are not readable", async () => {
  const r = await exec(a, [
    'sh', '-c',
    `find / -xdev -name secret-of-b.txt 2>/dev/null | head -1; echo "--";
     ls ${gw.dataDir} 2>&1; ls ${gw.dataDir}/sandboxes/${b}/workspace 2>&1; cat ${gw.dataDir}/codeyard.db 2>&1 | head -c 100;
     ls /root 2>&1; cat /proc/1/root/etc/hostname 2>&1; cat /etc/shadow 2>&1`,
  ]);
  const [found, rest] = r.stdout.split('--\n');
  assert.equal(found, '', 'sandbox a found b\'s file');
  assert.ok(!rest!.includes('top-secret'));
  assert.ok(!rest!.includes('SQLite'));
  assert.match(rest!, new RegExp(`${gw.dataDir}.*No such file or directory`));
  assert.match(rest!, /ls: cannot access '\/root': No such file or directory/);
  assert.match(rest!, /\/proc\/1\/root\/etc\/hostname: Permission denied/);
  assert.match(rest!, /\/etc\/shadow: Permission denied/);
});

test("a sandbox sees only its own processes and none of the gateway's environment", async () => {
  const r = await exec(a, 'ps -eo user,args --no-headers; echo --; env; echo --; cat /proc/*/environ 2>/dev/null | tr "\\0" "\\n" | grep -c CANARY || true');
  const [ps, env, canaries] = r.stdout.split('--\n');
  assert.ok(!ps!.includes('hi-from-b') && !ps!.includes(b), ps);
  assert.ok(!ps!.includes('codeyard serve') && !ps!.includes('src/cli/main.ts'), 'gateway process visible:\n' + ps);
  assert.ok(!env!.includes('gateway-secret-canary') && !env!.includes('CODEYARD_ADMIN_PASSWORD'), env);
  assert.equal(canaries!.trim(), '0');
  // Different users' sandboxes run as different host uids.
  const uidA = (await exec(a, 'id -u')).stdout.trim();
  const uidB = (await exec(b, 'id -u')).stdout.trim();
  assert.notEqual(uidA, uidB);
});

test('memoryMB is enforced: a process allocating past it is killed, the sandbox lives on', async () => {
  const record = (await api.call('GET', `/api/sandboxes/${a}`)).body;
  assert.equal(record.limits, 'enforced', 'this host should allow cgroup limits (see codeyard doctor)');
  const hog = await exec(a, ['node', '-e', 'const k=[];for(let i=0;i<64;i++)k.push(Buffer.alloc(32<<20,1));console.log("survived")'], { timeoutMs: 60_000 });
  assert.notEqual(hog.exitCode, 0);
  assert.ok(!hog.stdout.includes('survived'));
  assert.match(hog.stderr, /\[codeyard: a process was killed for running out of memory \(memoryMB=768\)\]/);
  assert.equal((await exec(a, 'echo still-here')).stdout, 'still-here\n');
});

test('exec timeout kills the command and says so; output is capped with a marker', async () => {
  const slow = await exec(a, 'echo started; sleep 30; echo never', { timeoutMs: 500 });
  assert.equal(slow.timedOut, true);
  assert.equal(slow.stdout, 'started\n');
  assert.match(slow.stderr, /killed after timeoutMs=500/);
  const big = await exec(a, 'head -c 3000000 /dev/zero | tr "\\0" x');
  assert.equal(big.truncated, true);
  assert.match(big.stdout, /\[codeyard: output truncated after 1048576 bytes\]\n$/);
});

test('a process started in a sandbox dies with it', async () => {
  const bg = await exec(b, 'setsid nohup sleep 777 >/dev/null 2>&1 & echo started');
  assert.equal(bg.stdout, 'started\n');
  await new Promise((r) => setTimeout(r, 200));
  const before = sandboxProcesses(b);
  const sleeper = before.find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep\u0000777'));
  assert.ok(sleeper, 'the background sleep should be one of the sandbox\'s processes');
  const del = await api.call('DELETE', `/api/sandboxes/${b}`);
  assert.equal(del.status, 204, del.text);
  assert.deepEqual(sandboxProcesses(b), []);
  assert.throws(() => readFileSync(`/proc/${sleeper}/cmdline`));
});

test('a sandbox cannot point the proxy at a host socket by replacing its own socket with a symlink', async () => {
  const { createServer } = await import('node:http');
  const hostSocket = `/tmp/cy-host-secret-${process.pid}.sock`;
  const secret = createServer((_, res) => res.end('HOST-ONLY-SECRET'));
  await new Promise<void>((r) => secret.listen(hostSocket, r));
  try {
    const r = await exec(a, `rm -f /run/codeyard/ide.sock && ln -s ${hostSocket} /run/codeyard/ide.sock && ls -l /run/codeyard/`);
    assert.equal(r.exitCode, 0, r.stderr);
    const proxied = await api.call('GET', `/vscode-proxy/${a}/`);
    assert.doesNotMatch(proxied.text, /HOST-ONLY-SECRET/);
  } finally {
    secret.close();
  }
});

test('envVars apply only after privileges are dropped: PATH cannot hijack the sandbox launcher', async () => {
  const c = await api.call('POST', '/api/sandboxes?wait=true', {
    templateID: 'vscode', name: 'c', envVars: { PATH: '/home/coder/bin:/usr/bin:/bin', LD_PRELOAD: '/home/coder/bin/evil.so' },
  });
  const id = c.body.sandboxID;
  // Whatever state the first start reached, plant a fake setpriv/env/node and restart.
  await api.call('POST', `/api/sandboxes/${id}/exec`, {
    cmd: ['/bin/sh', '-c', 'mkdir -p /home/coder/bin && for t in setpriv env node; do printf "#!/bin/sh\\nid -u >> /home/coder/workspace/hijacked\\nexec /usr/bin/$t \\"\\$@\\"\\n" > /home/coder/bin/$t; chmod +x /home/coder/bin/$t; done'],
    envs: { PATH: '/usr/bin:/bin', LD_PRELOAD: '' },
  });
  await api.call('POST', `/api/sandboxes/${id}/stop`);
  const restarted = await api.call('POST', `/api/sandboxes/${id}/start?wait=true`);
  assert.ok(['running', 'error'].includes(restarted.body.state), restarted.text);
  const files = await readFileSyncSafe(`${gw.dataDir}/users/admin/default/workspace/hijacked`);
  assert.ok(!files.split('\n').includes('0'), `a user-planted binary ran as root: uids ${JSON.stringify(files)}`);
  await api.call('DELETE', `/api/sandboxes/${id}`);
});

async function readFileSyncSafe(path: string): Promise<string> {
  try { return readFileSync(path, 'utf8'); } catch { return ''; }
}
