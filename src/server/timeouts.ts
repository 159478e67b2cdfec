// The timeouts every listener of the gateway is created with. requestTimeout stays 0
// (an upload or a download through the proxy takes as long as it takes), but in Node
// requestTimeout: 0 also turns off headersTimeout unless that is set explicitly: then
// a client that opens connections and never finishes a request head (slowloris) holds
// them forever. headersTimeout is measured from the connection's start, or from the
// start of its next request, so a silent connection is closed by it too.
import type { Config } from '../config.ts';

export interface ServerTimeouts {
  requestTimeout: number;
  headersTimeout: number;
  keepAliveTimeout: number;
  /** How often Node looks for connections past headersTimeout (default 30 s: far too coarse for a 20 s limit). */
  connectionsCheckingInterval: number;
}

/** Options for http.createServer / https.createServer; for TLS add tlsHandshakeTimeout(). */
export function serverTimeouts(server: Config['server']): ServerTimeouts {
  const headersTimeout = Math.round(server.headersTimeoutSeconds * 1000);
  return {
    requestTimeout: 0,
    headersTimeout,
    keepAliveTimeout: Math.round(server.keepAliveTimeoutSeconds * 1000),
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(headersTimeout / 4))),
  };
}

/** A TLS handshake never finished holds a socket before any HTTP timeout applies: it gets the same time as the headers. */
export function tlsHandshakeTimeout(server: Config['server']): { handshakeTimeout: number } {
  return { handshakeTimeout: Math.round(server.headersTimeoutSeconds * 1000) };
}
