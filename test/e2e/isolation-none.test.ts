// The explicit opt-out: without bubblewrap the runtime refuses to start unless
// `runtime.local.isolation: none` is set; with it, code-server still runs for real.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { LocalRuntime } from '../../src/runtime/local/local-runtime.ts';
import { toolchainPaths } from '../../src/toolchain/paths.ts';
import { Api, startGatewayProcess, type RunningGateway } from '../helpers/gateway-process.ts';

let gw: RunningGateway;

before(async () => {
  gw = await startGatewayProcess({ env: { CODEYARD_ISOLATION: 'none' } });
});

after(async () => {
  await gw?.destroy();
});

test('without bwrap on PATH the bubblewrap runtime refuses to start and says what to do', () => {
  const path = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    assert.throws(() => new LocalRuntime({ dataDir: '/tmp/x', toolchain: toolchainPaths(), isolation: 'bubblewrap', uidBase: 200000, log: pino({ level: 'silent' }) }),
      /bubblewrap \(bwrap\) is not installed: .*isolation: none/);
  } finally {
    process.env.PATH = path;
  }
});

test('isolation none: a real code-server starts, exec runs in the workspace with a clean environment', async () => {
  const api = await Api.login(gw.url);
  const r = await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', envVars: { MINE: 'yes' } });
  assert.equal(r.body.state, 'running', r.text);
  const id = r.body.sandboxID;
  const ex = await api.call('POST', `/api/sandboxes/${id}/exec`, { cmd: 'pwd; echo $MINE; env | grep -c CODEYARD_ || true' });
  assert.equal(ex.body.stdout, `${gw.dataDir}/sandboxes/${id}/workspace\nyes\n0\n`);
  const page = await api.call('GET', `/vscode-proxy/${id}/`, undefined, { accept: 'text/html' });
  assert.equal(page.status, 200);
  assert.equal(page.body, undefined);
  assert.match(page.text, /<html/i);
  assert.equal((await api.call('DELETE', `/api/sandboxes/${id}`)).status, 204);
});
