import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { ConnectionCap } from '../../src/server/connection-cap.ts';

const listen = (server: Server) => new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));

/** Connects from `from`; resolves true if the server still holds the socket 200 ms later. */
async function held(port: number, from: string, sockets: Socket[]): Promise<boolean> {
  const socket = connect({ port, host: '127.0.0.1', localAddress: from });
  sockets.push(socket);
  socket.on('error', () => {});
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(true), 200);
    socket.once('close', () => { clearTimeout(t); resolve(false); });
  });
}

test('the cap counts a client\'s sockets over every server attached, frees them as they close, and skips exempt peers', async () => {
  const refused: string[] = [];
  const cap = new ConnectionCap({ max: 2, exempt: (a) => a === '127.0.0.3', onRefused: (a) => refused.push(a) });
  const a = createServer();
  const b = createServer();
  cap.attach(a);
  cap.attach(b);
  const [pa, pb] = [await listen(a), await listen(b)];
  const sockets: Socket[] = [];
  try {
    assert.equal(await held(pa, '127.0.0.2', sockets), true);
    assert.equal(await held(pb, '127.0.0.2', sockets), true);
    assert.equal(await held(pa, '127.0.0.2', sockets), false, 'the third, on either server, is refused');
    assert.equal(await held(pb, '127.0.0.2', sockets), false);
    assert.deepEqual(refused, ['127.0.0.2'], 'reported once');
    assert.equal(await held(pa, '127.0.0.4', sockets), true, 'another client is not affected');
    for (let i = 0; i < 5; i++) assert.equal(await held(pa, '127.0.0.3', sockets), true, 'an exempt peer is not counted');
    sockets[0]!.destroy();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(await held(pa, '127.0.0.2', sockets), true, 'a closed socket frees its place');
    assert.equal(cap.open.get('127.0.0.2'), 2);
  } finally {
    for (const s of sockets) s.destroy();
    a.close();
    b.close();
  }
});

test('max 0 caps nothing', async () => {
  const cap = new ConnectionCap({ max: 0 });
  const server = createServer();
  cap.attach(server);
  const port = await listen(server);
  const sockets: Socket[] = [];
  try {
    for (let i = 0; i < 5; i++) assert.equal(await held(port, '127.0.0.5', sockets), true);
  } finally {
    for (const s of sockets) s.destroy();
    server.close();
  }
});
