// Port previews by path, for setups without wildcard DNS: /vscode-proxy/<id>/proxy/<port>/
// and /absproxy/<port>/ reach a server the sandbox runs (real code-server sandbox, real
// python http.server inside it), for its owner only, and never a server outside it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { Api, freePort, startGatewayProcess, upgradeStatus, type RunningGateway } from '../helpers/gateway-process.ts';

let gw: RunningGateway;
let admin: Api;
let id: string;

before(async () => {
  // Path previews serve on the portal's origin: an operator turns them on explicitly.
  gw = await startGatewayProcess({ config: 'routing:\n  pathPreviews: true\n' });
  admin = await Api.login(gw.url);
  const made = await admin.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode' });
  assert.equal(made.body?.state, 'running', made.text);
  id = made.body.sandboxID;
});

after(async () => { await gw?.destroy(); });

test('/proxy/<port>/ strips its path, /absproxy/<port>/ keeps it; owner only; a port outside the sandbox is refused', { timeout: 120_000 }, async () => {
  const port = await freePort();
  const abs = `vscode-proxy/${id}/absproxy/${port}`;
  const started = await admin.call('POST', `/api/sandboxes/${id}/exec`, {
    cmd: `echo relative > rel.txt; mkdir -p ${abs} && echo absolute > ${abs}/abs.txt; setsid nohup python3 -m http.server ${port} --bind 127.0.0.1 >/dev/null 2>&1 & sleep 1`,
  });
  assert.equal(started.body?.exitCode, 0, started.text);

  const rel = await admin.call('GET', `/vscode-proxy/${id}/proxy/${port}/rel.txt`);
  assert.equal(rel.status, 200, rel.text);
  assert.equal(rel.text, 'relative\n');
  const absolute = await admin.call('GET', `/${abs}/abs.txt`);
  assert.equal(absolute.status, 200, absolute.text);
  assert.equal(absolute.text, 'absolute\n');
  // WebSocket upgrades take the same road (a dev server's hot reload); python answers them with a plain 501 or 404.
  assert.notEqual(await upgradeStatus(`${gw.url}/vscode-proxy/${id}/proxy/${port}/`, { cookie: admin.headers.cookie! }), 401);

  // Strangers and other users do not get in.
  assert.equal((await new Api(gw.url).call('GET', `/vscode-proxy/${id}/proxy/${port}/rel.txt`)).status, 401);
  assert.equal((await admin.call('POST', '/api/users', { username: 'eve', password: 'eve-password-1' })).status, 201);
  const eve = await Api.login(gw.url, 'eve', 'eve-password-1');
  assert.equal((await eve.call('GET', `/vscode-proxy/${id}/proxy/${port}/rel.txt`)).status, 403);

  // A server on the host (not the sandbox's) on another port: local sandboxes share the host's
  // network, but a preview only ever reaches the sandbox's own listeners.
  const outsider: Server = createServer((_q, r) => r.end('host secret'));
  const outsidePort = await freePort();
  await new Promise<void>((r) => outsider.listen(outsidePort, '127.0.0.1', r));
  try {
    const refused = await admin.call('GET', `/vscode-proxy/${id}/proxy/${outsidePort}/`);
    assert.equal(refused.status, 502);
    assert.match(refused.body?.message, new RegExp(`nothing in sandbox ${id} listens on port ${outsidePort}`));
    assert.doesNotMatch(refused.text, /host secret/);
  } finally {
    outsider.close();
  }
  // Nothing listening at all: the same clear 502; the gateway keeps serving.
  const none = await admin.call('GET', `/vscode-proxy/${id}/absproxy/${await freePort()}/`);
  assert.equal(none.status, 502);
  assert.equal((await admin.call('GET', '/healthz')).status, 200);
});

test('by default (no routing.pathPreviews), preview paths are a 404 that points at subdomains', { timeout: 60_000 }, async () => {
  const off = await startGatewayProcess();
  try {
    const api = await Api.login(off.url);
    const made = await api.call('POST', '/api/sandboxes', { templateID: 'vscode' });
    const r = await api.call('GET', `/vscode-proxy/${made.body.sandboxID}/proxy/3000/`);
    assert.equal(r.status, 404);
    assert.match(r.body?.message, /port previews by path are off/);
  } finally {
    await off.destroy();
  }
});
