import { request, type Agent, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { Endpoint } from '../runtime/interface.ts';

/**
 * One HTTP exchange, client ⇄ sandbox, streamed both ways over a keep-alive agent.
 * The WebSocket path keeps http-proxy-3; plain HTTP does only what a gateway needs
 * (it was 12 % of the proxy's busy time in http-proxy-3's per-request passes, see
 * docs/performance.md): hop-by-hop headers out, X-Forwarded-* in, response headers
 * through `rewrite`, and one retry of an idempotent request whose reused
 * keep-alive connection the sandbox had just closed.
 */
export interface ForwardOptions {
  endpoint: Endpoint;
  agent: Agent;
  /** The client's scheme, as the gateway saw it (X-Forwarded-Proto for the sandbox). */
  secure: boolean;
  /** Response headers, adjusted in place before they are sent (cookies, framing). */
  rewrite: (headers: IncomingHttpHeaders) => void;
  /** The sandbox could not be reached or broke off: answer the client (once nothing was sent). */
  onError: (err: Error) => void;
}

// RFC 9110 §7.6.1: meaningful for one connection only, never forwarded.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate']);
const RETRYABLE = new Set(['GET', 'HEAD', 'OPTIONS']);

export function forwardHttp(req: IncomingMessage, res: ServerResponse, o: ForwardOptions): void {
  const headers = forwardedHeaders(req, o.secure);
  const target = 'socketPath' in o.endpoint ? { socketPath: o.endpoint.socketPath } : { host: o.endpoint.host, port: o.endpoint.port };
  const bodyless = RETRYABLE.has(req.method ?? '') && !req.headers['content-length'] && !req.headers['transfer-encoding'];
  let answered = false;
  let upstream: ClientRequest;

  const send = (retried: boolean) => {
    // timeout 0: the agent's idle timeout is for free sockets; a slow answer or a long stream takes what it takes.
    upstream = request({ ...target, method: req.method, path: req.url, headers, agent: o.agent, timeout: 0 });
    upstream.on('response', (up) => {
      answered = true;
      const out = up.headers;
      for (const h of HOP_BY_HOP) delete out[h];
      o.rewrite(out);
      res.writeHead(up.statusCode ?? 502, up.statusMessage, out as OutgoingHttpHeaders);
      up.pipe(res);
      up.on('error', () => res.destroy());
    });
    upstream.on('error', (err) => {
      // The sandbox closed a kept-alive connection just as it was reused: nothing reached it, try once more.
      if (!answered && !retried && bodyless && upstream.reusedSocket && (err as NodeJS.ErrnoException).code === 'ECONNRESET') {
        send(true);
        return;
      }
      if (!answered) o.onError(err);
      else res.destroy();
    });
    if (bodyless) upstream.end();
    else req.pipe(upstream);
  };
  // The client went away: so does the sandbox's work for it.
  res.on('close', () => { if (!res.writableFinished) upstream.destroy(); });
  send(false);
}

function forwardedHeaders(req: IncomingMessage, secure: boolean): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  const raw = req.headers;
  const connectionListed = typeof raw.connection === 'string' ? raw.connection.toLowerCase().split(',').map((t) => t.trim()) : [];
  for (const name in raw) {
    if (HOP_BY_HOP.has(name) || connectionListed.includes(name)) continue;
    headers[name] = raw[name];
  }
  // Forwarded headers that survive here came from a trusted proxy (the others were stripped): extend the
  // chain of addresses; scheme, host and port stay what the first proxy saw.
  const peer = req.socket.remoteAddress ?? '';
  headers['x-forwarded-for'] = raw['x-forwarded-for'] ? `${String(raw['x-forwarded-for'])}, ${peer}` : peer;
  headers['x-forwarded-proto'] ??= secure ? 'https' : 'http';
  headers['x-forwarded-port'] ??= String(req.socket.localPort ?? '');
  if (raw.host) headers['x-forwarded-host'] ??= raw.host;
  return headers;
}
