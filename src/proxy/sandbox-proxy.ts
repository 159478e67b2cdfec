import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import proxyAddr from '@fastify/proxy-addr';
import type { Logger } from '../logger.ts';
import type { AuthService } from '../auth/auth-service.ts';
import type { Principal } from '../auth/auth-service.ts';
import { GATEWAY_COOKIES, IDE_SESSION_COOKIE } from '../auth/cookies.ts';
import { originMatches } from '../auth/origin.ts';
import type { SandboxService } from '../sandboxes/sandbox-service.ts';
import type { Endpoint } from '../runtime/interface.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { CodeyardError, ForbiddenError, InternalError, NotFoundError, UnauthorizedError, UpstreamUnavailableError } from '../errors.ts';
import { withoutLog } from '../sandboxes/sandbox-service.ts';
import { findTemplate } from '../templates/catalog.ts';
import { CDP_PREFIX, IDE_PREFIX, cdpProxyPath, ideProxyPath, matchProxyRoute, type ProxyRoute, type ProxyService } from './routes.ts';
import { browserWebSocketPath, proxyCdpJson } from './cdp-json.ts';
import { rejectUpgrade, sendProxyError, wantsHtml } from './error-page.ts';

/** A starting sandbox's 502 page refreshes itself; other 502s do not. */
class StartingError extends UpstreamUnavailableError {}

export interface SandboxProxyDeps {
  auth: AuthService;
  sandboxes: SandboxService;
  log: Logger;
  /** Peers allowed to set X-Forwarded-* (config.trustProxy). */
  trustProxy: string | false;
  /** The gateway's public host (host[:port]): WebSocket upgrades from other origins are refused. */
  publicHost: () => string;
  audit: AuditLog;
}

/**
 * Pipes /vscode-proxy/:id/* to the sandbox's service, HTTP and WebSocket alike:
 * authenticate once, resolve the sandbox, strip the prefix and the gateway's
 * credentials, stream both ways. The proxy never starts anything.
 */
/** Frames of an IDE: only pages of the gateway's origin (the portal). */
const FRAME_ONLY_BY_PORTAL = "frame-ancestors 'self'";

export class SandboxProxy {
  private readonly proxy = createProxyServer({ ws: true, xfwd: true, proxyTimeout: 0 });
  private readonly deps: SandboxProxyDeps;
  private readonly trusted: (addr: string, hop: number) => boolean;
  /** Upgraded sockets, with who opened them: they outlive their request, so revocation and close() end them. */
  private readonly sockets = new Map<Duplex, { userId: number; sessionHash?: string; keyId?: string; sandboxID: string }>();

  constructor(deps: SandboxProxyDeps) {
    this.deps = deps;
    this.trusted = deps.trustProxy ? proxyAddr.compile(deps.trustProxy.split(',').map((a) => a.trim())) : () => false;
    this.proxy.on('error', (err, req, res) => {
      this.deps.log.warn({ err: err.message, url: req.url }, 'proxy upstream error');
      const sandboxID = (req as RoutedRequest).sandboxID;
      if (sandboxID) void this.deps.sandboxes.reportUnreachable(sandboxID).catch(() => {});
      if ('writeHead' in res) sendProxyError(req, res as ServerResponse, 502, 'upstream_unavailable', 'the workspace did not answer. Reload in a moment; if it persists, check the sandbox\'s state.');
      else (res as Duplex).destroy();
    });
    // A sandbox must not overwrite the gateway's own cookies.
    this.proxy.on('proxyRes', (proxyRes) => {
      const cookies = proxyRes.headers['set-cookie'];
      if (cookies) proxyRes.headers['set-cookie'] = cookies.filter((c) => !GATEWAY_COOKIES.has(c.split('=')[0]!.trim()));
      // Only the gateway's own pages (the portal) may frame an IDE; a second CSP
      // header adds this rule to whatever the sandbox's server sends.
      const csp = proxyRes.headers['content-security-policy'];
      proxyRes.headers['content-security-policy'] = [...(csp === undefined ? [] : Array.isArray(csp) ? csp : [csp]), FRAME_ONLY_BY_PORTAL] as unknown as string;
      proxyRes.headers['x-frame-options'] = 'SAMEORIGIN';
    });
    // Credentials that stop being valid take their open IDE connections with them.
    deps.auth.on('revoked', (what) => {
      for (const [socket, owner] of this.sockets) {
        if (owner.userId === what.userId || owner.sandboxID === what.sandboxID
          || (what.sessionHash && owner.sessionHash === what.sessionHash) || (what.keyId && owner.keyId === what.keyId)) {
          socket.destroy();
        }
      }
    });
  }

  /** Handles the request if its URL is a proxy URL; returns false to let the API have it. */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean {
    const route = matchProxyRoute(req.url ?? '/');
    if (route === undefined) return false;
    this.serve(req, res, route).catch((err) => {
      const e = this.asCodeyardError(err);
      if (e instanceof UnauthorizedError && req.method === 'GET' && wantsHtml(req) && !takeToken(req.url ?? '').token) {
        res.writeHead(302, { location: `/login?next=${encodeURIComponent(req.url ?? '/')}`, 'cache-control': 'no-store' });
        res.end();
        return;
      }
      sendProxyError(req, res, e.status, e.kind, e.message, e instanceof StartingError);
    });
    return true;
  }

  private async serve(req: IncomingMessage, res: ServerResponse, route: ProxyRoute | 'bad'): Promise<void> {
    // A CDP client has no cookie jar: its ?token= is checked on every request, never spent (see resolve).
    if (route !== 'bad' && route.service === 'ide') {
      const { token, rest } = takeToken(req.url ?? '');
      if (token !== undefined) {
        // An IDE link: spend it for a session cookie confined to this sandbox, and
        // drop the token from the address bar (and from everything downstream).
        const ip = req.socket.remoteAddress ?? null;
        let sessionToken: string;
        try {
          const redeemed = await this.deps.auth.redeemIdeToken(token, route.sandboxID);
          sessionToken = redeemed.sessionToken;
          this.deps.audit.record({ actor: redeemed.principal.user.username, ip, action: 'token.redeem', target: route.sandboxID });
        } catch (err) {
          this.deps.audit.record({ actor: null, ip, action: 'token.redeem', target: route.sandboxID, outcome: 'denied', details: { reason: (err as Error).message.slice(0, 200) } });
          throw err;
        }
        const prefix = ideProxyPath(route.sandboxID);
        res.writeHead(302, {
          location: rest,
          'set-cookie': `${IDE_SESSION_COOKIE}=${sessionToken}; Path=${prefix}; HttpOnly; SameSite=Lax${this.isHttps(req) ? '; Secure' : ''}`,
          'cache-control': 'no-store',
          'referrer-policy': 'no-referrer',
        });
        res.end();
        return;
      }
    }
    const publicBase = this.publicBase(req);
    const { upstreamPath, endpoint, prefix, service, token } = await this.resolve(req, route);
    if (upstreamPath === undefined) {
      // Relative asset URLs in VS Code only resolve under a trailing slash.
      const [path, query] = splitQuery(req.url!);
      res.writeHead(308, { location: `${path}/${query}` });
      res.end();
      return;
    }
    req.url = upstreamPath;
    if (service === 'cdp') {
      // Chromium's DevTools server answers only to Host: localhost (DNS-rebinding guard).
      req.headers.host = 'localhost';
      if (/^\/json(\/|$|\?)/.test(upstreamPath)) {
        await proxyCdpJson(req, res, endpoint, { publicBase, prefix, token });
        return;
      }
    }
    this.proxy.web(req, res, { target: toTarget(endpoint), cookiePathRewrite: { '*': prefix } });
  }

  /** Scheme and host as the client saw them (a trusted proxy's X-Forwarded-* included). */
  private publicBase(req: IncomingMessage): { secure: boolean; host: string } {
    const trusted = this.trusted(req.socket.remoteAddress ?? '', 0);
    const forwardedHost = trusted ? String(req.headers['x-forwarded-host'] ?? '').split(',')[0]!.trim() : '';
    return { secure: this.isHttps(req), host: forwardedHost || req.headers.host || this.deps.publicHost() };
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const route = matchProxyRoute(req.url ?? '/');
    if (route === undefined) return false;
    (async () => {
      // A page on another origin (another port, a sibling subdomain) must not ride the user's cookies into a terminal.
      const origin = req.headers.origin;
      if (origin !== undefined && !originMatches(origin, [this.deps.publicHost(), req.headers.host])) {
        throw new ForbiddenError(`WebSocket from another origin (${origin.slice(0, 100)}) refused`);
      }
      const { upstreamPath, endpoint, principal, service } = await this.resolve(req, route);
      if (upstreamPath === undefined) throw new NotFoundError('WebSocket path must have a trailing slash after the sandbox id');
      req.url = upstreamPath;
      if (service === 'cdp') {
        req.headers.host = 'localhost';
        // urls.cdpWebSocket names the browser without its id, which changes with every start.
        if (/^\/devtools\/browser\/?(\?.*)?$/.test(upstreamPath)) req.url = await browserWebSocketPath(endpoint);
      }
      // No idle cut-off: an editor may sit quietly for hours.
      (socket as Socket).setTimeout?.(0);
      const sandboxID = (route as ProxyRoute).sandboxID;
      this.sockets.set(socket, { userId: principal.user.id, sessionHash: principal.sessionHash, keyId: principal.keyId, sandboxID });
      // Activity is any frame, either way: reads from the browser, and writes to it (what the sandbox sends).
      socket.on('data', () => this.deps.sandboxes.touch(sandboxID));
      const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
      socket.write = ((...args: unknown[]) => { this.deps.sandboxes.touch(sandboxID); return write(...args); }) as typeof socket.write;
      socket.once('close', () => this.sockets.delete(socket));
      this.proxy.ws(req, socket, head, { target: toTarget(endpoint) });
    })().catch((err) => {
      const e = this.asCodeyardError(err);
      rejectUpgrade(socket, e.status, e.kind, e.message);
    });
    return true;
  }

  /** Ends every proxied WebSocket, so the server can close. */
  close(): void {
    for (const s of this.sockets.keys()) s.destroy();
    this.sockets.clear();
    this.proxy.close();
  }

  private async resolve(req: IncomingMessage, route: ProxyRoute | 'bad'): Promise<{
    upstreamPath: string | undefined; endpoint: Endpoint; prefix: string; principal: Principal; service: ProxyService; token: string | undefined;
  }> {
    if (route === 'bad') {
      const prefix = (req.url ?? '').startsWith(CDP_PREFIX) ? CDP_PREFIX : IDE_PREFIX;
      throw new NotFoundError(`no such sandbox: ${badSegment(req.url ?? '', prefix)} is not a sandbox ID (20 lowercase letters and digits); expected ${prefix}<sandboxID>/`);
    }
    // A WebSocket may carry an IDE link as ?token= (it cannot set headers); it is checked, not spent.
    const { token, rest } = takeToken(req.url ?? '');
    if (token !== undefined) {
      req.headers.authorization = `Bearer ${token}`;
      req.url = rest;
      route = matchProxyRoute(rest) as ProxyRoute;
    }
    const principal = await this.deps.auth.require(req.headers, route.sandboxID);
    const record = this.deps.sandboxes.getFor(principal.user, route.sandboxID);
    const offered = findTemplate(record.templateID)?.services ?? {};
    if (!(route.service in offered)) {
      const other = 'ide' in offered ? ideProxyPath(route.sandboxID) : 'cdp' in offered ? cdpProxyPath(route.sandboxID) : undefined;
      throw new NotFoundError(`sandbox ${route.sandboxID} runs template ${record.templateID}, which has no ${route.service === 'ide' ? 'IDE' : 'CDP endpoint'}${other ? `: use ${other}` : ''}`);
    }
    const endpoint = this.deps.sandboxes.endpoint(route.sandboxID, route.service);
    if (!endpoint) {
      // Someone opening a stopped IDE in a browser wants it: start it, and let the page wait.
      // Not one in `error`: a page that refreshes would restart a crash loop forever; say why it failed instead.
      if (record.state === 'stopped' && req.method === 'GET' && wantsHtml(req)) {
        await this.deps.sandboxes.startOnOpen(principal.user, route.sandboxID);
        throw new StartingError(`sandbox ${route.sandboxID} was stopped and is starting again`);
      }
      if (record.state === 'starting' || record.state === 'restarting') throw new StartingError(`sandbox ${route.sandboxID} is ${record.state}`);
      if (record.state === 'error') {
        throw new UpstreamUnavailableError(`sandbox ${route.sandboxID} failed: ${withoutLog(record.error ?? 'unknown error')}. ` +
          `See its log and start it again from the portal (/#/s/${route.sandboxID}/details), or POST /api/sandboxes/${route.sandboxID}/start`);
      }
      throw new UpstreamUnavailableError(`sandbox ${route.sandboxID} is ${record.state}: start it (POST /api/sandboxes/${route.sandboxID}/start)`);
    }
    stripGatewayCredentials(req, this.trusted(req.socket.remoteAddress ?? '', 0));
    this.deps.sandboxes.touch(route.sandboxID);
    (req as RoutedRequest).sandboxID = route.sandboxID;
    return { upstreamPath: route.upstreamPath, endpoint, prefix: route.prefix, principal, service: route.service, token };
  }

  /** HTTPS directly, or behind a trusted proxy that says so. */
  private isHttps(req: IncomingMessage): boolean {
    if ((req.socket as { encrypted?: boolean }).encrypted) return true;
    return this.trusted(req.socket.remoteAddress ?? '', 0) && String(req.headers['x-forwarded-proto'] ?? '').split(',')[0]!.trim() === 'https';
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
    const kept = cookie.split(';').filter((c) => !GATEWAY_COOKIES.has(c.trim().split('=')[0]!)).join(';').trim();
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

/** Splits `token` out of a URL's query: the token, and the URL without it. */
function takeToken(url: string): { token: string | undefined; rest: string } {
  const q = url.indexOf('?');
  if (q < 0) return { token: undefined, rest: url };
  const params = new URLSearchParams(url.slice(q + 1));
  const token = params.get('token') ?? undefined;
  if (token === undefined) return { token, rest: url };
  params.delete('token');
  const query = params.toString();
  return { token, rest: url.slice(0, q) + (query ? `?${query}` : '') };
}

/** The segment after the prefix, quoted for an error message. */
function badSegment(url: string, prefix: string): string {
  const segment = url.slice(prefix.length).split(/[/?#]/)[0] ?? '';
  return segment ? JSON.stringify(segment.slice(0, 80)) : 'an empty segment';
}

function splitQuery(url: string): [string, string] {
  const i = url.indexOf('?');
  return i < 0 ? [url, ''] : [url.slice(0, i), url.slice(i)];
}
