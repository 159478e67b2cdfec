// Admission control over a fake driver: creates and starts past the memory
// share are refused with 503 and the numbers; supervisor restarts never are.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { MemoryAdmission } from '../../src/sandboxes/admission.ts';
import { SandboxService, DEFAULT_SUPERVISION } from '../../src/sandboxes/sandbox-service.ts';
import { CapacityError } from '../../src/errors.ts';
import { Store } from '../../src/store/store.ts';
import { WorkspaceService } from '../../src/workspaces/workspace-service.ts';
import { FakeRuntime } from '../helpers/fake-runtime.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const GiB = 1024 ** 3;

/** A 4 GiB host whose sandboxes may commit half of it: four 512 MiB sandboxes fit, a fifth does not. */
function setup(memoryShare = 0.5) {
  const store = Store.inMemory();
  const runtime = new FakeRuntime();
  const owner = store.users.create('dan', 'h', 'user');
  const log = pino({ level: 'silent' });
  const service = new SandboxService({
    store, runtime, log, workspaces: new WorkspaceService({ store, dataDir: tempDir('codeyard-ws-'), log }),
    defaults: { memoryMB: 512, cpuCount: 1 }, startTimeoutMs: 10_000,
    admission: new MemoryAdmission({ memoryShare, totalBytes: 4 * GiB }),
    supervision: { ...DEFAULT_SUPERVISION, backoffMs: [50], checkIntervalMs: 20 },
  });
  const create = async () => (await service.settled(service.create(owner, { templateID: 'vscode', workspace: null }).sandboxID));
  return { store, runtime, owner, service, create };
}

test('a create past the memory share is refused with 503 saying what is committed and what to do', async () => {
  const { runtime, owner, service, create } = setup();
  for (let i = 0; i < 4; i++) assert.equal((await create()).state, 'running');
  const refused = (() => { try { service.create(owner, { templateID: 'vscode', workspace: null }); } catch (err) { return err; } })();
  assert.ok(refused instanceof CapacityError);
  assert.equal(refused.status, 503);
  assert.equal(refused.kind, 'insufficient_capacity');
  assert.equal(refused.message, 'this host has 2 GiB of 4 GiB committed to 4 running sandboxes (limit 50 %, 2 GiB): ' +
    'a 0.5 GiB sandbox would pass it; stop a sandbox, ask for less memoryMB, or raise sandboxes.memoryShare');
  assert.equal(service.listFor(owner).length, 4, 'the refused sandbox left no record');
  await service.close();
  await runtime.closeAll();
});

test('starting a stopped sandbox is admitted like a create; stopping one frees its share', async () => {
  const { runtime, owner, service, create } = setup();
  const sandboxes = [];
  for (let i = 0; i < 4; i++) sandboxes.push(await create());
  await service.stop(owner, sandboxes[0]!.sandboxID);
  const fifth = await create();
  assert.equal(fifth.state, 'running', 'the stopped sandbox no longer holds memory');
  await assert.rejects(service.start(owner, sandboxes[0]!.sandboxID), CapacityError);
  await service.delete(owner, fifth.sandboxID);
  await service.start(owner, sandboxes[0]!.sandboxID);
  assert.equal((await service.settled(sandboxes[0]!.sandboxID)).state, 'running');
  // Starting a running sandbox again does not count it twice.
  assert.equal((await service.start(owner, sandboxes[1]!.sandboxID)).state, 'running');
  await service.close();
  await runtime.closeAll();
});

test('a crashed sandbox keeps its share while it waits to restart, and its restart is never refused', async () => {
  const { runtime, owner, service, store, create } = setup();
  const sandboxes = [];
  for (let i = 0; i < 4; i++) sandboxes.push(await create());
  const crashed = sandboxes[0]!.sandboxID;
  await runtime.stop(runtime.specs.get(crashed)!); // its process dies behind the service's back
  const deadline = Date.now() + 5_000;
  while (store.sandboxes.get(crashed)!.state === 'running' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(store.sandboxes.get(crashed)!.state, 'restarting');
  assert.throws(() => service.create(owner, { templateID: 'vscode', workspace: null }), CapacityError);
  while (store.sandboxes.get(crashed)!.state !== 'running' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(store.sandboxes.get(crashed)!.state, 'running', 'the supervisor brought it back on a full host');
  await service.close();
  await runtime.closeAll();
});

test('memoryShare 0 turns admission off; above 1 over-commits on purpose', async () => {
  const records = Array.from({ length: 8 }, (_, i) => ({ sandboxID: `s${i}`, state: 'running', memoryMB: 2048 })) as never[];
  assert.doesNotThrow(() => new MemoryAdmission({ memoryShare: 0, totalBytes: 4 * GiB }).admit(records, 2048));
  assert.deepEqual(new MemoryAdmission({ memoryShare: 0, totalBytes: 4 * GiB }).commitment(records),
    { sandboxes: 8, committedMB: 16384, limitMB: null, totalMB: 4096 });
  assert.doesNotThrow(() => new MemoryAdmission({ memoryShare: 4.5, totalBytes: 4 * GiB }).admit(records, 2048));
  assert.throws(() => new MemoryAdmission({ memoryShare: 4, totalBytes: 4 * GiB }).admit(records, 2048), /16 GiB of 4 GiB committed to 8 running sandboxes \(limit 400 %, 16 GiB\)/);
});
