import { chmodSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import type { Server as HttpServer } from 'node:http';

/**
 * The gateway's own listeners that serve one sandbox from the host side (its
 * egress proxy, its relay to the gateway), kept by sandbox and kind so a
 * start opens them, an adoption reopens what is missing, and a stop or
 * removal closes them all. Both drivers use it.
 */
export class HostListeners {
  private readonly open = new Map<string, Map<string, Server | HttpServer>>();

  has(sandboxID: string, kind: string): boolean {
    return this.open.get(sandboxID)?.has(kind) ?? false;
  }

  /** Opens (or reopens) the `kind` listener of a sandbox. */
  async start(sandboxID: string, kind: string, listen: () => Promise<Server | HttpServer>): Promise<void> {
    this.open.get(sandboxID)?.get(kind)?.close();
    const server = await listen();
    const mine = this.open.get(sandboxID) ?? new Map<string, Server | HttpServer>();
    mine.set(kind, server);
    this.open.set(sandboxID, mine);
  }

  closeAll(sandboxID: string): void {
    for (const server of this.open.get(sandboxID)?.values() ?? []) server.close();
    this.open.delete(sandboxID);
  }
}

/**
 * The loopback address a sandbox's relay to the gateway connects from: one of its own
 * (Linux answers for all of 127.0.0.0/8), so the gateway counts each sandbox as a client
 * of its own (the per-client connection cap, login throttling), never all of them as 127.0.0.1.
 */
export function sandboxLoopbackAddress(seq: number): string {
  return `127.${1 + ((seq >>> 16) & 0x7f)}.${(seq >>> 8) & 0xff}.${seq & 0xff}`;
}

/** A unix socket (which the sandbox's uid may dial) whose every connection is piped to 127.0.0.1:`port` on the host, from `localAddress`. */
export async function relaySocketToPort(socketPath: string, port: number, localAddress?: string): Promise<Server> {
  rmSync(socketPath, { force: true });
  const server = createServer((client) => {
    const upstream = connect({ port, host: '127.0.0.1', localAddress });
    client.pipe(upstream).pipe(client);
    const close = () => { client.destroy(); upstream.destroy(); };
    client.on('error', close);
    upstream.on('error', close);
  });
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(socketPath, () => resolve()); });
  chmodSync(socketPath, 0o666);
  server.unref();
  return server;
}
