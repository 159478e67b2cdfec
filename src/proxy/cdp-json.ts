import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Endpoint } from '../runtime/interface.ts';
import { PayloadTooLargeError, UpstreamUnavailableError } from '../errors.ts';

/** DevTools JSON answers are small lists; anything bigger is not one. */
const MAX_JSON_BYTES = 4 * 1024 * 1024;
const MAX_REQUEST_BYTES = 64 * 1024;

export interface PublicCdpBase {
  publicBase: { secure: boolean; host: string };
  /** /cdp-proxy/<id>/ */
  prefix: string;
  /** A ?token= the client came with: WebSocket URLs carry it on, for clients that cannot set headers. */
  token: string | undefined;
}

/**
 * Chromium's /json answers name its own listener (ws://127.0.0.1:9222/devtools/…,
 * devtoolsFrontendUrl with ws=127.0.0.1:9222/…). The client must dial back
 * through the gateway, so every such URL is rewritten to the gateway's public
 * scheme, host and prefix, as the client saw them.
 */
export function rewriteCdpUrls(value: unknown, base: PublicCdpBase): unknown {
  const { secure, host } = base.publicBase;
  const ws = `${secure ? 'wss' : 'ws'}://${host}${base.prefix}devtools/`;
  const http = `${secure ? 'https' : 'http'}://${host}${base.prefix}`;
  const tokenQuery = base.token ? `token=${encodeURIComponent(base.token)}` : '';
  const rewrite = (key: string, s: string): string => {
    let out = s
      .replace(/wss?:\/\/[^/\s"?&]+\/devtools\//g, ws)
      .replace(/([?&])wss?=[^/&\s"]+\/devtools\//g, `$1${secure ? 'wss' : 'ws'}=${host}${base.prefix}devtools/`);
    if (key === 'devtoolsFrontendUrl' && out.startsWith('/')) out = http + out.slice(1);
    if (key === 'webSocketDebuggerUrl' && tokenQuery) out += (out.includes('?') ? '&' : '?') + tokenQuery;
    return out;
  };
  const walk = (v: unknown, key = ''): unknown => {
    if (typeof v === 'string') return rewrite(key, v);
    if (Array.isArray(v)) return v.map((x) => walk(x));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k)]));
    return v;
  };
  return walk(value);
}

/** One request to the sandbox's DevTools listener, body collected. */
function devtoolsRequest(endpoint: Endpoint, method: string, path: string, body?: Buffer): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const target = 'socketPath' in endpoint ? { socketPath: endpoint.socketPath } : { host: endpoint.host, port: endpoint.port };
    const upstream = request({ ...target, method, path, headers: { host: 'localhost', ...(body?.length ? { 'content-length': body.length } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_JSON_BYTES) { res.destroy(); reject(new UpstreamUnavailableError('the browser sent an oversized DevTools answer')); return; }
        chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    upstream.on('error', (err) => reject(new UpstreamUnavailableError(`the browser's DevTools listener did not answer (${(err as NodeJS.ErrnoException).code ?? err.message}); it may be restarting`)));
    upstream.end(body);
  });
}

/** Proxies a /json… request (version, list, new, activate, close, protocol) with its URLs rewritten. */
export async function proxyCdpJson(req: IncomingMessage, res: ServerResponse, endpoint: Endpoint, base: PublicCdpBase): Promise<void> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    // DevTools requests carry at most a URL; a body is a mistake, or an attempt on the gateway's memory.
    if (size > MAX_REQUEST_BYTES) { req.destroy(); throw new PayloadTooLargeError(`a DevTools /json request body may be at most ${MAX_REQUEST_BYTES} bytes`); }
    chunks.push(c as Buffer);
  }
  const answer = await devtoolsRequest(endpoint, req.method ?? 'GET', req.url ?? '/json', Buffer.concat(chunks));
  let body = answer.body;
  let type = String(answer.headers['content-type'] ?? 'application/json; charset=UTF-8');
  try {
    body = Buffer.from(JSON.stringify(rewriteCdpUrls(JSON.parse(answer.body.toString('utf8')), base), null, 2));
    type = 'application/json; charset=UTF-8';
  } catch { /* not JSON (an error text): passed on as it is */ }
  res.writeHead(answer.status, { 'content-type': type, 'content-length': body.length, 'cache-control': 'no-store' });
  res.end(body);
}

/** The browser-level WebSocket path (/devtools/browser/<id>), which changes with every browser start. */
export async function browserWebSocketPath(endpoint: Endpoint): Promise<string> {
  const answer = await devtoolsRequest(endpoint, 'GET', '/json/version');
  const url = (JSON.parse(answer.body.toString('utf8')) as { webSocketDebuggerUrl?: string }).webSocketDebuggerUrl;
  if (!url) throw new UpstreamUnavailableError('the browser did not name its DevTools WebSocket');
  return new URL(url).pathname;
}
