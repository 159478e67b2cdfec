import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../logger.ts';
import type { AuthService } from '../auth/auth-service.ts';
import type { Principal } from '../auth/auth-service.ts';
import { GATEWAY_COOKIES, IDE_SESSION_COOKIE } from '../auth/cookies.ts';
import type { ProxyPipe } from './proxy-pipe.ts';
import type { TrustedProxies } from './trusted-proxies.ts';
import { originMatches } from '../auth/origin.ts';
import type { SandboxService } from '../sandboxes/sandbox-service.ts';
import type { Endpoint } from '../runtime/interface.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { CodeyardError, SandboxStartingError, ForbiddenError, InternalError, NotFoundError, UnauthorizedError, UpstreamUnavailableError } from '../errors.ts';
import { withoutLog } from '../sandboxes/sandbox-service.ts';
import { findTemplate } from '../templates/catalog.ts';
import { CDP_PREFIX, IDE_PREFIX, splitQuery, cdpProxyPath, ideProxyPath, matchProxyRoute, type ProxyRoute, type ProxyService } from './routes.ts';
import { browserWebSocketPath, proxyCdpJson } from './cdp-json.ts';
import { rejectUpgrade, sendProxyError, sendStartPage, START_PATH, wantsHtml } from './error-page.ts';
import { refusedServiceWorker } from './response-headers.ts';
import { LINK_PATH } from './host-route.ts';
import { storageError } from '../store/storage-errors.ts';


export interface SandboxProxyDeps {
  auth: AuthService;
  sandboxes: SandboxService;
  log: Logger;
  pipe: ProxyPipe;
  proxies: TrustedProxies;
  /** The gateway's public host (host[:port]): WebSocket upgrades from other origins are refused. */
  publicHost: () => string;
  /** The public URL is https: cookies are Secure whatever the hop to us was. */
  publicIsHttps: boolean;
  /** Whether code-server's /proxy/<port>/ and /absproxy/<port>/ may be reached (routing.pathPreviews). */
  pathPreviews: boolean;
  audit: AuditLog;
  /**
   * With a base domain, the origin of a sandbox's own IDE host (https://ide-<id>.<domain>): browsers are sent
   * there, never served the IDE on the portal's origin. Undefined: IDEs by path (no base domain).
   */
  ideOrigin?: (sandboxID: string) => string;
  /** The data dir, whose disk a full-disk answer names. */
  dataDir?: string;
}

/**
 * Routes /vscode-proxy/:id/* and /cdp-proxy/:id/* to the sandbox's service, HTTP
 * and WebSocket alike: authenticate once, resolve the sandbox, strip the prefix
 * and the gateway's credentials, and hand the request to the pipe. The proxy
 * never starts anything, but a stopped IDE opened in a browser.
 */
export class SandboxProxy {
  private readonly deps: SandboxProxyDeps;

  constructor(deps: SandboxProxyDeps) {
    this.deps = deps;
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
      sendProxyError(req, res, e.status, e.kind, e.message, e instanceof SandboxStartingError);
    });
    return true;
  }

  private async serve(req: IncomingMessage, res: ServerResponse, route: ProxyRoute | 'bad'): Promise<void> {
    // A CDP client has no cookie jar: its ?token= is checked on every request, never spent (see resolve).
    if (route !== 'bad' && route.service === 'ide') {
      const { token, rest } = takeToken(req.url ?? '');
      if (token !== undefined && this.deps.ideOrigin) {
        // The IDE lives on its own host: the link is spent there, for a session of that host alone.
        res.writeHead(302, { location: `${this.deps.ideOrigin(route.sandboxID)}${LINK_PATH}?token=${encodeURIComponent(token)}`, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
        res.end();
        return;
      }
      if (token !== undefined) {
        // An IDE link: spend it for a session cookie confined to this sandbox, and
        // drop the token from the address bar (and from everything downstream).
        const ip = this.deps.proxies.clientIp(req) || null;
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
          'set-cookie': `${IDE_SESSION_COOKIE}=${sessionToken}; Path=${prefix}; HttpOnly; SameSite=Lax${this.secure(req) ? '; Secure' : ''}`,
          'cache-control': 'no-store',
          'referrer-policy': 'no-referrer',
        });
        res.end();
        return;
      }
    }
    if (route !== 'bad' && route.service === 'ide' && route.upstreamPath === START_PATH && req.method === 'POST') return this.startFromPage(req, res, route);
    const publicBase = this.publicBase(req);
    const resolved = await this.resolve(req, route);
    if (resolved === 'stopped') {
      const id = (route as ProxyRoute).sandboxID;
      sendStartPage(res, {
        title: 'This workspace is stopped', message: `Sandbox ${id} is stopped; its files are kept. Start it to open VS Code again.`,
        action: `${ideProxyPath(id)}${START_PATH.slice(1)}`, button: 'Start it',
      });
      return;
    }
    const { upstreamPath, endpoint, prefix, service, token, principal } = resolved;
    if (this.onOwnHost(service, principal, upstreamPath)) {
      // A browser: the IDE is served on its own host, where nothing it runs touches the portal's session.
      const [, query] = splitQuery(req.url ?? '');
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new ForbiddenError(`open the IDE at its own address, ${this.deps.ideOrigin!((route as ProxyRoute).sandboxID)}/`);
      res.writeHead(302, { location: `${this.deps.ideOrigin!((route as ProxyRoute).sandboxID)}${upstreamPath ?? '/'}${query}`, 'cache-control': 'no-store' });
      res.end();
      return;
    }
    if (upstreamPath === undefined) {
      // Relative asset URLs in VS Code only resolve under a trailing slash.
      const [path, query] = splitQuery(req.url!);
      res.writeHead(308, { location: `${path}/${query}` });
      res.end();
      return;
    }
    const preview = service === 'ide' ? portPreview(upstreamPath) : undefined;
    if (refusedServiceWorker(req, preview ? '' : upstreamPath, service === 'ide')) {
      throw new ForbiddenError('a service worker may be registered only from code-server\'s own static files');
    }
    if (preview) {
      if (preview.path !== undefined) req.url = preview.path;
      // The app's cookies stay under its own preview path, and the page runs in an opaque origin: it is on the portal's origin.
      const cookiePath = `${prefix}${preview.path === undefined ? 'absproxy' : 'proxy'}/${preview.port}/`;
      this.deps.pipe.web(req, res, {
        sandboxID: (route as ProxyRoute).sandboxID, endpoint: await this.deps.sandboxes.portEndpoint((route as ProxyRoute).sandboxID, preview.port),
        mainService: false, cookiePath, opaqueOrigin: true,
      }, publicBase.secure);
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
    this.deps.pipe.web(req, res, { sandboxID: (route as ProxyRoute).sandboxID, endpoint, mainService: true, cookiePath: prefix }, publicBase.secure);
  }

  /** Scheme and host as the client saw them (a trusted proxy's X-Forwarded-* included). */
  private publicBase(req: IncomingMessage): { secure: boolean; host: string } {
    return { secure: this.deps.proxies.isHttps(req), host: this.deps.proxies.host(req) || this.deps.publicHost() };
  }

  /** Cookies get Secure over HTTPS, and whenever the public URL is https. */
  private secure(req: IncomingMessage): boolean {
    return this.deps.publicIsHttps || this.deps.proxies.isHttps(req);
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
      const resolved = await this.resolve(req, route);
      const sandboxID = (route as ProxyRoute).sandboxID;
      if (resolved === 'stopped') throw new UpstreamUnavailableError(`sandbox ${sandboxID} is stopped: start it first`);
      const { upstreamPath, endpoint, principal, service } = resolved;
      if (this.onOwnHost(service, principal, upstreamPath)) throw new ForbiddenError(`open the IDE at its own address, ${this.deps.ideOrigin!(sandboxID)}/`);
      if (upstreamPath === undefined) throw new NotFoundError('WebSocket path must have a trailing slash after the sandbox id');
      const owner = { userId: principal.user.id, sessionHash: principal.sessionHash, keyId: principal.keyId };
      const preview = service === 'ide' ? portPreview(upstreamPath) : undefined;
      if (preview) {
        if (preview.path !== undefined) req.url = preview.path;
        this.deps.pipe.ws(req, socket, head, { sandboxID, endpoint: await this.deps.sandboxes.portEndpoint(sandboxID, preview.port), mainService: false }, owner);
        return;
      }
      req.url = upstreamPath;
      if (service === 'cdp') {
        req.headers.host = 'localhost';
        // urls.cdpWebSocket names the browser without its id, which changes with every start.
        if (/^\/devtools\/browser\/?(\?.*)?$/.test(upstreamPath)) req.url = await browserWebSocketPath(endpoint);
      }
      this.deps.pipe.ws(req, socket, head, { sandboxID, endpoint, mainService: true }, owner);
    })().catch((err) => {
      const e = this.asCodeyardError(err);
      rejectUpgrade(socket, e.status, e.kind, e.message);
    });
    return true;
  }

  /**
   * Whether this request is a browser's (the portal's session, or a session an old IDE link made here) for an IDE
   * that has a host of its own: it is sent there. Programs (API keys, IDE links as bearer tokens) keep the path.
   * Port previews by path are not the IDE: they stay (opaque origins, when an operator turned them on).
   */
  private onOwnHost(service: ProxyService, principal: Principal, upstreamPath: string | undefined): boolean {
    return this.deps.ideOrigin !== undefined && browserAsksForIde(service, principal, upstreamPath);
  }

  /** The stopped page's button: start the sandbox, then back to its IDE (which shows the starting page). */
  private async startFromPage(req: IncomingMessage, res: ServerResponse, route: ProxyRoute): Promise<void> {
    // Only the gateway's own page may press it: a form on another site carries its own Origin.
    const origin = req.headers.origin;
    if (origin === undefined || !originMatches(origin, [this.deps.publicHost(), req.headers.host])) {
      throw new ForbiddenError('a sandbox is started from its own page (or the portal, or POST /api/sandboxes/<id>/start), not from another site');
    }
    const principal = await this.deps.auth.require(req.headers, route.sandboxID);
    await this.deps.sandboxes.startOnOpen(principal.user, route.sandboxID);
    this.deps.audit.record({ actor: principal.user.username, ip: this.deps.proxies.clientIp(req) || null, action: 'sandbox.start', target: route.sandboxID, details: { from: 'stopped page' } });
    res.writeHead(303, { location: ideProxyPath(route.sandboxID), 'cache-control': 'no-store' });
    res.end();
  }

  private async resolve(req: IncomingMessage, route: ProxyRoute | 'bad'): Promise<'stopped' | {
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
    // A link used as a bearer token binds to its first client: address and user agent.
    const client = `${this.deps.proxies.clientIp(req)} ${String(req.headers['user-agent'] ?? '').slice(0, 200)}`;
    const principal = await this.deps.auth.require(req.headers, route.sandboxID, client);
    const facts = this.deps.sandboxes.factsFor(principal.user, route.sandboxID);
    // Without a host of its own, another user's IDE would run its code on the portal's origin with the
    // viewer's session: an admin opening it would hand the sandbox admin rights. Only its owner gets it here.
    // (Port previews by path are answered in an opaque origin: those stay open to admins.)
    if (!this.deps.ideOrigin && facts.ownerId !== principal.user.id && browserAsksForIde(route.service, principal, route.upstreamPath)) {
      throw new ForbiddenError(`sandbox ${route.sandboxID} is another user's: its IDE would run on this portal's origin with your session. ` +
        'Open it on its own host (set routing.baseDomain; on one machine codeyard.localhost needs no DNS), or as its owner');
    }
    const offered = findTemplate(facts.templateID)?.services ?? {};
    if (!(route.service in offered)) {
      const other = 'ide' in offered ? ideProxyPath(route.sandboxID) : 'cdp' in offered ? cdpProxyPath(route.sandboxID) : undefined;
      throw new NotFoundError(`sandbox ${route.sandboxID} runs template ${facts.templateID}, which has no ${route.service === 'ide' ? 'IDE' : 'CDP endpoint'}${other ? `: use ${other}` : ''}`);
    }
    if (!this.deps.pathPreviews && route.service === 'ide' && /^\/(abs)?proxy\//.test(route.upstreamPath ?? '')) {
      throw new NotFoundError('port previews by path are off on this gateway: they would run on the portal\'s own origin. Open the port\'s own subdomain, <port>-<sandboxID>.<baseDomain> (routing.baseDomain), or ask the operator to set routing.pathPreviews: true');
    }
    const endpoint = this.deps.sandboxes.endpoint(route.sandboxID, route.service);
    if (!endpoint) {
      const record = this.deps.sandboxes.getFor(principal.user, route.sandboxID);
      // Someone opening a stopped IDE in a browser gets a button: a GET (a link on any site) never starts anything.
      if (record.state === 'stopped' && route.service === 'ide' && req.method === 'GET' && wantsHtml(req)) return 'stopped';
      if (record.state === 'starting' || record.state === 'restarting') throw new SandboxStartingError(`sandbox ${route.sandboxID} is ${record.state}`);
      if (record.state === 'error') {
        throw new UpstreamUnavailableError(`sandbox ${route.sandboxID} failed: ${withoutLog(record.error ?? 'unknown error')}. ` +
          `See its log and start it again from the portal (/#/s/${route.sandboxID}/details), or POST /api/sandboxes/${route.sandboxID}/start`);
      }
      throw new UpstreamUnavailableError(`sandbox ${route.sandboxID} is ${record.state}: start it (POST /api/sandboxes/${route.sandboxID}/start)`);
    }
    stripGatewayCredentials(req, this.deps.proxies.fromTrustedPeer(req));
    return { upstreamPath: route.upstreamPath, endpoint, prefix: route.prefix, principal, service: route.service, token };
  }

  /** Our errors keep their status; anything else is a bug of ours: logged, and a plain 500. */
  private asCodeyardError(err: unknown): CodeyardError {
    if (err instanceof CodeyardError) return err;
    // A store or disk fault (a full disk) answers as the API does: 507 naming the disk, 503 for a busy store.
    const stored = storageError(err, this.deps.dataDir);
    if (stored) { this.deps.log.warn({ err: (err as Error).message }, stored.message); return stored; }
    this.deps.log.error({ err }, 'proxy failure');
    return new InternalError('internal error: see the gateway log');
  }
}

/** The sandbox must never see the caller's gateway session or API key. */
export function stripGatewayCredentials(req: IncomingMessage, trustProxy: boolean): void {
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

/**
 * code-server's port-preview paths under an IDE's prefix, served by the gateway
 * (code-server's own are off): it dials the port after checking it is this
 * sandbox's. /proxy/<port>/x reaches the app as /x; /absproxy/<port>/x keeps the
 * whole public path (path undefined: req.url as is), for an app told its base
 * path (/vscode-proxy/<id>/absproxy/<port>/).
 */
function portPreview(upstreamPath: string): { port: number; path: string | undefined } | undefined {
  const m = /^\/(abs)?proxy\/([1-9][0-9]{0,4})(\/[^?]*)?(\?.*)?$/.exec(upstreamPath);
  if (!m || Number(m[2]) > 65535) return undefined;
  return { port: Number(m[2]), path: m[1] ? undefined : `${m[3] ?? '/'}${m[4] ?? ''}` };
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

/**
 * A browser (the portal's session, or a session an IDE link made on this origin) asking for a
 * sandbox's IDE itself, not a port preview (those are answered in an opaque origin): what would
 * run a sandbox's code on the portal's origin with that session.
 */
function browserAsksForIde(service: ProxyService, principal: Principal, upstreamPath: string | undefined): boolean {
  if (service !== 'ide' || (principal.via !== 'session' && principal.via !== 'ide-session')) return false;
  return upstreamPath === undefined || portPreview(upstreamPath) === undefined;
}
