import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import type { Logger } from '../logger.ts';
import type { AuthService } from '../auth/auth-service.ts';
import { SESSION_COOKIE } from '../auth/cookies.ts';
import type { SandboxService } from '../sandboxes/sandbox-service.ts';
import type { Endpoint } from '../runtime/interface.ts';
import { CodeyardError, InternalError, NotFoundError, UnauthorizedError, UpstreamUnavailableError } from '../errors.ts';
import { ideProxyPath, matchProxyRoute, type ProxyRoute } from './routes.ts';
import { rejectUpgrade, sendProxyError, wantsHtml } from './error-page.ts';

/** A starting sandbox's 502 page refreshes itself; other 502s do not. */
class StartingError extends UpstreamUnavailableError {}

export interface SandboxProxyDeps {
  auth: AuthService;
  sandboxes: SandboxService;
  log: Logger;
  trustProxy: boolean;
}

/**
 * Pipes /vscode-proxy/:id/* to the sandbox's service, HTTP and WebSocket alike:
 * authenticate once, resolve the sandbox, strip the prefix and the gateway's
 * credentials, stream both ways. The proxy never starts anything.
 */
export class SandboxProxy {
  private readonly proxy = createProxyServer({ ws: true, xfwd: true, proxyTimeout: 0 });
  private readonly deps: SandboxProxyDeps;
  /** Upgraded sockets: they outlive their request, so close() must end them itself. */
  private readonly sockets = new Set<Duplex>();

  constructor(deps: SandboxProxyDeps) {
    this.deps = deps;
    this.proxy.on('error', (err, req, res) => {
      this.deps.log.warn({ err: err.message, url: req.url }, 'proxy upstream error');
      const sandboxID = (req as RoutedRequest).sandboxID;
      if (sandboxID) void this.deps.sandboxes.reportUnreachable(sandboxID).catch(() => {});
      if ('writeHead' in res) sendProxyError(req, res as ServerResponse, 502, 'upstream_unavailable', 'the workspace did not answer. Reload in a moment; if it persists, check the sandbox\'s state.');
      else (res as Duplex).destroy();
    });
    // A sandbox must not plant cookies on the gateway's path or overwrite the session cookie.
    this.proxy.on('proxyRes', (proxyRes) => {
      const cookies = proxyRes.headers['set-cookie'];
      if (cookies) proxyRes.headers['set-cookie'] = cookies.filter((c) => c.split('=')[0]!.trim() !== SESSION_COOKIE);
    });
  }

  /** Handles the request if its URL is a proxy URL; returns false to let the API have it. */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean {
    const route = matchProxyRoute(req.url ?? '/');
    if (route === undefined) return false;
    try {
      const { upstreamPath, endpoint, prefix } = this.resolve(req, route);
      if (upstreamPath === undefined) {
        // Relative asset URLs in VS Code only resolve under a trailing slash.
        const [path, query] = splitQuery(req.url!);
        res.writeHead(308, { location: `${path}/${query}` });
        res.end();
        return true;
      }
      req.url = upstreamPath;
      this.proxy.web(req, res, { target: toTarget(endpoint), cookiePathRewrite: { '*': prefix } });
    } catch (err) {
      const e = this.asCodeyardError(err);
      if (e instanceof UnauthorizedError && req.method === 'GET' && wantsHtml(req)) {
        res.writeHead(302, { location: `/login?next=${encodeURIComponent(req.url ?? '/')}`, 'cache-control': 'no-store' });
        res.end();
        return true;
      }
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
      (socket as Socket).setTimeout?.(0);
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      this.proxy.ws(req, socket, head, { target: toTarget(endpoint) });
    } catch (err) {
      const e = this.asCodeyardError(err);
      rejectUpgrade(socket, e.status, e.kind, e.message);
    }
    return true;
  }

  /** Ends every proxied WebSocket, so the server can close. */
  close(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.proxy.close();
  }

  private resolve(req: IncomingMessage, route: ProxyRoute | 'bad'): { upstreamPath: string | undefined; endpoint: Endpoint; prefix: string } {
    if (route === 'bad') throw new NotFoundError(`no such sandbox: ${badSegment(req.url ?? '')} is not a sandbox ID (20 lowercase letters and digits); expected /vscode-proxy/<sandboxID>/`);
    const principal = this.deps.auth.require(req.headers);
    const record = this.deps.sandboxes.getFor(principal.user, route.sandboxID);
    const endpoint = this.deps.sandboxes.endpoint(route.sandboxID, route.service);
    if (!endpoint) {
      if (record.state === 'starting') throw new StartingError(`sandbox ${route.sandboxID} is starting`);
      throw new UpstreamUnavailableError(`sandbox ${route.sandboxID} is ${record.state}: start it (POST /api/sandboxes/${route.sandboxID}/start)`);
    }
    stripGatewayCredentials(req, this.deps.trustProxy);
    (req as RoutedRequest).sandboxID = route.sandboxID;
    return { upstreamPath: route.upstreamPath, endpoint, prefix: ideProxyPath(route.sandboxID) };
  }

  /** Our errors keep their status; anything else is a bug of ours: logged, and a plain 500. */
  private asCodeyardError(err: unknown): CodeyardError {
    if (err instanceof CodeyardError) return err;
    this.deps.log.error({ err }, 'proxy failure');
    return new InternalError('internal error: see the gateway log');
  }
}

type RoutedRequest = IncomingMessage & { sandboxID?: string };

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

/** The segment after the prefix, quoted for an error message. */
function badSegment(url: string): string {
  const segment = url.slice('/vscode-proxy/'.length).split(/[/?#]/)[0] ?? '';
  return segment ? JSON.stringify(segment.slice(0, 80)) : 'an empty segment';
}

function splitQuery(url: string): [string, string] {
  const i = url.indexOf('?');
  return i < 0 ? [url, ''] : [url.slice(0, i), url.slice(i)];
}
