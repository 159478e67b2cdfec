// A disabled user keeps nothing running: against a real gateway with real VS Code
// sandboxes, disabling the user stops every one of theirs (processes gone, files
// kept), enabling starts none, and an admin can start them again on their files.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, sandboxProcesses, startGatewayProcess, type RunningGateway } from '../helpers/gateway-process.ts';

let gw: RunningGateway;
let admin: Api;

before(async () => {
  gw = await startGatewayProcess();
  admin = await Api.login(gw.url);
});

after(async () => {
  await gw?.destroy();
});

const state = async (id: string) => (await admin.call('GET', `/api/sandboxes/${id}`)).body.state as string;

test('disabling a user stops their sandboxes, files kept; enabling starts none; an admin can start them again', { timeout: 180_000 }, async () => {
  assert.equal((await admin.call('POST', '/api/users', { username: 'dana', password: 'dana-password-1' })).status, 201);
  const dana = await Api.login(gw.url, 'dana', 'dana-password-1');
  const created = await Promise.all([
    dana.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode' }),
    dana.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', workspace: null }),
  ]);
  const ids = created.map((c) => { assert.equal(c.body.state, 'running', c.text); return c.body.sandboxID as string; });
  const [box] = ids as [string, string];
  const wrote = await dana.call('POST', `/api/sandboxes/${box}/exec`, { cmd: 'echo keep-me > notes.txt && sleep 1000 > /dev/null 2>&1 &' });
  assert.equal(wrote.body.exitCode, 0, wrote.text);
  for (const id of ids) assert.ok(sandboxProcesses(id, gw.dataDir).length > 0, `${id} has no processes to begin with`);

  const disabled = await admin.call('PATCH', '/api/users/dana', { disabled: true });
  assert.equal(disabled.status, 200, disabled.text);
  assert.equal(disabled.body.disabled, true);
  for (const id of ids) {
    assert.equal(await state(id), 'stopped', `${id} after disabling`);
    assert.deepEqual(sandboxProcesses(id, gw.dataDir), [], `${id} still has processes`);
  }
  assert.equal((await dana.call('GET', '/api/me')).status, 401, 'the session ended too');

  const enabled = await admin.call('PATCH', '/api/users/dana', { disabled: false });
  assert.equal(enabled.status, 200, enabled.text);
  const again = await Api.login(gw.url, 'dana', 'dana-password-1');
  await new Promise((r) => setTimeout(r, 1_000));
  for (const id of ids) {
    assert.equal(await state(id), 'stopped', `${id} after enabling`);
    assert.deepEqual(sandboxProcesses(id, gw.dataDir), []);
  }

  const started = await admin.call('POST', `/api/sandboxes/${box}/start?wait=true`);
  assert.equal(started.body.state, 'running', started.text);
  const read = await again.call('POST', `/api/sandboxes/${box}/exec`, { cmd: 'cat notes.txt' });
  assert.equal(read.body.stdout, 'keep-me\n', read.text);
});
