import type { IncomingMessage } from 'node:http';
import proxyAddr from '@fastify/proxy-addr';

/**
 * What a request says about its client, believing X-Forwarded-* only from the
 * peers named in config.trustProxy. Anyone else's forwarded headers are ignored:
 * a client cannot pick the IP the audit log and rate limits see, nor pose as HTTPS.
 */
export class TrustedProxies {
  private readonly trust: (addr: string, hop: number) => boolean;

  constructor(trustProxy: string | false) {
    this.trust = trustProxy ? proxyAddr.compile(trustProxy.split(',').map((a) => a.trim())) : () => false;
  }

  /** Whether the direct peer is a proxy we trust. */
  fromTrustedPeer(req: IncomingMessage): boolean {
    return this.trust(req.socket.remoteAddress ?? '', 0);
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
