// Login throttling that never locks the owner out: the (username, IP) pair is the
// only hard block; the username-wide and IP-wide signals only delay (bounded), and
// not at all for a browser holding a known-device cookie for that user.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthService, WIDE_DELAY_CAP_MS } from '../../src/auth/auth-service.ts';
import { IdeTokens } from '../../src/auth/ide-tokens.ts';
import { KnownDevices } from '../../src/auth/known-devices.ts';
import { Store } from '../../src/store/store.ts';

const SECRET = new Uint8Array(32).fill(7);
const makeAuth = (store: Store) => new AuthService(store, new IdeTokens(SECRET), {
  sessionTtlMs: 3600_000, sessionIdleMs: 600_000, ideTokenTtlSeconds: 300,
  throttle: { windowMs: 60_000, freeFailures: 5, baseDelayMs: 10_000 },
});

const timed = async <T>(f: () => Promise<T>): Promise<{ ms: number; result?: T; status?: number }> => {
  const t = performance.now();
  try {
    const result = await f();
    return { ms: performance.now() - t, result };
  } catch (err) {
    return { ms: performance.now() - t, status: (err as { status: number }).status };
  }
};

test('a known-device cookie is bound to its user and to this gateway\'s secret', () => {
  const devices = new KnownDevices(SECRET);
  const value = devices.issue(42);
  assert.match(value, /^42\.[\w-]+\.[\w-]+$/);
  assert.equal(devices.verify(value, 42), true);
  assert.equal(devices.verify(value, 43), false, 'another user');
  assert.equal(devices.verify(value.replace(/^42/, '43'), 43), false, 'the user id re-written');
  assert.equal(devices.verify(`${value.slice(0, -2)}AA`, 42), false, 'a tampered MAC');
  assert.equal(new KnownDevices(new Uint8Array(32).fill(8)).verify(value, 42), false, 'another gateway\'s secret');
  for (const junk of [undefined, '', '42', '42..', 'a.b.c.d']) assert.equal(devices.verify(junk, 42), false, String(junk));
});

test('100 wrong guesses from 10 addresses: the owner still logs in from an 11th within the delay cap; the guessing pairs stay refused', async () => {
  const store = Store.inMemory();
  const auth = makeAuth(store);
  await auth.createUser('dan', 'pw-dan-123', 'user');
  const ips = Array.from({ length: 10 }, (_, i) => `10.0.0.${i + 1}`);
  const guesses = await Promise.all(ips.flatMap((ip) => Array.from({ length: 10 }, (_, i) =>
    auth.login('dan', `guess-${i}`, ip).then(() => 200, (e) => e.status as number))));
  assert.ok(!guesses.includes(200));
  assert.equal(guesses.filter((s) => s === 401).length, 60, 'each pair gets its free failures and one more checked');
  assert.equal(guesses.filter((s) => s === 429).length, 40);

  // From a new address, no cookie: held for the capped delay, then let in.
  const fresh = await timed(() => auth.login('dan', 'pw-dan-123', '10.0.1.1'));
  assert.equal(fresh.result?.user.username, 'dan');
  assert.ok(fresh.ms >= WIDE_DELAY_CAP_MS - 50 && fresh.ms < WIDE_DELAY_CAP_MS + 1000, `took ${fresh.ms} ms`);
  // The pairs that guessed are refused outright, the right password too.
  assert.equal((await timed(() => auth.login('dan', 'pw-dan-123', ips[0]!))).status, 429);
  // The browser that just logged in is known: no delay from yet another address.
  const known = await timed(() => auth.login('dan', 'pw-dan-123', '10.0.1.2', { deviceCookie: fresh.result!.deviceCookie }));
  assert.equal(known.result?.user.username, 'dan');
  assert.ok(known.ms < WIDE_DELAY_CAP_MS / 2, `took ${known.ms} ms`);
  // Someone else's device cookie, or a forged one, skips nothing.
  await auth.createUser('eve', 'pw-eve-123', 'user');
  const eve = await auth.login('eve', 'pw-eve-123', '10.0.2.1');
  const borrowed = await timed(() => auth.login('dan', 'wrong', '10.0.1.3', { deviceCookie: eve.deviceCookie }));
  assert.equal(borrowed.status, 401);
  assert.ok(borrowed.ms >= WIDE_DELAY_CAP_MS - 50, `took ${borrowed.ms} ms`);
});

test('one address guessing many usernames slows down but locks nobody out there', async () => {
  const store = Store.inMemory();
  const auth = makeAuth(store);
  await auth.createUser('dan', 'pw-dan-123', 'user');
  // 30 usernames × 1 guess: never a pair past its free failures, but the IP is past its own.
  await Promise.all(Array.from({ length: 30 }, (_, i) => auth.login(`user${i}`, 'x', '10.9.9.9').catch(() => {})));
  const dan = await timed(() => auth.login('dan', 'pw-dan-123', '10.9.9.9'));
  assert.equal(dan.result?.user.username, 'dan', 'someone behind the same NAT still gets in');
  assert.ok(dan.ms >= WIDE_DELAY_CAP_MS - 50 && dan.ms < WIDE_DELAY_CAP_MS + 1000, `took ${dan.ms} ms`);
});
