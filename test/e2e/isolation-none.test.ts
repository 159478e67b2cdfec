// The explicit opt-out from bubblewrap. As root it is refused (every sandbox
// user would be root on the host); as an ordinary user a real code-server runs
// as that user with a clean environment. The suite checks whichever applies to
// the user running it, against the real gateway.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { LocalRuntime } from '../../src/runtime/local/local-runtime.ts';
import { toolchainPaths } from '../../src/toolchain/paths.ts';
import { Api, startGatewayProcess } from '../helpers/gateway-process.ts';

const runtimeOptions = (isolation: 'bubblewrap' | 'none') => ({
  dataDir: '/tmp/x', toolchain: toolchainPaths(), isolation, uidBase: 200000, maxProcesses: 4096, socketWaitMs: 1000, log: pino({ level: 'silent' }),
});

test('without bwrap on PATH the bubblewrap runtime refuses to start and says what to do', () => {
  const path = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    assert.throws(() => new LocalRuntime(runtimeOptions('bubblewrap')), /bubblewrap \(bwrap\) is not installed: .*isolation: none/);
  } finally {
    process.env.PATH = path;
  }
});

const asRoot = process.getuid?.() === 0;

test(asRoot ? 'as root, isolation none is refused: the gateway exits naming the setting' : 'isolation none: a real code-server runs as the gateway user with a clean environment', async () => {
  if (asRoot) {
    assert.throws(() => new LocalRuntime(runtimeOptions('none')), /isolation: none is refused when the gateway runs as root/);
    await assert.rejects(startGatewayProcess({ env: { CODEYARD_ISOLATION: 'none' } }), /isolation: none is refused when the gateway runs as root/);
    return;
  }
  const gw = await startGatewayProcess({ env: { CODEYARD_ISOLATION: 'none' } });
  try {
    const api = await Api.login(gw.url);
    const r = await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', envVars: { MINE: 'yes' } });
    assert.equal(r.body.state, 'running', r.text);
    const id = r.body.sandboxID;
    const ex = await api.call('POST', `/api/sandboxes/${id}/exec`, { cmd: 'pwd; echo $MINE; env | grep -c CODEYARD_ || true' });
    assert.equal(ex.body.stdout, `${gw.dataDir}/users/admin/default/workspace\nyes\n0\n`);
    const page = await api.call('GET', `/vscode-proxy/${id}/`, undefined, { accept: 'text/html' });
    assert.equal(page.status, 200);
    assert.equal((await api.call('DELETE', `/api/sandboxes/${id}`)).status, 204);
  } finally {
    await gw.destroy();
  }
});
