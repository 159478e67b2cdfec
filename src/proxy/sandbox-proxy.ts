import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import type { Logger } from '../logger.ts';
import type { AuthService } from '../auth/auth-service.ts';
import { SESSION_COOKIE } from '../auth/cookies.ts';
import type { SandboxService } from '../sandboxes/sandbox-service.ts';
import type { Store } from '../store/store.ts';
import type { Endpoint } from '../runtime/interface.ts';
import { CodeyardError, ForbiddenError, NotFoundError, UnauthorizedError, UpstreamUnavailableError } from '../errors.ts';
import { matchProxyRoute, type ProxyRoute } from './routes.ts';
import { rejectUpgrade, sendProxyError } from './error-page.ts';

/** A starting sandbox's 502 page refreshes itself; any other 502 does not. */
class StartingError extends UpstreamUnavailableError {}

/**
 * Pipes /vscode-proxy/:id/* to the sandbox's service, HTTP and WebSocket alike:
 * authenticate once, resolve the sandbox, strip the prefix and the gateway's
 * credentials, stream both ways. The proxy never starts anything.
 */
export class SandboxProxy {
  private readonly proxy = createProxyServer({ ws: true, xfwd: true, proxyTimeout: 0 });
  private readonly deps: { auth: AuthService; sandboxes: SandboxService; store: Store; log: Logger; trustProxy: boolean };

  constructor(deps: SandboxProxy['deps']) {
    this.deps = deps;
    this.proxy.on('error', (err, req, res) => {
      this.deps.log.warn({ err: err.message, url: req.url }, 'proxy upstream error');
      if ('writeHead' in res) sendProxyError(req, res as ServerResponse, 502, 'upstream_unavailable', 'the workspace did not answer; it may be restarting. Try again in a moment.', true);
      else (res as Duplex).destroy();
    });
  }

  /** Handles the request if its URL is a proxy URL; returns false to let the API have it. */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean {
    const route = matchProxyRoute(req.url ?? '/');
    if (route === undefined) return false;
    try {
      const { upstreamPath, endpoint } = this.resolve(req, route);
      if (upstreamPath === undefined) {
        // Relative asset URLs in VS Code only resolve under a trailing slash.
        const [path, query] = splitQuery(req.url!);
        res.writeHead(308, { location: `${path}/${query}` });
        res.end();
        return true;
      }
      req.url = upstreamPath;
      this.proxy.web(req, res, { target: toTarget(endpoint) });
    } catch (err) {
      const e = asCodeyardError(err);
      sendProxyError(req, res, e.status, e.kind, e.message, e instanceof StartingError);
    }
    return true;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const route = matchProxyRoute(req.url ?? '/');
    if (route === undefined) return false;
    try {
      const { upstreamPath, endpoint } = this.resolve(req, route);
      if (upstreamPath === undefined) throw new NotFoundError('WebSocket path must have a trailing slash after the sandbox id');
      req.url = upstreamPath;
      // No idle cut-off: an editor may sit quietly for hours.
      (socket as import('node:net').Socket).setTimeout?.(0);
      this.proxy.ws(req, socket, head, { target: toTarget(endpoint) });
    } catch (err) {
      const e = asCodeyardError(err);
      rejectUpgrade(socket, e.status, e.message);
    }
    return true;
  }

  close(): void {
    this.proxy.close();
  }

  private resolve(req: IncomingMessage, route: ProxyRoute | 'bad'): { upstreamPath: string | undefined; endpoint: Endpoint } {
    if (route === 'bad') throw new NotFoundError('no such sandbox path: expected /vscode-proxy/<sandboxID>/');
    const principal = this.deps.auth.authenticate(req.headers);
    if (!principal) throw new UnauthorizedError('log in (POST /api/auth/login) or send an API key to open this workspace');
    const record = this.deps.store.sandboxes.get(route.sandboxID);
    if (!record) throw new NotFoundError(`sandbox ${route.sandboxID} not found`);
    if (record.ownerId !== principal.user.id && principal.user.role !== 'admin') {
      throw new ForbiddenError('you do not have access to this sandbox');
    }
    const endpoint = this.deps.sandboxes.endpoint(route.sandboxID, route.service);
    if (!endpoint) {
      if (record.state === 'starting') throw new StartingError(`sandbox ${route.sandboxID} is starting`);
      throw new UpstreamUnavailableError(`sandbox ${route.sandboxID} is ${record.state}${record.state === 'stopped' ? ': start it (POST /api/sandboxes/' + route.sandboxID + '/start)' : ''}`);
    }
    stripGatewayCredentials(req, this.deps.trustProxy);
    return { upstreamPath: route.upstreamPath, endpoint };
  }
}

/** The sandbox must never see the caller's gateway session or API key. */
function stripGatewayCredentials(req: IncomingMessage, trustProxy: boolean): void {
  delete req.headers.authorization;
  delete req.headers['x-api-key'];
  const cookie = req.headers.cookie;
  if (cookie) {
    const kept = cookie.split(';').filter((c) => c.trim().split('=')[0] !== SESSION_COOKIE).join(';').trim();
    if (kept) req.headers.cookie = kept; else delete req.headers.cookie;
  }
  if (!trustProxy) {
    // Forwarded headers from an untrusted client would let it pose as another origin.
    for (const h of Object.keys(req.headers)) if (h.startsWith('x-forwarded-')) delete req.headers[h];
  }
}

function toTarget(endpoint: Endpoint) {
  return 'socketPath' in endpoint
    ? { socketPath: endpoint.socketPath, host: 'localhost', port: 80 }
    : { host: endpoint.host, port: endpoint.port };
}

function splitQuery(url: string): [string, string] {
  const i = url.indexOf('?');
  return i < 0 ? [url, ''] : [url.slice(0, i), url.slice(i)];
}

function asCodeyardError(err: unknown): CodeyardError {
  if (err instanceof CodeyardError) return err;
  return new UpstreamUnavailableError(`proxy failure: ${(err as Error).message}`);
}
