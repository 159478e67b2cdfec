import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import { join } from 'node:path';
import type { Logger } from '../logger.ts';
import { startEgressProxy } from './egress-proxy.ts';

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

  /** The only way out of a sandbox with no network (the browser): the egress proxy on egress.sock in its gateway directory. */
  openEgress(sandboxID: string, gatewayDir: string, log: Logger): Promise<void> {
    return this.start(sandboxID, 'egress', () => startEgressProxy(join(gatewayDir, 'egress.sock'), sandboxID, log));
  }

  /** The host end of the relay to the gateway: gateway.sock in its gateway directory → 127.0.0.1:`port`, from the sandbox's own loopback address. */
  openGatewayRelay(sandboxID: string, gatewayDir: string, port: number, seq: number): Promise<void> {
    mkdirSync(gatewayDir, { recursive: true, mode: 0o755 });
    return this.start(sandboxID, 'gateway', () => relaySocketToPort(join(gatewayDir, 'gateway.sock'), port, sandboxLoopbackAddress(seq)));
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
