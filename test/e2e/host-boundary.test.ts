// The boundary between a local (bubblewrap) sandbox and the host, attacked from
// inside real sandboxes run by the real gateway: symlinks planted where the
// gateway (root) works, a network namespace per sandbox, no new user namespaces,
// no host paths in /proc/1/cmdline, and a restored database that names another
// gateway's processes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { Api, freePort, ROOT, sandboxProcesses, startGatewayProcess, tempDataDir, type RunningGateway } from '../helpers/gateway-process.ts';
import { GATEWAY_WRITTEN_NAMES, rootOnlySentinel } from '../helpers/sentinel.ts';
import { blockedDestinations } from '../../src/runtime/local/sandbox-network.ts';

let gw: RunningGateway;
let admin: Api;
let ann: Api;

type ExecResult = { exitCode: number; stdout: string; stderr: string };
const exec = async (api: Api, id: string, cmd: string, extra: Record<string, unknown> = {}): Promise<ExecResult> => {
  const r = await api.call('POST', `/api/sandboxes/${id}/exec`, { cmd, ...extra });
  assert.equal(r.status, 200, r.text);
  return r.body;
};

async function waitFor<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await get();
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
}

before(async () => {
  gw = await startGatewayProcess({ config: 'routing:\n  pathPreviews: true\n' });
  admin = await Api.login(gw.url);
  assert.equal((await admin.call('POST', '/api/users', { username: 'ann', password: 'ann-password-1', limits: {} })).status, 201);
  ann = await Api.login(gw.url, 'ann', 'ann-password-1');
});

after(async () => { await gw?.destroy(); });

test('symlinks planted where the gateway works never make root touch a host file: restart, self-inflicted crash, gateway SIGKILL and adoption', { timeout: 300_000 }, async () => {
  // A root-owned file outside every sandbox, which the attack aims at.
  const { untouched, plantIn } = rootOnlySentinel();

  const made = await ann.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode' });
  assert.equal(made.body?.state, 'running', made.text);
  const id = made.body.sandboxID;
  // What the gateway provides is root's and read-only inside; opencode's config is there and readable.
  const provided = await exec(ann, id, 'stat -c "%U %a" /run/codeyard-gateway; touch /run/codeyard-gateway/x 2>&1; head -c 1 "$OPENCODE_CONFIG"; echo; echo "$OPENCODE_CONFIG"');
  assert.match(provided.stdout, /^root 755\n.*Read-only file system\n\{\n\/run\/codeyard-gateway\/opencode\.json\n$/, provided.stdout);

  // Every name the gateway ever wrote, created or chmodded in a place the sandbox can write.
  const plant = async () => {
    const r = await exec(ann, id, plantIn('/run/codeyard'));
    assert.equal(r.stdout.trim(), String(GATEWAY_WRITTEN_NAMES.length), r.stdout + r.stderr);
  };
  const works = async () => {
    const r = await exec(ann, id, 'cat "$OPENCODE_CONFIG" | head -c 1; id -un');
    assert.equal(r.stdout, '{coder\n', r.stderr);
  };

  await plant();
  assert.equal((await ann.call('POST', `/api/sandboxes/${id}/restart`)).status, 200);
  await waitFor('running after restart', async () => (await ann.call('GET', `/api/sandboxes/${id}`)).body.state, (s) => s === 'running');
  untouched();
  await works();

  // A crash the sandbox causes itself: the supervisor restarts it.
  await plant();
  const restartsBefore = (await ann.call('GET', `/api/sandboxes/${id}/status`)).body.restarts;
  await exec(ann, id, "kill -KILL $(pgrep -o -f '^/opt/codeyard/node/bin/node /opt/codeyard/code-server')");
  await waitFor('a supervisor restart', async () => (await ann.call('GET', `/api/sandboxes/${id}/status`)).body, (s) => s.restarts > restartsBefore && s.state === 'running');
  untouched();
  await works();

  // The gateway killed outright and started again: it adopts the running sandbox, then restarts it.
  await plant();
  gw.process.kill('SIGKILL');
  await new Promise((r) => gw.process.once('exit', r));
  gw = await startGatewayProcess({ dataDir: gw.dataDir, config: 'routing:\n  pathPreviews: true\n' });
  admin = await Api.login(gw.url);
  ann = await Api.login(gw.url, 'ann', 'ann-password-1');
  assert.equal((await ann.call('GET', `/api/sandboxes/${id}`)).body.state, 'running');
  untouched();
  await works();
  assert.equal((await ann.call('POST', `/api/sandboxes/${id}/restart`)).status, 200);
  await waitFor('running after restart', async () => (await ann.call('GET', `/api/sandboxes/${id}`)).body.state, (s) => s === 'running');
  untouched();
  await works();
  assert.equal((await ann.call('DELETE', `/api/sandboxes/${id}`)).status, 204);
});

/** A server in a network namespace of the test's own, reachable from the host over a veth pair: "the internet". */
function outsideServer(): { address: string; stop: () => void; server: ChildProcess } {
  const tag = Math.random().toString(36).slice(2, 7);
  const ns = `cyt-${tag}`;
  const octet = 100 + Math.floor(Math.random() * 100);
  const sh = (cmd: string) => execFileSync('/bin/sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
  sh(`ip netns add ${ns} && ip link add cyh-${tag} type veth peer name cyn-${tag} && ip link set cyn-${tag} netns ${ns} &&
      ip addr add 10.231.${octet}.1/24 dev cyh-${tag} && ip link set cyh-${tag} up &&
      ip netns exec ${ns} ip addr add 10.231.${octet}.2/24 dev cyn-${tag} && ip netns exec ${ns} ip link set cyn-${tag} up && ip netns exec ${ns} ip link set lo up`);
  const dir = mkdtempSync('/tmp/cy-www-');
  writeFileSync(join(dir, 'hello.txt'), 'from the outside world\n');
  const server = spawn('ip', ['netns', 'exec', ns, 'python3', '-m', 'http.server', '8000', '--bind', `10.231.${octet}.2`, '--directory', dir], { stdio: 'ignore' });
  return {
    address: `10.231.${octet}.2:8000`, server,
    stop: () => { server.kill('SIGKILL'); try { sh(`ip link del cyh-${tag}; ip netns del ${ns}`); } catch { /* gone */ } },
  };
}

test('each sandbox has a network of its own: its own 127.0.0.1:3000, no host loopback, the internet yes, previews reach exactly their owner\'s server', { timeout: 240_000 }, async (t) => {
  const outside = outsideServer();
  t.after(outside.stop);
  const hostOnly: Server = createServer((_q, r) => r.end('host loopback secret'));
  const hostPort = await freePort();
  await new Promise<void>((r) => hostOnly.listen(hostPort, '127.0.0.1', r));
  t.after(() => hostOnly.close());
  const gatewayPort = new URL(gw.url).port;

  const [ra, rb] = await Promise.all([
    ann.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', workspace: null }),
    admin.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', workspace: null }),
  ]);
  assert.equal(ra.body?.state, 'running', ra.text);
  assert.equal(rb.body?.state, 'running', rb.text);
  const a = ra.body.sandboxID;
  const b = rb.body.sandboxID;
  const serve = (who: string) => `mkdir -p www && echo ${who} > www/who.txt && (setsid nohup python3 -m http.server 3000 --bind 127.0.0.1 --directory www >/dev/null 2>&1 &) ; for i in $(seq 50); do curl -sf http://127.0.0.1:3000/who.txt && break; sleep 0.1; done`;
  // Both listen on 127.0.0.1:3000 at once; each sees its own.
  assert.equal((await exec(ann, a, serve('ann'))).stdout, 'ann\n');
  assert.equal((await exec(admin, b, serve('admin'))).stdout, 'admin\n');
  assert.equal((await exec(ann, a, 'curl -s http://127.0.0.1:3000/who.txt')).stdout, 'ann\n');

  // The host's loopback is not the sandbox's: the test's listener is neither reachable nor listed.
  const probe = await exec(ann, a, `curl -s -m 3 http://127.0.0.1:${hostPort}/; echo "exit=$?"; curl -s -m 3 http://10.0.2.2:${hostPort}/; echo "exit=$?"; ` +
    `grep -ci ':${hostPort.toString(16).padStart(4, '0')} ' /proc/net/tcp; ip -o link | grep -c tap0`);
  assert.doesNotMatch(probe.stdout, /host loopback secret/);
  assert.match(probe.stdout, /^exit=[1-9]\d*\nexit=[1-9]\d*\n0\n1\n$/, probe.stdout);
  // Cloud metadata is refused in the sandbox's own routing table.
  const meta = await exec(ann, a, 'curl -s -m 3 http://169.254.169.254/ ; echo "exit=$?"; ip route | grep -c "^prohibit 169.254.0.0/16"');
  assert.match(meta.stdout, /^exit=[1-9]\d*\n1\n$/, meta.stdout);
  // And so is every address of the host's own, down interfaces (a bridge with no carrier) included.
  const routes = (await exec(ann, a, 'ip route')).stdout;
  for (const dest of blockedDestinations()) assert.match(routes, new RegExp(`^prohibit ${dest.replace('/32', '').replaceAll('.', '\\.')}( |$)`, 'm'), routes);
  // The gateway's own port inside leads to the gateway (for opencode's model proxy), where loopback buys nothing.
  const gwInside = await exec(ann, a, `curl -s -o /dev/null -w "%{http_code} " http://127.0.0.1:${gatewayPort}/healthz; curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:${gatewayPort}/metrics`);
  assert.equal(gwInside.stdout, '200 403');
  // Each sandbox reaches the gateway from a loopback address of its own: limits per client count it alone.
  const seen = async (api: Api, id: string) => {
    await exec(api, id, `curl -s -o /dev/null -H 'content-type: application/json' -d '{"username":"relay-probe-${id}","password":"x"}' http://127.0.0.1:${gatewayPort}/api/auth/login`);
    const audit = (await admin.call('GET', '/api/audit?action=auth.login')).body;
    const entries = (Array.isArray(audit) ? audit : audit.entries) as { target: string; ip: string }[];
    return entries.find((e) => e.target === `relay-probe-${id}`)?.ip;
  };
  const [ipA, ipB] = [await seen(ann, a), await seen(admin, b)];
  assert.match(String(ipA), /^127\.\d+\.\d+\.\d+$/);
  assert.notEqual(ipA, '127.0.0.1');
  assert.notEqual(ipA, ipB);
  // The outside world (a server in a network namespace the test made) is reachable.
  const out = await exec(ann, a, `curl -s -m 10 http://${outside.address}/hello.txt`);
  assert.equal(out.stdout, 'from the outside world\n', out.stderr);

  // Previews: each owner's own page.
  const pa = await ann.call('GET', `/vscode-proxy/${a}/proxy/3000/who.txt`);
  const pb = await admin.call('GET', `/vscode-proxy/${b}/proxy/3000/who.txt`);
  assert.equal(pa.status, 200, pa.text);
  assert.equal(pa.text, 'ann\n');
  assert.equal(pb.text, 'admin\n');
  // ann's server stops; admin's keeps 3000 (in its own network): ann's preview never shows admin's page.
  await exec(ann, a, "pkill -f 'http.server 3000'; sleep 0.3");
  for (let i = 0; i < 5; i++) {
    const again = await ann.call('GET', `/vscode-proxy/${a}/proxy/3000/who.txt`);
    assert.notEqual(again.text, 'admin\n');
    assert.equal(again.status, 502, again.text);
  }
  assert.equal((await admin.call('GET', `/vscode-proxy/${b}/proxy/3000/who.txt`)).text, 'admin\n');
  await Promise.all([ann.call('DELETE', `/api/sandboxes/${a}`), admin.call('DELETE', `/api/sandboxes/${b}`)]);
});

test('no new user namespaces, in the main process and in exec; PID 1 names no host path', { timeout: 120_000 }, async () => {
  const made = await ann.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', workspace: null });
  assert.equal(made.body?.state, 'running', made.text);
  const id = made.body.sandboxID;
  const r = await exec(ann, id, 'unshare -Ur id -u; echo "exit=$?"; grep "^Seccomp:" /proc/self/status /proc/1/status');
  assert.match(r.stdout, /^exit=[1-9]\d*\n/, r.stdout);
  assert.match(r.stderr, /unshare failed: Operation not permitted/);
  assert.match(r.stdout, /\/proc\/self\/status:Seccomp:\s+2\n\/proc\/1\/status:Seccomp:\s+2\n/);
  // code-server's own children (the integrated terminal's shells) descend from the filtered main process.
  const terminalLike = await exec(ann, id, "grep '^Seccomp:' /proc/$(pgrep -o -f '^/opt/codeyard/node/bin/node /opt/codeyard/code-server')/status");
  assert.match(terminalLike.stdout, /Seccomp:\s+2/);
  const cmdline = await exec(ann, id, 'tr "\\0" " " < /proc/1/cmdline');
  assert.match(cmdline.stdout, /^\/usr\/bin\/bwrap --args \d+ -- \/usr\/bin\/setpriv /);
  assert.ok(!cmdline.stdout.includes(gw.dataDir) && !cmdline.stdout.includes('/sandboxes/') && !cmdline.stdout.includes('.cache/codeyard'), cmdline.stdout);
  assert.equal((await ann.call('DELETE', `/api/sandboxes/${id}`)).status, 204);
});

test('a database restored from another data dir names that gateway\'s processes: the new gateway signals none of them', { timeout: 240_000 }, async () => {
  const made = await ann.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', name: 'keep-running' });
  assert.equal(made.body?.state, 'running', made.text);
  const id = made.body.sandboxID;
  const pidsBefore = sandboxProcesses(id).sort();
  assert.ok(pidsBefore.length > 0);
  const backup = await fetch(`${gw.url}/api/backups`, { method: 'POST', headers: admin.headers });
  assert.equal(backup.status, 200);
  const archive = join(mkdtempSync('/tmp/cy-bk-'), 'backup.tar.gz');
  writeFileSync(archive, Buffer.from(await backup.arrayBuffer()));

  const other = tempDataDir();
  execFileSync(process.execPath, [join(ROOT, 'src/cli/main.ts'), 'restore', archive, '--data-dir', other], { stdio: 'pipe' });
  const second = await startGatewayProcess({ dataDir: other });
  try {
    const annThere = await Api.login(second.url, 'ann', 'ann-password-1');
    // The copy starts its own sandbox from the restored files; the first gateway's stays as it was.
    await waitFor('the copy running', async () => (await annThere.call('GET', `/api/sandboxes/${id}`)).body.state, (s) => s === 'running', 120_000);
    for (const pid of pidsBefore) assert.doesNotThrow(() => process.kill(pid, 0), `pid ${pid} of the first gateway's sandbox was killed`);
    assert.equal((await exec(ann, id, 'echo still-mine')).stdout, 'still-mine\n');
    assert.equal((await ann.call('GET', `/api/sandboxes/${id}`)).body.state, 'running');
  } finally {
    await second.destroy();
  }
  // Destroying the copy did not take the original with it either.
  assert.equal((await exec(ann, id, 'echo survived')).stdout, 'survived\n');
});
