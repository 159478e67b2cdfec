// Nobody can lock the owner out by guessing: against a real gateway, 100 wrong
// passwords for one user from 10 addresses leave the owner able to log in from
// an 11th at once (the username-wide back-off only delays, at most 2 s) and with
// no delay at all from a browser that logged in before; the (user, address) pairs
// that guessed stay refused. Clients pose as other addresses by binding to
// 127.0.0.x (all of 127/8 is loopback on Linux), so the gateway sees real peers.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { Api, startGatewayProcess, type RunningGateway } from '../helpers/gateway-process.ts';

const OWNER = 'olga';
const PASSWORD = 'olga-password-1';
/** WIDE_DELAY_CAP_MS in auth-service.ts. */
const WIDE_DELAY_CAP_MS = 2_000;

let gw: RunningGateway;

before(async () => {
  // A long first back-off, so the guessing pairs are still refused when we look (60 s window).
  gw = await startGatewayProcess({ config: 'auth:\n  loginBaseDelayMs: 10000\n' });
  const admin = await Api.login(gw.url);
  assert.equal((await admin.call('POST', '/api/users', { username: OWNER, password: PASSWORD })).status, 201);
});

after(async () => {
  await gw?.destroy();
});

interface Attempt { status: number; ms: number; cookies: string[]; retryAfter?: string }

/** POST /api/auth/login from a given loopback address, with the cookies given. */
function login(from: string, password: string, cookie?: string): Promise<Attempt> {
  const started = performance.now();
  const body = JSON.stringify({ username: OWNER, password });
  return new Promise((resolve, reject) => {
    const req = request(`${gw.url}/api/auth/login`, {
      method: 'POST', localAddress: from, agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...(cookie ? { cookie } : {}) },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve({
        status: res.statusCode ?? 0, ms: performance.now() - started,
        cookies: res.headers['set-cookie'] ?? [], retryAfter: res.headers['retry-after'] as string | undefined,
      }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const attackers = Array.from({ length: 10 }, (_, i) => `127.0.0.${20 + i}`);

test('after 100 wrong passwords from 10 addresses the owner logs in from an 11th within 3 s; the guessing pairs stay refused', { timeout: 120_000 }, async () => {
  const guesses = await Promise.all(attackers.flatMap((from) => Array.from({ length: 10 }, (_, i) => login(from, `guess-${from}-${i}`))));
  assert.equal(guesses.length, 100);
  assert.ok(guesses.every((g) => g.status === 401 || g.status === 429), guesses.map((g) => g.status).join(','));
  assert.ok(guesses.some((g) => g.status === 429), 'the pairs were cut off');
  assert.ok(guesses.filter((g) => g.status === 401).length > 20, 'more failures than the username-wide free ones');

  // The owner, from an address that never guessed, with no cookie: in, after at most the capped delay.
  const owner = await login('127.0.0.40', PASSWORD);
  assert.equal(owner.status, 200);
  assert.ok(owner.ms < 3_000, `took ${Math.round(owner.ms)} ms`);
  assert.ok(owner.ms >= WIDE_DELAY_CAP_MS - 100, `the username-wide signal delayed nothing (${Math.round(owner.ms)} ms): is it still counted?`);

  // A guessing pair is refused outright, even with the right password: the one hard block.
  const pair = await login(attackers[0]!, PASSWORD);
  assert.equal(pair.status, 429);
  assert.ok(Number(pair.retryAfter) >= 1, `Retry-After: ${pair.retryAfter}`);

  // The owner's browser is now a known device: no delay from yet another address.
  const device = owner.cookies.find((c) => c.startsWith('codeyard_device='));
  assert.ok(device, `no known-device cookie in ${owner.cookies.join(' | ')}`);
  assert.match(device, /HttpOnly/i);
  assert.match(device, /SameSite=Lax/i);
  assert.match(device, /Path=\//);
  assert.match(device, /Max-Age=\d{7,}/, 'long-lived');
  const deviceCookie = device.split(';')[0]!;
  const known = await login('127.0.0.41', PASSWORD, deviceCookie);
  assert.equal(known.status, 200);
  assert.ok(known.ms < WIDE_DELAY_CAP_MS / 2, `a known device waited ${Math.round(known.ms)} ms`);
  // A forged cookie skips nothing.
  const forged = await login('127.0.0.42', PASSWORD, `${deviceCookie.slice(0, -3)}xyz`);
  assert.equal(forged.status, 200);
  assert.ok(forged.ms >= WIDE_DELAY_CAP_MS - 100, `a forged device cookie skipped the delay (${Math.round(forged.ms)} ms)`);
  // The session from the first login works.
  const session = owner.cookies.find((c) => c.startsWith('codeyard_session='))!.split(';')[0]!;
  assert.equal((await new Api(gw.url, { cookie: session }).call('GET', '/api/me')).body.username, OWNER);
});
