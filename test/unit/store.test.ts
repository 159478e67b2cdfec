import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../../src/store/store.ts';
import { tempDir } from '../helpers/temp-dir.ts';

test('migrations apply once; the database reopens with its data (WAL)', () => {
  const dir = tempDir('cy-store-');
  const s1 = Store.open(dir);
  assert.equal(s1.db.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(s1.db.pragma('user_version', { simple: true }), 9);
  s1.users.create('dan', 'hash', 'user');
  s1.close();
  const s2 = Store.open(dir);
  assert.equal(s2.users.credentials('dan')?.user.username, 'dan');
  assert.equal(s2.db.pragma('user_version', { simple: true }), 9);
  assert.equal(statSync(join(dir, 'codeyard.db')).mode & 0o777, 0o600);
  s2.close();
});

test('sandbox records round-trip, update, list per owner; seq is never reused', () => {
  const s = Store.inMemory();
  const dan = s.users.create('dan', 'h', 'user');
  const eve = s.users.create('eve', 'h', 'user');
  const base = { templateID: 'vscode', name: 'n', memoryMB: 512, cpuCount: 1.5, createdAt: new Date().toISOString(), endAt: null, metadata: { team: 'a' }, envVars: { A: '1' }, workspaceId: null };
  const a = s.sandboxes.insert({ ...base, sandboxID: 'a1', ownerId: dan.id });
  const b = s.sandboxes.insert({ ...base, sandboxID: 'b1', ownerId: eve.id });
  assert.equal(a.state, 'starting');
  assert.deepEqual(a.metadata, { team: 'a' });
  assert.equal(a.cpuCount, 1.5);
  assert.equal(s.sandboxes.list(dan.id).length, 1);
  assert.equal(s.sandboxes.list().length, 2);
  const u = s.sandboxes.update('a1', { state: 'running', driverState: { pid: 3 }, limits: 'not-enforced' });
  assert.equal(u?.state, 'running');
  assert.deepEqual(u?.driverState, { pid: 3 });
  assert.equal(u?.limits, 'not-enforced');
  s.sandboxes.delete('b1');
  const c = s.sandboxes.insert({ ...base, sandboxID: 'c1', ownerId: eve.id });
  assert.ok(c.seq > b.seq, 'AUTOINCREMENT keeps uids unique across deletes');
  assert.throws(() => s.db.prepare("UPDATE sandboxes SET state = 'bogus' WHERE id = 'a1'").run(), /CHECK/);
});

test('sessions expire; api keys are found by hash and scoped to their user', () => {
  const s = Store.inMemory();
  const dan = s.users.create('dan', 'h', 'user');
  s.sessions.create('t1', dan.id, new Date(Date.now() + 60_000));
  s.sessions.create('t2', dan.id, new Date(Date.now() - 1));
  assert.equal(s.sessions.get('t1')?.userId, dan.id);
  s.sessions.deleteExpired();
  assert.equal(s.sessions.get('t2'), undefined, 'expired sessions are swept');
  assert.ok(s.sessions.redeem('jti-1', new Date(Date.now() + 1000)));
  assert.equal(s.sessions.redeem('jti-1', new Date(Date.now() + 1000)), false);
  s.apiKeys.create({ id: 'k1', userId: dan.id, name: 'ci', keyHash: 'h1', prefix: 'cy_abcde' });
  assert.equal(s.apiKeys.byHash('h1')?.id, 'k1');
  assert.equal(s.apiKeys.delete('k1', dan.id + 1), false);
  assert.equal(s.apiKeys.delete('k1', dan.id), true);
});

test('crash history keeps the newest 20 per sandbox and goes with the sandbox', () => {
  const s = Store.inMemory();
  const dan = s.users.create('dan', 'h', 'user');
  s.sandboxes.insert({ sandboxID: 'c1', templateID: 'vscode', name: 'n', ownerId: dan.id, memoryMB: 1, cpuCount: 1, createdAt: '', endAt: null, metadata: {}, envVars: {}, workspaceId: null });
  for (let i = 0; i < 25; i++) s.crashes.add('c1', { at: `t${i}`, exitCode: i, signal: null, uptimeSeconds: 1, classification: 'nonzero_exit', logTail: '' });
  const list = s.crashes.list('c1');
  assert.equal(list.length, 20);
  assert.equal(list[0]!.at, 't24', 'newest first');
  s.sandboxes.delete('c1');
  assert.equal(s.crashes.list('c1').length, 0);
});
