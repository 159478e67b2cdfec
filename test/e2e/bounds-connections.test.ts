// Nobody can hold the gateway's connections: a real gateway with short limits
// (request head in 2 s, kept-alive connections idle 3 s, 20 connections per
// client address). Slow and silent clients get a 408 and are closed on time;
// a client past its cap loses its extra sockets while its first ones and other
// clients carry on; event streams and a real IDE WebSocket, once started, stay
// open however long they are quiet. Clients pose as other addresses by binding
// to 127.0.0.x (all of 127/8 is loopback on Linux).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { request } from 'node:http';
import { Api, startGatewayProcess, type RunningGateway } from '../helpers/gateway-process.ts';

const HEADERS_TIMEOUT_S = 2;
const KEEP_ALIVE_S = 3;
const MAX_PER_CLIENT = 20;
/** Node checks for late heads every headersTimeout/4 (see serverTimeouts); a loaded test machine adds its own. */
const SLACK_MS = 2_000;

let gw: RunningGateway;
let admin: Api;
let port: number;

before(async () => {
  gw = await startGatewayProcess({
    config: `server:\n  headersTimeoutSeconds: ${HEADERS_TIMEOUT_S}\n  keepAliveTimeoutSeconds: ${KEEP_ALIVE_S}\n  maxConnectionsPerClient: ${MAX_PER_CLIENT}\n`,
  });
  admin = await Api.login(gw.url);
  port = Number(new URL(gw.url).port);
});

after(async () => {
  // A failed test may leave probes open: a gateway shutting down waits for them.
  for (const p of probes) p.socket.destroy();
  await gw?.destroy();
});

interface Probe {
  socket: Socket;
  /** Everything the gateway sent. */
  data: () => string;
  /** Milliseconds from connecting until the gateway closed it. */
  closed: Promise<number>;
}

const probes = new Set<Probe>();

/** A raw TCP connection to the gateway from `from` (a 127.0.0.x address). */
function probe(from: string): Probe {
  const started = performance.now();
  const socket = connect({ port, host: '127.0.0.1', localAddress: from });
  let data = '';
  socket.on('data', (d) => { data += d.toString('latin1'); });
  socket.on('error', () => { /* a reset counts as closed */ });
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now() - started)));
  const p = { socket, data: () => data, closed };
  probes.add(p);
  return p;
}

/** When the gateway closed it, or Infinity if it still held it `ms` after connecting. */
async function closedWithin(p: Probe, ms: number): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const at = await Promise.race([p.closed, new Promise<number>((r) => { timer = setTimeout(() => r(Infinity), ms); })]);
  clearTimeout(timer);
  return at;
}

/** Resolves once `done()` holds; fails with `what()` after `ms`. */
function waitFor(done: () => boolean, ms: number, what: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const t = setInterval(() => {
      if (done()) { clearInterval(t); resolve(); } else if (Date.now() - started > ms) { clearInterval(t); reject(new Error(what())); }
    }, 20);
  });
}

const connected = (p: Probe) => new Promise<void>((resolve, reject) => {
  p.socket.once('connect', resolve);
  p.socket.once('error', reject);
});

/** One complete GET on a kept-alive probe; resolves with the status line. */
function get(p: Probe, path = '/healthz'): Promise<string> {
  const before = p.data().length;
  p.socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  return new Promise((resolve, reject) => {
    const check = () => {
      const fresh = p.data().slice(before);
      if (/\r\n\r\n[\s\S]*ok/.test(fresh)) { p.socket.off('data', check); resolve(fresh.split('\r\n')[0]!); }
    };
    p.socket.on('data', check);
    p.socket.once('close', () => reject(new Error(`closed before answering: ${JSON.stringify(p.data().slice(before))}`)));
  });
}

test('50 connections that never finish a request head get a 408 and are closed within the header timeout', { timeout: 60_000 }, async () => {
  const stages = [
    '', // silent: not even a request line
    'GET /healthz HTTP/1.1\r\n', // a request line, no headers
    'GET /api/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ', // half a header
    'POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n', // headers, never the blank line
  ];
  // Spread over five addresses, ten each: under the per-client cap, so only the timeout can close them.
  const probes = Array.from({ length: 50 }, (_, i) => ({ p: probe(`127.0.0.${2 + (i % 5)}`), stage: stages[i % stages.length]!, drip: i % 10 === 9 }));
  await Promise.all(probes.map(({ p }) => connected(p)));
  const drips: NodeJS.Timeout[] = [];
  for (const { p, stage, drip } of probes) {
    if (stage) p.socket.write(stage);
    // A few dribble a header every 300 ms: progress does not buy them more time.
    if (drip) drips.push(setInterval(() => { if (!p.socket.destroyed) p.socket.write(`X-Drip-${Date.now()}: 1\r\n`); }, 300));
  }
  // Meanwhile the gateway serves everyone else.
  assert.equal((await admin.call('GET', '/api/me')).status, 200);
  const times = await Promise.all(probes.map(({ p }) => closedWithin(p, HEADERS_TIMEOUT_S * 1000 + SLACK_MS + 1_000)));
  drips.forEach(clearInterval);
  for (const { p } of probes) p.socket.destroy();
  for (const [i, { p, stage }] of probes.entries()) {
    assert.ok(times[i]! >= HEADERS_TIMEOUT_S * 1000 - 100, `probe ${i} (${JSON.stringify(stage)}) closed early, after ${Math.round(times[i]!)} ms`);
    assert.ok(times[i]! <= HEADERS_TIMEOUT_S * 1000 + SLACK_MS, `probe ${i} (${JSON.stringify(stage)}) held ${Math.round(times[i]!)} ms`);
    assert.match(p.data(), /^HTTP\/1\.1 408 /, `probe ${i}: ${JSON.stringify(p.data().slice(0, 80))}`);
  }
});

test('an idle kept-alive connection is closed after the keep-alive timeout', { timeout: 60_000 }, async () => {
  const p = probe('127.0.0.7');
  await connected(p);
  assert.match(await get(p), /^HTTP\/1\.1 200/);
  const answeredAt = await closedWithin(p, (KEEP_ALIVE_S + 1) * 1000 + SLACK_MS + 1_000);
  p.socket.destroy();
  // Node adds up to a second (keepAliveTimeoutBuffer) to what it tells the client.
  assert.ok(answeredAt >= KEEP_ALIVE_S * 1000 - 100 && answeredAt <= KEEP_ALIVE_S * 1000 + 1000 + SLACK_MS, `closed after ${Math.round(answeredAt)} ms`);
  assert.doesNotMatch(p.data(), /408/, 'an idle connection between requests is not a late request');
});

test('an event stream and a real IDE WebSocket stay open, quiet, past the header and keep-alive timeouts', { timeout: 180_000 }, async () => {
  const created = await admin.call('POST', '/api/sandboxes?wait=true', { templateID: 'vscode' });
  assert.equal(created.body.state, 'running', created.text);
  const id = created.body.sandboxID as string;

  // The sandbox's progress as server-sent events.
  const events = await new Promise<{ text: () => string; closed: () => boolean }>((resolve, reject) => {
    const req = request(`${gw.url}/api/sandboxes/${id}/events`, { headers: { cookie: admin.headers.cookie! } }, (res) => {
      assert.equal(res.statusCode, 200);
      let text = '';
      let closed = false;
      res.on('data', (d) => { text += d; });
      res.on('close', () => { closed = true; });
      resolve({ text: () => text, closed: () => closed });
    });
    req.on('error', reject);
    req.end();
  });

  // The IDE's WebSocket through the proxy to code-server.
  const ws = probe('127.0.0.8');
  await connected(ws);
  ws.socket.write(`GET /vscode-proxy/${id}/ HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nCookie: ${admin.headers.cookie}\r\n` +
    'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
  await waitFor(() => ws.data().startsWith('HTTP/1.1 101'), 15_000, () => `no 101: ${JSON.stringify(ws.data().slice(0, 200))}`);

  // Quiet from our side for longer than both timeouts together.
  await new Promise((r) => setTimeout(r, (HEADERS_TIMEOUT_S + KEEP_ALIVE_S + 1) * 1000));
  assert.equal(ws.socket.destroyed, false, 'the WebSocket was closed');
  assert.equal(events.closed(), false, 'the event stream was closed');

  // Both still carry data end to end: code-server answers a ping with a pong (0x8A)…
  const before = ws.data().length;
  ws.socket.write(Buffer.from([0x89, 0x80, 1, 2, 3, 4])); // a masked, empty ping
  await waitFor(() => ws.data().slice(before).includes('\x8a\x00'), 10_000, () => 'no pong');
  // …and stopping the sandbox shows up on the stream.
  assert.equal((await admin.call('POST', `/api/sandboxes/${id}/stop`)).status, 200);
  await waitFor(() => /"phase":"stopped"/.test(events.text()), 30_000, () => `no stop event: ${events.text().slice(-300)}`);
  ws.socket.destroy();
  assert.equal((await admin.call('DELETE', `/api/sandboxes/${id}`)).status, 204);
});

test('past the per-client cap, a client\'s extra connections are closed at once; its first ones and other clients carry on', { timeout: 60_000 }, async () => {
  const client = '127.0.0.9';
  const first = Array.from({ length: MAX_PER_CLIENT }, () => probe(client));
  await Promise.all(first.map(connected));
  // All at once: a connection that waited its turn past the (short) header timeout would be closed, rightly.
  for (const answer of await Promise.all(first.map((p) => get(p)))) assert.match(answer, /^HTTP\/1\.1 200/);

  const extra = Array.from({ length: 5 }, () => probe(client));
  // Well before the header timeout could close them.
  const refusedAfter = await Promise.all(extra.map((p) => closedWithin(p, 1_000)));
  for (const [i, ms] of refusedAfter.entries()) {
    assert.ok(ms < 1_000, `extra connection ${i} was held ${Math.round(ms)} ms`);
    assert.equal(extra[i]!.data(), '', 'closed without an answer');
  }
  // The first twenty still work, and another address is not affected.
  for (const answer of await Promise.all(first.map((p) => get(p)))) assert.match(answer, /^HTTP\/1\.1 200/);
  const other = probe('127.0.0.10');
  await connected(other);
  assert.match(await get(other), /^HTTP\/1\.1 200/);
  other.socket.destroy();

  // Once some close, the client may open as many again.
  for (const p of first.slice(0, 3)) p.socket.destroy();
  await Promise.all(first.slice(0, 3).map((p) => p.closed));
  const again = probe(client);
  await connected(again);
  assert.match(await get(again), /^HTTP\/1\.1 200/);
  for (const p of [...first, again]) p.socket.destroy();
  assert.match(gw.output(), /a client holds server\.maxConnectionsPerClient connections/, 'the refusal is logged');
});
