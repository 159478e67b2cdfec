import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { chmodSync, rmSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import type { Logger } from '../logger.ts';

/** Headers a forward proxy consumes itself. */
const HOP_BY_HOP = ['proxy-connection', 'proxy-authorization', 'connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade'];

/**
 * An HTTP forward proxy (CONNECT tunnels and absolute-URI requests) on a unix
 * socket: the only way out of a sandbox with a network namespace of its own.
 * One per such sandbox; every connection it makes is the gateway's, so this is
 * where an egress policy would live.
 */
export async function startEgressProxy(socketPath: string, sandboxID: string, log: Logger): Promise<Server> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let target: URL;
    try {
      target = new URL(req.url ?? '');
      if (target.protocol !== 'http:') throw new Error('only http:// is forwarded; https goes through CONNECT');
    } catch (err) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end(`egress proxy: ${(err as Error).message}\n`);
      return;
    }
    const headers = { ...req.headers };
    for (const h of HOP_BY_HOP) delete headers[h];
    const upstream = request({ host: target.hostname, port: target.port || 80, method: req.method, path: target.pathname + target.search, headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`egress proxy: ${target.host} unreachable (${(err as NodeJS.ErrnoException).code ?? err.message})\n`);
    });
    req.pipe(upstream);
  });
  server.on('connect', (req: IncomingMessage, client: Duplex, head: Buffer) => {
    const [host, port] = splitHostPort(req.url ?? '');
    if (!host || !port) {
      client.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    const upstream = connect(port, host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client).pipe(upstream);
    });
    const close = () => { client.destroy(); upstream.destroy(); };
    upstream.on('error', (err) => {
      if (client.writable) client.end(`HTTP/1.1 502 Bad Gateway\r\n\r\n${(err as NodeJS.ErrnoException).code ?? err.message}`);
      close();
    });
    client.on('error', close);
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  rmSync(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  // The sandbox's uid connects to it; only the gateway ever listens on it.
  chmodSync(socketPath, 0o666);
  server.unref();
  log.debug({ sandboxID, socketPath }, 'egress proxy listening');
  return server;
}

function splitHostPort(authority: string): [string | undefined, number | undefined] {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(authority);
  return m ? [m[1], Number(m[2])] : [undefined, undefined];
}
