// Persistent workspaces: names, directories, rename, guarded delete, purge.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Store } from '../../src/store/store.ts';
import { WorkspaceService } from '../../src/workspaces/workspace-service.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const setup = () => {
  const store = Store.inMemory();
  const dataDir = tempDir('codeyard-ws-');
  const workspaces = new WorkspaceService({ store, dataDir, log: pino({ level: 'silent' }) });
  const dan = store.users.create('dan', 'h', 'user');
  return { store, dataDir, workspaces, dan };
};

test('create makes <dataDir>/users/<user>/<name>/{workspace,config}; names are checked; duplicates refused', () => {
  const { dataDir, workspaces, dan } = setup();
  const w = workspaces.create(dan, 'web-app');
  assert.deepEqual({ name: w.name, owner: w.owner, sandboxes: w.sandboxes }, { name: 'web-app', owner: 'dan', sandboxes: [] });
  assert.ok(existsSync(join(dataDir, 'users/dan/web-app/workspace')));
  assert.ok(existsSync(join(dataDir, 'users/dan/web-app/config')));
  for (const bad of ['..', '.hidden', 'a/b', '', 'x'.repeat(65), 'sp ace']) {
    assert.throws(() => workspaces.create(dan, bad), /name: ".*" is not a valid workspace name/, bad);
  }
  assert.throws(() => workspaces.create(dan, 'web-app'), /already exists/);
  assert.equal(workspaces.ensure(dan, 'web-app').name, 'web-app', 'ensure returns the existing one');
});

test('rename moves the files; delete needs ?confirm and no sandbox using it', () => {
  const { store, dataDir, workspaces, dan } = setup();
  workspaces.create(dan, 'old');
  writeFileSync(join(dataDir, 'users/dan/old/workspace/notes.txt'), 'keep me');
  workspaces.create(dan, 'taken');
  assert.throws(() => workspaces.rename(dan, 'old', 'taken'), /already exists/);
  workspaces.rename(dan, 'old', 'new');
  assert.equal(readFileSync(join(dataDir, 'users/dan/new/workspace/notes.txt'), 'utf8'), 'keep me');
  assert.ok(!existsSync(join(dataDir, 'users/dan/old')));

  const ws = store.workspaces.byName(dan.id, 'new')!;
  store.sandboxes.insert({ sandboxID: 's1', templateID: 'vscode', name: 'n', ownerId: dan.id, memoryMB: 1, cpuCount: 1, createdAt: '', endAt: null, metadata: {}, envVars: {}, workspaceId: ws.id });
  assert.throws(() => workspaces.delete(dan, 'new', undefined), /confirm: .*\?confirm=new/);
  assert.throws(() => workspaces.delete(dan, 'new', 'new'), /used by sandbox s1: delete it first/);
  store.sandboxes.delete('s1');
  workspaces.delete(dan, 'new', 'new');
  assert.ok(!existsSync(join(dataDir, 'users/dan/new')));
  assert.throws(() => workspaces.get(dan, 'new'), /not found/);
});

test('purging a user removes their workspaces, records and files', () => {
  const { store, dataDir, workspaces, dan } = setup();
  workspaces.create(dan, 'a');
  workspaces.create(dan, 'b');
  workspaces.purgeUser(dan);
  assert.equal(store.workspaces.list(dan.id).length, 0);
  assert.ok(!existsSync(join(dataDir, 'users/dan')));
});
