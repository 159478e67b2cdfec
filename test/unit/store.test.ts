import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../../src/store/store.ts';
import { tempDir } from '../helpers/temp-dir.ts';

test('migrations apply once; the database reopens with its data (WAL)', () => {
  const dir = tempDir('cy-store-');
  const s1 = Store.open(dir);
  assert.equal(s1.db.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(s1.db.pragma('user_version', { simple: true }), 10);
  s1.users.create('dan', 'hash', 'user');
  s1.close();
  const s2 = Store.open(dir);
  assert.equal(s2.users.credentials('dan')?.user.username, 'dan');
  assert.equal(s2.db.pragma('user_version', { simple: true }), 10);
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

test('a purged user\'s id (their sandboxes\' host uid) is never given to the next user, across the migration too', () => {
  const s = Store.inMemory();
  s.users.create('admin', 'h', 'admin');
  const dan = s.users.create('dan', 'h', 'user');
  s.users.purge(dan.id);
  const eve = s.users.create('eve', 'h', 'user');
  assert.ok(eve.id > dan.id, `eve got ${eve.id}, dan had ${dan.id}`);
  // A users row that other tables point at survives the table's rebuild with its id.
  assert.equal(s.users.byId(eve.id)?.username, 'eve');
  assert.deepEqual(s.db.pragma('foreign_key_check'), []);
  s.close();
});

test('migration 10 keeps every user, their sessions and keys, and counts on from the highest id ever seen', () => {
  const dir = tempDir('cy-store-');
  const old = new Database(join(dir, 'codeyard.db'));
  // Build a version-9 database by hand: the migrations up to 9, then data.
  old.pragma('foreign_keys = ON');
  for (const f of readdirSync(join(import.meta.dirname, '../../src/store/migrations')).filter((n) => Number.parseInt(n, 10) <= 9).sort()) {
    old.exec(readFileSync(join(import.meta.dirname, '../../src/store/migrations', f), 'utf8'));
  }
  old.pragma('user_version = 9');
  old.prepare("INSERT INTO users (id, username, password_hash, role, created_at) VALUES (1, 'admin', 'h', 'admin', 'now'), (5, 'dan', 'h', 'user', 'now')").run();
  old.prepare("INSERT INTO sessions (token_hash, user_id, created_at, expires_at, last_seen_at) VALUES ('s', 5, 'now', 'later', 'now')").run();
  old.close();
  const s = Store.open(dir);
  assert.equal(s.users.byId(5)?.username, 'dan');
  assert.equal((s.db.prepare('SELECT count(*) AS n FROM sessions WHERE user_id = 5').get() as { n: number }).n, 1);
  s.users.purge(5);
  assert.equal(s.users.create('eve', 'h', 'user').id, 6);
  s.close();
});
