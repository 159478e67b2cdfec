// Lifecycle rules of the SandboxService over a fake driver: overlapping
// operations, timeouts, reconciliation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { SandboxService } from '../../src/sandboxes/sandbox-service.ts';
import { Store } from '../../src/store/store.ts';
import { FakeRuntime } from '../helpers/fake-runtime.ts';
import { WorkspaceService } from '../../src/workspaces/workspace-service.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tempDir } from '../helpers/temp-dir.ts';

const workspacesFor = (store: Store) => new WorkspaceService({ store, dataDir: tempDir('codeyard-ws-'), log: pino({ level: 'silent' }) });

const setup = (over: Partial<ConstructorParameters<typeof SandboxService>[0]> = {}) => {
  const store = Store.inMemory();
  const runtime = new FakeRuntime();
  const owner = store.users.create('dan', 'h', 'user');
  const service = new SandboxService({
    store, runtime, workspaces: workspacesFor(store), log: pino({ level: 'silent' }), defaults: { memoryMB: 512, cpuCount: 1 }, startTimeoutMs: 60_000, ...over,
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

test('a sandbox with a persistent workspace is stopped at its timeout (files kept); starting it again clears the old deadline', async () => {
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

test('a throwaway sandbox is deleted at its timeout; templates.<id>.onExpiry overrides either way', async () => {
  const { runtime, owner, service, store } = setup({ reaperIntervalMs: 30 });
  service.startReaper();
  const throwaway = service.create(owner, { templateID: 'vscode', timeout: 1, workspace: null });
  assert.equal(throwaway.workspace, null);
  assert.equal((await service.settled(throwaway.sandboxID)).state, 'running');
  await sleep(1300);
  await service.settled(throwaway.sandboxID).catch(() => {});
  assert.equal(store.sandboxes.get(throwaway.sandboxID), undefined, 'deleted, record and all');
  assert.ok(runtime.calls.includes(`remove ${throwaway.sandboxID}`));
  await service.close();

  const keep = setup({ reaperIntervalMs: 30, onExpiry: { vscode: 'stop' } });
  keep.service.startReaper();
  const kept = keep.service.create(keep.owner, { templateID: 'vscode', timeout: 1, workspace: null });
  await keep.service.settled(kept.sandboxID);
  await sleep(1300);
  assert.equal((await keep.service.settled(kept.sandboxID)).state, 'stopped');
  await keep.service.close();
  await keep.runtime.closeAll();
  await runtime.closeAll();
});

test('sandboxes mount the user\'s default workspace unless told otherwise; a workspace in use cannot be deleted', async () => {
  const { runtime, owner, service, store } = setup();
  const a = service.create(owner, { templateID: 'vscode' });
  const b = service.create(owner, { templateID: 'vscode', workspace: 'project-x' });
  assert.equal(a.workspace?.name, 'default');
  assert.equal(b.workspace?.name, 'project-x');
  await service.settled(a.sandboxID);
  assert.deepEqual(runtime.specs.get(a.sandboxID)?.workspace, { owner: 'dan', name: 'default' });
  assert.deepEqual(store.workspaces.list(owner.id).map((w) => w.name), ['default', 'project-x']);
  assert.throws(() => service.create(owner, { templateID: 'vscode', workspace: '../etc' }), /workspace: "\.\.\/etc" is not a valid workspace name/);
  await service.close();
  await runtime.closeAll();
});

test('a dead main process is noticed when the proxy cannot reach it, and start brings it back', async () => {
  const { runtime, owner, service } = setup();
  const s = service.create(owner, { templateID: 'vscode' });
  await service.settled(s.sandboxID);
  await runtime.closeAll();
  await service.reportUnreachable(s.sandboxID);
  const dead = await service.settled(s.sandboxID);
  assert.equal(dead.state, 'restarting');
  assert.equal(dead.lastCrash?.classification, 'nonzero_exit');
  assert.match(dead.lastCrash!.logTail, /fake log/);
  assert.equal(service.endpoint(s.sandboxID, 'ide'), undefined);
  await service.start(owner, s.sandboxID);
  assert.equal((await service.settled(s.sandboxID)).state, 'running');
  await service.close();
  await runtime.closeAll();
});

test('reconcile adopts live sandboxes, restarts dead ones that should run, and survives a record it cannot handle', async () => {
  const { store, runtime, owner, service } = setup();
  const live = service.create(owner, { templateID: 'vscode' });
  const dead = service.create(owner, { templateID: 'vscode' });
  await service.settled(live.sandboxID);
  await service.settled(dead.sandboxID);
  await runtime.stop({ sandboxID: dead.sandboxID } as never);
  store.db.prepare("UPDATE sandboxes SET template_id = 'retired' WHERE id = ?").run(dead.sandboxID);
  const bogus = store.sandboxes.insert({ sandboxID: 'bogus', templateID: 'vscode', name: 'b', ownerId: owner.id, memoryMB: 1, cpuCount: 1, createdAt: '', endAt: null, metadata: {}, envVars: {}, workspaceId: null });
  store.sandboxes.update(bogus.sandboxID, { state: 'running' });

  const fresh = new SandboxService({ store, runtime, workspaces: workspacesFor(store), log: pino({ level: 'silent' }), defaults: { memoryMB: 1, cpuCount: 1 }, startTimeoutMs: 1000 });
  await fresh.reconcile();
  assert.equal(store.sandboxes.get(live.sandboxID)!.state, 'running');
  assert.ok(fresh.endpoint(live.sandboxID, 'ide'));
  assert.equal(store.sandboxes.get(dead.sandboxID)!.state, 'error');
  assert.match(store.sandboxes.get(dead.sandboxID)!.error!, /template "retired"/);
  assert.equal((await fresh.settled('bogus')).state, 'running', 'meant to run, found dead: restarted');
  await fresh.close();
  await runtime.closeAll();
});

test('a crash loop backs off between restarts and ends in error after maxFailures', async () => {
  const { runtime, owner, service } = setup({
    supervision: { backoffMs: [50, 100, 200], resetAfterMs: 60_000, maxFailures: 4, checkIntervalMs: 10, healthIntervalMs: 1000, healthFailures: 3 },
  });
  const starts: number[] = [];
  const start = runtime.start.bind(runtime);
  runtime.start = async (spec) => { starts.push(Date.now()); runtime.failNextStart = true; return start(spec); };
  const s = service.create(owner, { templateID: 'vscode' });
  let record = await service.settled(s.sandboxID);
  for (let i = 0; i < 200 && record.state !== 'error'; i++) { await sleep(10); record = await service.settled(s.sandboxID); }
  assert.equal(record.state, 'error');
  assert.equal(starts.length, 4);
  const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
  assert.ok(gaps[0]! >= 45 && gaps[1]! >= 95 && gaps[2]! >= 195, `back-off not observed: ${gaps}`);
  assert.match(record.error!, /failed 4 times in a row \(nonzero_exit\)/);
  assert.equal(record.restarts, 3);
  await runtime.closeAll();
});

test('the supervisor notices a dead main process by itself and restarts it', async () => {
  const { runtime, owner, service } = setup({
    supervision: { backoffMs: [20], resetAfterMs: 60_000, maxFailures: 5, checkIntervalMs: 10, healthIntervalMs: 1000, healthFailures: 3 },
  });
  const s = service.create(owner, { templateID: 'vscode' });
  await service.settled(s.sandboxID);
  await runtime.closeAll(); // the process dies behind the gateway's back
  let record = await service.settled(s.sandboxID);
  for (let i = 0; i < 200 && !(record.state === 'running' && record.restarts === 1); i++) { await sleep(10); record = await service.settled(s.sandboxID); }
  assert.equal(record.state, 'running');
  assert.equal(record.restarts, 1);
  assert.equal(record.lastCrash?.classification, 'nonzero_exit');
  await service.close();
  await runtime.closeAll();
});

test('the timeout can be extended from now, or removed', async () => {
  const { runtime, owner, service } = setup();
  const s = service.create(owner, { templateID: 'vscode', timeout: 60 });
  await service.settled(s.sandboxID);
  const extended = service.setTimeout(owner, s.sandboxID, 7200);
  const left = Date.parse(extended.endAt!) - Date.now();
  assert.ok(left > 7190_000 && left <= 7200_000, String(left));
  assert.equal(service.setTimeout(owner, s.sandboxID, 0).endAt, null);
  await service.close();
  await runtime.closeAll();
});

test('a server that stops answering is confirmed dead within a few checks, not a few health intervals', async () => {
  const { runtime, owner, service } = setup({
    supervision: { backoffMs: [20], resetAfterMs: 60_000, maxFailures: 5, checkIntervalMs: 20, healthIntervalMs: 200, healthFailures: 3 },
  });
  const s = service.create(owner, { templateID: 'vscode' });
  await service.settled(s.sandboxID);
  runtime.unhealthy.add(s.sandboxID); // alive, but answering 503
  const t0 = Date.now();
  let record = await service.settled(s.sandboxID);
  for (let i = 0; i < 200 && record.restarts === 0; i++) { await sleep(10); record = await service.settled(s.sandboxID); }
  assert.equal(record.restarts, 1);
  assert.ok(Date.now() - t0 < 200 + 3 * 20 + 300, `took ${Date.now() - t0} ms`);
  assert.match(record.lastCrash ? 'crash recorded' : '', /crash recorded/);
  await service.close();
  await runtime.closeAll();
});
