// Lifecycle rules of the SandboxService over a fake driver: overlapping
// operations, timeouts, reconciliation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { SandboxService } from '../../src/sandboxes/sandbox-service.ts';
import { Store } from '../../src/store/store.ts';
import { FakeRuntime } from '../helpers/fake-runtime.ts';

const setup = (over: Partial<ConstructorParameters<typeof SandboxService>[0]> = {}) => {
  const store = Store.inMemory();
  const runtime = new FakeRuntime();
  const owner = store.users.create('dan', 'h', 'user');
  const service = new SandboxService({
    store, runtime, log: pino({ level: 'silent' }), defaults: { memoryMB: 512, cpuCount: 1 }, startTimeoutMs: 60_000, ...over,
  });
  return { store, runtime, owner, service };
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('deleting a sandbox that is still starting cancels the start instead of waiting it out', async () => {
  const { runtime, owner, service } = setup();
  runtime.unhealthyNextStart = true;
  const s = service.create(owner, { templateID: 'vscode' });
  await sleep(100);
  const t0 = Date.now();
  await service.delete(owner, s.sandboxID);
  assert.ok(Date.now() - t0 < 2000, `delete took ${Date.now() - t0} ms`);
  assert.throws(() => service.getFor(owner, s.sandboxID), /not found/);
  assert.equal(runtime.servers.size, 0);
  await runtime.closeAll();
});

test('stop during start ends stopped, and a later start runs', async () => {
  const { runtime, owner, service } = setup();
  runtime.unhealthyNextStart = true;
  const s = service.create(owner, { templateID: 'vscode' });
  await sleep(50);
  assert.equal((await service.stop(owner, s.sandboxID)).state, 'stopped');
  runtime.unhealthy.clear();
  await service.start(owner, s.sandboxID);
  assert.equal((await service.settled(s.sandboxID)).state, 'running');
  await runtime.closeAll();
});

test('a sandbox past its timeout is stopped (files kept); starting it again clears the old deadline', async () => {
  const { runtime, owner, service } = setup({ reaperIntervalMs: 30 });
  service.startReaper();
  const s = service.create(owner, { templateID: 'vscode', timeout: 1 });
  assert.equal((await service.settled(s.sandboxID)).state, 'running');
  await sleep(1200);
  assert.equal((await service.settled(s.sandboxID)).state, 'stopped');
  assert.ok(runtime.calls.includes(`stop ${s.sandboxID}`) && !runtime.calls.includes(`remove ${s.sandboxID}`));
  await service.start(owner, s.sandboxID);
  const again = await service.settled(s.sandboxID);
  assert.equal(again.state, 'running');
  assert.equal(again.endAt, null);
  await sleep(150);
  assert.equal((await service.settled(s.sandboxID)).state, 'running', 'the reaper must not stop it again');
  await service.close();
  await runtime.closeAll();
});

test('a dead main process is noticed when the proxy cannot reach it, and start brings it back', async () => {
  const { runtime, owner, service } = setup();
  const s = service.create(owner, { templateID: 'vscode' });
  await service.settled(s.sandboxID);
  await runtime.closeAll();
  await service.reportUnreachable(s.sandboxID);
  const dead = service.getFor(owner, s.sandboxID);
  assert.equal(dead.state, 'error');
  assert.match(dead.error!, /main process exited.*fake log/s);
  assert.equal(service.endpoint(s.sandboxID, 'ide'), undefined);
  await service.start(owner, s.sandboxID);
  assert.equal((await service.settled(s.sandboxID)).state, 'running');
  await runtime.closeAll();
});

test('reconcile adopts live sandboxes, marks dead ones stopped, and survives a record it cannot handle', async () => {
  const { store, runtime, owner, service } = setup();
  const live = service.create(owner, { templateID: 'vscode' });
  const dead = service.create(owner, { templateID: 'vscode' });
  await service.settled(live.sandboxID);
  await service.settled(dead.sandboxID);
  await runtime.stop({ sandboxID: dead.sandboxID } as never);
  store.db.prepare("UPDATE sandboxes SET template_id = 'retired' WHERE id = ?").run(dead.sandboxID);
  const bogus = store.sandboxes.insert({ sandboxID: 'bogus', templateID: 'vscode', name: 'b', ownerId: owner.id, memoryMB: 1, cpuCount: 1, createdAt: '', endAt: null, metadata: {}, envVars: {} });
  store.sandboxes.update(bogus.sandboxID, { state: 'running' });

  const fresh = new SandboxService({ store, runtime, log: pino({ level: 'silent' }), defaults: { memoryMB: 1, cpuCount: 1 }, startTimeoutMs: 1000 });
  await fresh.reconcile();
  assert.equal(store.sandboxes.get(live.sandboxID)!.state, 'running');
  assert.ok(fresh.endpoint(live.sandboxID, 'ide'));
  assert.equal(store.sandboxes.get(dead.sandboxID)!.state, 'error');
  assert.match(store.sandboxes.get(dead.sandboxID)!.error!, /template "retired"/);
  assert.equal(store.sandboxes.get('bogus')!.state, 'stopped');
  await runtime.closeAll();
});
