// Default per-user limits, the per-sandbox ceiling and a user's share of the
// host, against the real gateway and code-server. The host admits two and a
// half 512 MiB sandboxes (memoryShare); one user may hold half of that
// (userShare): one sandbox. So a greedy user is refused with 403 at their share,
// and another user's create still runs instead of getting 503.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { totalmem } from 'node:os';
import { Api, startGatewayProcess, type RunningGateway } from '../helpers/gateway-process.ts';

const SANDBOX_MB = 512;
/** Room for two and a half sandboxes of this machine's memory (1280 MiB); a user's half of it (640 MiB) holds one. */
const memoryShare = (2.5 * SANDBOX_MB * 1048576) / totalmem();

let gw: RunningGateway;
let admin: Api;
let ann: Api;
let bob: Api;

before(async () => {
  gw = await startGatewayProcess({
    config: 'users:\n  defaultLimits:\n    maxSandboxes: 1\n' +
      `sandboxes:\n  defaultMemoryMB: ${SANDBOX_MB}\n  maxMemoryMB: 1024\n  memoryShare: ${memoryShare}\n  userShare: 0.5\n`,
  });
  admin = await Api.login(gw.url);
  for (const username of ['ann', 'bob']) {
    const r = await admin.call('POST', '/api/users', { username, password: `${username}-password-1` });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(r.body.limitSettings, { maxSandboxes: 'default', maxMemoryMB: 'default', maxCpu: 'default' });
  }
  ann = await Api.login(gw.url, 'ann', 'ann-password-1');
  bob = await Api.login(gw.url, 'bob', 'bob-password-1');
});

after(async () => {
  await gw?.destroy();
});

test('past sandboxes.maxMemoryMB is 403 naming it; a user at the default maxSandboxes is refused with 403 naming that', { timeout: 180_000 }, async () => {
  assert.equal((await ann.call('GET', '/api/me')).body.limits.maxSandboxes, 1, 'the configured default is in force');
  const big = await ann.call('POST', '/api/sandboxes', { templateID: 'vscode', memoryMB: 2048, workspace: null });
  assert.equal(big.status, 403, big.text);
  assert.equal(big.body.error, 'quota_exceeded');
  assert.match(big.body.message, /^memoryMB 2048: a sandbox may have at most 1024 on this gateway \(sandboxes\.maxMemoryMB\): ask for less/);

  const first = await ann.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', workspace: null });
  assert.equal(first.body?.state, 'running', first.text);
  const second = await ann.call('POST', '/api/sandboxes', { templateID: 'vscode', workspace: null });
  assert.equal(second.status, 403, second.text);
  assert.equal(second.body.error, 'quota_exceeded');
  assert.equal(second.body.message, 'quota: maxSandboxes for ann is 1 (users.defaultLimits.maxSandboxes) and 1 exist; delete one first; an admin can raise it for ann (limits.maxSandboxes)');
  assert.equal((await ann.call('GET', '/api/sandboxes')).body.length, 1, 'no record for the refused ones');
});

test('one user cannot make another\'s start fail with 503: the greedy one gets 403 at their share, the other\'s sandbox runs', { timeout: 180_000 }, async () => {
  // The admin lifts ann's sandbox count (null: no limit); her share of the host's memory still holds.
  const lifted = await admin.call('PATCH', '/api/users/ann', { limits: { maxSandboxes: null } });
  assert.equal(lifted.body.limits.maxSandboxes, null, lifted.text);
  const greedy = await ann.call('POST', '/api/sandboxes', { templateID: 'vscode', workspace: null });
  // Whatever ann got, bob's create comes next, as it would on a shared machine: it must run.
  const other = await bob.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode', workspace: null });
  assert.equal(other.status, 201, other.text);
  assert.equal(other.body.state, 'running', other.text);
  const ran = await bob.call('POST', `/api/sandboxes/${other.body.sandboxID}/exec`, { cmd: 'echo bob-runs' });
  assert.equal(ran.body?.stdout, 'bob-runs\n', ran.text);

  assert.equal(greedy.status, 403, greedy.text);
  assert.equal(greedy.body.error, 'quota_exceeded');
  assert.match(greedy.body.message, /^ann's sandboxes hold 0\.5 GiB and one user may hold 0\.6 GiB \(sandboxes\.userShare 50 % of the 1\.3 GiB this host admits\), to leave room for others: a 0\.5 GiB sandbox would pass it; stop one of ann's sandboxes/);

  // With both users at their share the host is full: only then does a start get 503.
  const full = await admin.call('POST', '/api/sandboxes', { templateID: 'vscode', workspace: null });
  assert.equal(full.status, 503, full.text);
  assert.equal(full.body.error, 'insufficient_capacity');
});
