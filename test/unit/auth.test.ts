import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashPassword, verifyPassword } from '../../src/auth/passwords.ts';
import { AuthService } from '../../src/auth/auth-service.ts';
import { readCookie } from '../../src/auth/cookies.ts';
import { tokenHash } from '../../src/auth/secrets.ts';
import { Store } from '../../src/store/store.ts';

test('passwords are argon2id and verify only the right password', async () => {
  const h = await hashPassword('correct horse');
  assert.match(h, /^\$argon2id\$/);
  assert.equal(await verifyPassword(h, 'correct horse'), true);
  assert.equal(await verifyPassword(h, 'wrong'), false);
  assert.equal(await verifyPassword(undefined, 'anything'), false);
});

test('unknown user and wrong password fail the same way, in similar time', async () => {
  const store = Store.inMemory();
  const auth = new AuthService(store, 3600_000);
  await auth.createUser('dan', 'pw-dan-123', 'user');
  await auth.login('nobody', 'x').catch(() => {}); // warm the dummy hash
  const time = async (u: string) => {
    const t = performance.now();
    const err = await auth.login(u, 'wrong').catch((e) => e);
    return { ms: performance.now() - t, message: err.message, status: err.status };
  };
  const a = await time('dan');
  const b = await time('nobody');
  assert.equal(a.message, b.message);
  assert.equal(a.status, 401);
  assert.ok(Math.abs(a.ms - b.ms) < Math.max(a.ms, b.ms) * 0.75 + 5, `timings differ too much: ${a.ms} vs ${b.ms}`);
});

test('sessions and API keys authenticate; disabled users and logged-out sessions do not', async () => {
  const store = Store.inMemory();
  const auth = new AuthService(store, 3600_000);
  const dan = await auth.createUser('dan', 'pw-dan-123', 'user');
  const { sessionToken } = await auth.login('dan', 'pw-dan-123');
  assert.equal(auth.authenticate({ cookie: `other=1; codeyard_session=${sessionToken}` })?.user.username, 'dan');
  assert.equal(store.sessions.userIdFor(sessionToken), undefined, 'tokens are stored hashed, not as-is');
  assert.equal(store.sessions.userIdFor(tokenHash(sessionToken)), dan.id);

  const { key, record } = auth.createApiKey(dan.id, 'ci');
  assert.match(key, /^cy_[A-Za-z0-9_-]{43}$/);
  assert.equal(auth.authenticate({ 'x-api-key': key })?.via, 'key');
  assert.equal(auth.authenticate({ authorization: `Bearer ${key}` })?.user.id, dan.id);
  assert.equal(auth.authenticate({ authorization: `Bearer ${key}x` }), undefined);
  assert.ok(store.apiKeys.listForUser(dan.id)[0]?.lastUsedAt);

  auth.logout(sessionToken);
  assert.equal(auth.authenticate({ cookie: `codeyard_session=${sessionToken}` }), undefined);
  store.db.prepare('UPDATE users SET disabled = 1 WHERE id = ?').run(dan.id);
  assert.equal(auth.authenticate({ 'x-api-key': key }), undefined);
  await assert.rejects(auth.login('dan', 'pw-dan-123'), /wrong username or password/);
  assert.ok(store.apiKeys.delete(record.id, dan.id));
});

test('readCookie finds a cookie among others and survives junk', () => {
  assert.equal(readCookie('a=1; codeyard_session=abc; b=2', 'codeyard_session'), 'abc');
  assert.equal(readCookie('codeyard_session=%E0%A4%A', 'codeyard_session'), undefined);
  assert.equal(readCookie(undefined, 'x'), undefined);
  assert.equal(readCookie('novalue; x=1', 'x'), '1');
});
