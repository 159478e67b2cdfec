// The one backend every proxy path leads to, in its own process: a WebSocket
// echo on any path, and over HTTP /healthz, /small (1 KiB) and /asset (the
// real workbench's largest JS file, held in memory so the disk is not measured).
// Prints {"port"} when listening. Argv: <asset path>.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

const asset = readFileSync(process.argv[2]!);
const small = Buffer.alloc(1024, 'x');

const server = createServer((req, res) => {
  if (req.url === '/small' || req.url?.endsWith('/small')) {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': small.length });
    return void res.end(small);
  }
  if (req.url?.endsWith('/asset')) {
    res.writeHead(200, { 'content-type': 'application/javascript', 'content-length': asset.length });
    return void res.end(asset);
  }
  res.writeHead(req.url === '/healthz' ? 200 : 404, { 'content-type': 'text/plain' });
  res.end(req.url === '/healthz' ? 'ok' : 'not found');
});
// Idle sockets held open for the scale figure must not be cut by the backend.
server.keepAliveTimeout = 60_000;
server.headersTimeout = 61_000;

const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 1 << 20 });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
});

server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: (server.address() as AddressInfo).port }));
});
process.on('SIGTERM', () => process.exit(0));
