import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashPassword, verifyPassword } from '../../src/auth/passwords.ts';
import { AuthService } from '../../src/auth/auth-service.ts';
import { IdeTokens } from '../../src/auth/ide-tokens.ts';
import { readCookie, readCookies } from '../../src/auth/cookies.ts';
import { LoginThrottle } from '../../src/auth/login-throttle.ts';
import { tokenHash } from '../../src/auth/secrets.ts';
import { Store } from '../../src/store/store.ts';

const SECRET = new Uint8Array(32).fill(7);
const makeAuth = (store: Store, over: Partial<ConstructorParameters<typeof AuthService>[2]> = {}) => new AuthService(store, new IdeTokens(SECRET), {
  sessionTtlMs: 3600_000, sessionIdleMs: 600_000, ideTokenTtlSeconds: 300,
  throttle: { windowMs: 60_000, freeFailures: 5, baseDelayMs: 1000 }, ...over,
});

test('passwords are argon2id and verify only the right password', async () => {
  const h = await hashPassword('correct horse');
  assert.match(h, /^\$argon2id\$/);
  assert.equal(await verifyPassword(h, 'correct horse'), true);
  assert.equal(await verifyPassword(h, 'wrong'), false);
  assert.equal(await verifyPassword(undefined, 'anything'), false);
});

test('unknown user and wrong password fail the same way, in similar time', async () => {
  const store = Store.inMemory();
  const auth = makeAuth(store);
  await auth.createUser('dan', 'pw-dan-123', 'user');
  await auth.login('nobody', 'x', '1.1.1.1').catch(() => {}); // warm the dummy hash
  const time = async (u: string) => {
    const t = performance.now();
    const err = await auth.login(u, 'wrong', '1.1.1.2').catch((e) => e);
    return { ms: performance.now() - t, message: err.message, status: err.status };
  };
  const a = await time('dan');
  const b = await time('nobody');
  assert.equal(a.message, b.message);
  assert.equal(a.status, 401);
  assert.ok(Math.abs(a.ms - b.ms) < Math.max(a.ms, b.ms) * 0.75 + 5, `timings differ too much: ${a.ms} vs ${b.ms}`);
});

test('sessions and API keys authenticate; disabled users, ended sessions and idle sessions do not', async () => {
  const store = Store.inMemory();
  const auth = makeAuth(store);
  const dan = await auth.createUser('dan', 'pw-dan-123', 'user');
  const { sessionToken } = await auth.login('dan', 'pw-dan-123', '1.1.1.1');
  assert.equal((await auth.require({ cookie: `other=1; codeyard_session=${sessionToken}` })).user.username, 'dan');
  assert.equal(store.sessions.get(sessionToken), undefined, 'tokens are stored hashed, not as-is');
  const tossed = await auth.require({ cookie: `codeyard_session=planted-by-a-page; codeyard_session=${sessionToken}` });
  assert.equal(tossed.user.username, 'dan', 'a planted cookie does not shadow the real session');
  assert.equal(store.sessions.get(tokenHash(sessionToken))?.userId, dan.id);

  const { key, record } = auth.createApiKey(dan.id, 'ci');
  assert.match(key, /^cy_[A-Za-z0-9_-]{43}$/);
  assert.equal((await auth.require({ 'x-api-key': key })).via, 'key');
  assert.equal((await auth.require({ authorization: `Bearer ${key}` })).user.id, dan.id);
  await assert.rejects(auth.require({ authorization: `Bearer ${key}x` }), /API key is invalid or was deleted/);
  assert.ok(store.apiKeys.listForUser(dan.id)[0]?.lastUsedAt);

  auth.logout(sessionToken);
  await assert.rejects(auth.require({ cookie: `codeyard_session=${sessionToken}` }), /session has expired or was ended/);
  store.users.update(dan.id, { disabled: true });
  auth.endSessions(dan.id); // what UserService does on disable: cached credentials go too
  await assert.rejects(auth.require({ 'x-api-key': key }), /invalid or was deleted/);
  await assert.rejects(auth.login('dan', 'pw-dan-123', '1.1.1.1'), /wrong username or password/);
  assert.ok(store.apiKeys.delete(record.id, dan.id));

  const idle = makeAuth(store, { sessionIdleMs: 1 });
  store.users.update(dan.id, { disabled: false });
  const s2 = await idle.login('dan', 'pw-dan-123', '1.1.1.1');
  await new Promise((r) => setTimeout(r, 5));
  await assert.rejects(idle.require({ cookie: `codeyard_session=${s2.sessionToken}` }), /session has expired/);
});

test('IDE links: scoped to one sandbox, one redemption, refused by the API, revoked with their user', async () => {
  const store = Store.inMemory();
  const auth = makeAuth(store);
  const dan = await auth.createUser('dan', 'pw-dan-123', 'user');
  const { token } = await auth.issueIdeToken(dan, 'sandbox-a');
  assert.equal((await auth.require({ authorization: `Bearer ${token}` }, 'sandbox-a')).sandboxScope, 'sandbox-a');
  await assert.rejects(auth.require({ authorization: `Bearer ${token}` }, 'sandbox-b'), /opens another sandbox/);
  await assert.rejects(auth.require({ authorization: `Bearer ${token}` }), /IDE link opens its sandbox's IDE only/);
  const { sessionToken } = await auth.redeemIdeToken(token, 'sandbox-a');
  await assert.rejects(auth.redeemIdeToken(token, 'sandbox-a'), /already used/);
  await assert.rejects(auth.require({ authorization: `Bearer ${token}` }, 'sandbox-a'), /already used/, 'a spent link is spent for every use');
  const scoped = await auth.require({ cookie: `codeyard_ide=${sessionToken}` }, 'sandbox-a');
  assert.equal(scoped.via, 'ide-session');
  await assert.rejects(auth.require({ cookie: `codeyard_ide=${sessionToken}` }, 'sandbox-b'), /authentication required/);
  await assert.rejects(auth.require({ cookie: `codeyard_session=${sessionToken}` }), /session has expired/, 'a scoped session is no API session');

  const forged = await new IdeTokens(new Uint8Array(32).fill(9)).issue(dan, 'sandbox-a', 300);
  await assert.rejects(auth.require({ authorization: `Bearer ${forged.token}` }, 'sandbox-a'), /not valid/);
  const expired = await new IdeTokens(SECRET).issue(dan, 'sandbox-a', -10);
  await assert.rejects(auth.require({ authorization: `Bearer ${expired.token}` }, 'sandbox-a'), /expired/);
  const [h, p, sig] = token.split('.');
  const tampered = [h, Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), sandboxID: 'sandbox-b' })).toString('base64url'), sig].join('.');
  await assert.rejects(auth.require({ authorization: `Bearer ${tampered}` }, 'sandbox-b'), /not valid/);

  auth.endSessions(dan.id);
  await assert.rejects(auth.require({ cookie: `codeyard_ide=${sessionToken}` }, 'sandbox-a'));
  const { token: t2 } = await auth.issueIdeToken(dan, 'sandbox-a');
  store.users.update(dan.id, { disabled: true });
  await assert.rejects(auth.require({ authorization: `Bearer ${t2}` }, 'sandbox-a'), /revoked/);
});

test('login back-off: free failures, then doubling waits, cleared when the window passes', () => {
  const t = new LoginThrottle({ windowMs: 10_000, freeFailures: 3, baseDelayMs: 100 });
  const key = 'user:dan';
  for (let i = 0; i < 3; i++) t.fail(key, 3, 1000);
  assert.equal(t.retryAfterMs([key], 1000), 0);
  t.fail(key, 3, 1000);
  assert.equal(t.retryAfterMs([key], 1000), 100);
  assert.equal(t.firstRefusal([key], 1000), true);
  assert.equal(t.firstRefusal([key], 1001), false, 'reported once per window');
  t.fail(key, 3, 1100);
  assert.equal(t.retryAfterMs([key], 1100), 200);
  for (let i = 0; i < 20; i++) t.fail(key, 3, 1300);
  assert.equal(t.retryAfterMs([key], 1300), 9700, 'capped at the end of the window');
  assert.equal(t.retryAfterMs([key], 11_001), 0, 'a new window starts clean');
  t.fail(key, 3, 12_000);
  t.succeed([key]);
  assert.equal(t.retryAfterMs([key], 12_000), 0);
  for (let i = 0; i < 4; i++) t.fail('ip:x', 3, 20_000);
  t.refund('ip:x', 3, 20_000);
  assert.equal(t.retryAfterMs(['ip:x'], 20_000), 0, 'a refund below the limit lifts the block');
});

test('parallel wrong passwords cannot slip past the back-off', async () => {
  const store = Store.inMemory();
  const auth = makeAuth(store);
  await auth.createUser('dan', 'pw-dan-123', 'user');
  const results = await Promise.all(Array.from({ length: 12 }, (_, i) => auth.login('dan', `guess-${i}`, '9.9.9.9').then(() => 200, (e) => e.status)));
  assert.equal(results.filter((s) => s === 401).length, 6, `only the free failures are checked: ${results}`);
  assert.ok(results.filter((s) => s === 429).length === 6);
  // Another IP is not locked out by this one's guesses.
  assert.equal((await auth.login('dan', 'pw-dan-123', '8.8.8.8')).user.username, 'dan');
});

test('readCookie finds a cookie among others and survives junk', () => {
  assert.equal(readCookie('a=1; codeyard_session=abc; b=2', 'codeyard_session'), 'abc');
  assert.equal(readCookie('codeyard_session=%E0%A4%A', 'codeyard_session'), undefined);
  assert.equal(readCookie(undefined, 'x'), undefined);
  assert.equal(readCookie('novalue; x=1', 'x'), '1');
  assert.deepEqual(readCookies('x=1; y=2; x=3', 'x'), ['1', '3']);
});
