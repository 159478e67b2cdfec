import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import proxyAddr from '@fastify/proxy-addr';

const TRUSTED = Symbol('trusted peer');

/** The address a connection on the gateway's unix socket reports (it has none of its own). */
export const UNIX_PEER = 'unix-socket';

/** Marks a connection accepted on the front proxy's unix socket. */
export function markUnixPeer(socket: Socket): void {
  Object.defineProperty(socket, 'remoteAddress', { value: UNIX_PEER });
}

/**
 * What a request says about its client, believing X-Forwarded-* only from the
 * peers named in config.trustProxy. Anyone else's forwarded headers are ignored:
 * a client cannot pick the IP the audit log and rate limits see, nor pose as HTTPS.
 */
export class TrustedProxies {
  /**
   * Whether a hop may speak for the one before it. A peer on the gateway's unix socket
   * (no address) is the front proxy: only it and the gateway can reach that socket.
   * fastify uses the same function, so request.ip agrees with clientIp().
   */
  readonly trust: (addr: string, hop: number) => boolean;

  constructor(trustProxy: string | false) {
    const listed = trustProxy ? proxyAddr.compile(trustProxy.split(',').map((a) => a.trim())) : () => false;
    this.trust = (addr, hop) => (addr === UNIX_PEER ? hop === 0 : listed(addr, hop));
  }

  /** Whether the direct peer is a proxy we trust. */
  fromTrustedPeer(req: IncomingMessage): boolean {
    // Asked several times per request, on connections that carry many: decided once per connection.
    const socket = req.socket as Socket & { [TRUSTED]?: boolean };
    return (socket[TRUSTED] ??= this.trust(socket.remoteAddress ?? '', 0));
  }

  /** The client's address: the nearest untrusted hop of X-Forwarded-For, or the peer itself. */
  clientIp(req: IncomingMessage): string {
    return proxyAddr(req, this.trust) ?? req.socket.remoteAddress ?? '';
  }

  /** TLS here, or at a trusted proxy that says so. */
  isHttps(req: IncomingMessage): boolean {
    if ((req.socket as { encrypted?: boolean }).encrypted) return true;
    return this.fromTrustedPeer(req) && firstValue(req.headers['x-forwarded-proto']) === 'https';
  }

  /** The host the client asked for (a trusted proxy's X-Forwarded-Host first). */
  host(req: IncomingMessage): string | undefined {
    return (this.fromTrustedPeer(req) ? firstValue(req.headers['x-forwarded-host']) : '') || req.headers.host;
  }
}

function firstValue(header: string | string[] | undefined): string {
  return String(header ?? '').split(',')[0]!.trim();
}
