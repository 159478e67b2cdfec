// Admission control against the real gateway and code-server: with a memory
// share that fits two 512 MiB sandboxes on this machine, the third create is
// refused with 503 naming what is committed; stopping one lets it in.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { totalmem } from 'node:os';
import { Api, startGatewayProcess, type RunningGateway } from '../helpers/gateway-process.ts';

const SANDBOX_MB = 512;
/** Room for two and a half sandboxes of this machine's memory: two fit, a third does not. */
const memoryShare = (2.5 * SANDBOX_MB * 1048576) / totalmem();

let gw: RunningGateway;

before(async () => {
  gw = await startGatewayProcess({ config: `sandboxes:\n  defaultMemoryMB: ${SANDBOX_MB}\n  memoryShare: ${memoryShare}\n` });
});

after(async () => {
  await gw?.destroy();
});

test('the create that would over-commit memory gets 503 with the numbers; a stop makes room', { timeout: 180_000 }, async () => {
  const api = await Api.login(gw.url);
  const running: string[] = [];
  for (let i = 0; i < 2; i++) {
    const r = await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', workspace: null });
    assert.equal(r.body?.state, 'running', r.text);
    running.push(r.body.sandboxID);
  }
  const refused = await api.call('POST', '/api/sandboxes', { templateID: 'vscode', workspace: null });
  assert.equal(refused.status, 503);
  assert.equal(refused.body.error, 'insufficient_capacity');
  assert.match(refused.body.message, /^this host has 1 GiB of [\d.]+ GiB committed to 2 running sandboxes \(limit [\d.]+ %, 1\.3 GiB\): a 0\.5 GiB sandbox would pass it; stop a sandbox/);
  assert.equal((await api.call('GET', '/api/sandboxes')).body.length, 2, 'no record for the refused one');

  // Starting a stopped one again is admitted the same way.
  assert.equal((await api.call('POST', `/api/sandboxes/${running[0]}/stop`)).body.state, 'stopped');
  const third = await api.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', workspace: null });
  assert.equal(third.body?.state, 'running', third.text);
  const restart = await api.call('POST', `/api/sandboxes/${running[0]}/start`);
  assert.equal(restart.status, 503);
  assert.match(restart.body.message, /committed to 2 running sandboxes/);
});
