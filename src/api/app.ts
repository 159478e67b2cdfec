import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import fastifyCookie from '@fastify/cookie';
import type { Logger } from '../logger.ts';
import type { AuthService } from '../auth/auth-service.ts';
import type { UserService } from '../auth/user-service.ts';
import type { SandboxService } from '../sandboxes/sandbox-service.ts';
import type { Store } from '../store/store.ts';
import type { SandboxProxy } from '../proxy/sandbox-proxy.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { installErrorHandler } from './error-handler.ts';
import { setPrincipal } from './principal.ts';
import { assertSameOrigin } from './csrf.ts';
import { authRoutes } from './auth-routes.ts';
import { keyRoutes } from './key-routes.ts';
import { sandboxRoutes } from './sandbox-routes.ts';
import { loginRoutes } from './login-routes.ts';
import { userRoutes } from './user-routes.ts';
import { auditRoutes } from './audit-routes.ts';
import { workspaceRoutes } from './workspace-routes.ts';
import { backupRoutes } from './backup-routes.ts';
import { hostRoutes } from './host-routes.ts';
import type { ModelProxy } from '../ai/model-proxy.ts';
import type { ProviderKeys } from '../ai/provider-keys.ts';
import type { Config } from '../config.ts';
import { aiRoutes } from './ai-routes.ts';
import { portalRoutes } from '../portal/portal-routes.ts';
import type { WorkspaceService } from '../workspaces/workspace-service.ts';
import type { SubdomainProxy } from '../proxy/subdomain-proxy.ts';
import type { TrustedProxies } from '../proxy/trusted-proxies.ts';
import type { GatewayMetrics, RequestArea } from '../metrics/gateway-metrics.ts';
import { frontDoorRoutes } from './front-door-routes.ts';
import type { StorageGuard } from '../store/storage-guard.ts';
import { isServedHost } from '../proxy/host-route.ts';
import { sendProxyError } from '../proxy/error-page.ts';
import { serverTimeouts, tlsHandshakeTimeout } from '../server/timeouts.ts';

export interface AppDeps {
  auth: AuthService;
  users: UserService;
  sandboxes: SandboxService;
  workspaces: WorkspaceService;
  store: Store;
  /** Where backups are staged. */
  dataDir: string;
  /** The data dir's disk: /readyz asks it about free space, and store faults are logged through it. */
  storage?: StorageGuard;
  audit: AuditLog;
  log: Logger;
  /** The model proxy (/ai/…), when set. */
  ai?: ModelProxy;
  providerKeys?: ProviderKeys;
  /** The model proxy's settings (config.ai), read on each call. */
  aiConfig?: () => Config['ai'];
  /** When set, proxy URLs are piped before fastify sees them (no body buffering). */
  proxy?: SandboxProxy;
  /** Requests for sandbox subdomains (routing.baseDomain), likewise piped before fastify. */
  subdomains?: SubdomainProxy;
  proxies: TrustedProxies;
  metrics: GatewayMetrics;
  metricsToken?: string;
  baseDomain?: string;
  /** Serve HTTPS with this certificate and key (PEM), instead of HTTP. */
  tls?: { cert: Buffer; key: Buffer; hstsSeconds: number };
  /** config.server: the listener's header and keep-alive timeouts. */
  server: Config['server'];
  /** The public URL is https: session cookies are Secure however the request reached us. */
  secureCookies: boolean;
  /** The gateway's public base URL (links it hands out; the host CSRF checks accept). */
  baseUrl: () => string;
}

// /metrics checks its own token (or loopback); everything else needs a login.
const PUBLIC_ROUTES = new Set(['/api/auth/login', '/healthz', '/readyz', '/metrics', '/login']);
/** Pages a browser is sent to log in for, rather than given a 401. */
const LOGIN_FIRST_PAGES = new Set(['/', '/auth/handoff']);
const BODY_LIMIT_BYTES = 1024 * 1024;

/** Headers on every page and answer of the gateway's own (proxied IDEs keep their own). */
const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
};

/** The HTTP surface: JSON API via fastify, proxy URLs straight to the sandbox proxy. */
export function buildApp(deps: AppDeps): FastifyInstance {
  // Parsed once per base URL (it changes once, when the port is bound), not once per request.
  let base = '';
  let parsedBase = new URL('http://localhost');
  const baseURL = () => { const b = deps.baseUrl(); if (b !== base) { base = b; parsedBase = new URL(b); } return parsedBase; };
  const publicHost = () => baseURL().host;
  // The Host as the client sent it (a trusted proxy's X-Forwarded-Host first).
  const servedHost = (req: IncomingMessage) => isServedHost(deps.proxies.host(req), baseURL().hostname, deps.baseDomain);
  const app = Fastify({
    loggerInstance: deps.log.child({ component: 'api' }) as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    trustProxy: deps.proxies.trust,
    serverFactory: (handler) => {
      const hsts = deps.tls && deps.tls.hstsSeconds > 0 ? `max-age=${deps.tls.hstsSeconds}; includeSubDomains` : undefined;
      const route = (req: IncomingMessage, res: ServerResponse) => {
        if (hsts) res.setHeader('strict-transport-security', hsts);
        const area = dispatch(req, res);
        res.once('finish', () => deps.metrics.request(area, res.statusCode));
      };
      // Subdomains first (their paths are the sandbox's own), then model calls from sandboxes (a sandbox
      // token, not a gateway credential: never fastify's auth), then path-routed sandboxes, then fastify.
      const dispatch = (req: IncomingMessage, res: ServerResponse): RequestArea => {
        if (!servedHost(req)) {
          sendProxyError(req, res, 421, 'misdirected', `this gateway serves ${publicHost()}${deps.baseDomain ? ` and *.${deps.baseDomain}` : ''}, not ${String(req.headers.host).slice(0, 100)}`);
          return 'other';
        }
        if (deps.subdomains?.handleRequest(req, res)) return 'subdomain';
        if (deps.ai?.handleRequest(req, res)) return 'ai';
        if (deps.proxy?.handleRequest(req, res)) return 'proxy';
        handler(req, res);
        const url = req.url ?? '';
        return url.startsWith('/api/') ? 'api' : url === '/healthz' || url === '/readyz' ? 'health' : 'portal';
      };
      // requestTimeout 0: a streamed upload through the proxy may take as long as it takes; the request
      // head must still arrive within headersTimeout (see serverTimeouts).
      const timeouts = serverTimeouts(deps.server);
      const server = deps.tls
        ? createHttpsServer({ ...timeouts, ...tlsHandshakeTimeout(deps.server), cert: deps.tls.cert, key: deps.tls.key }, route)
        : createServer(timeouts, route);
      server.on('upgrade', (req, socket, head) => {
        if (!servedHost(req)) { socket.destroy(); return; }
        if (deps.subdomains?.handleUpgrade(req, socket, head)) return;
        if (!deps.proxy?.handleUpgrade(req, socket, head)) socket.destroy();
      });
      return server as Server;
    },
  });

  app.register(fastifyCookie);
  installErrorHandler(app, { dataDir: deps.dataDir, reportStoreFault: deps.storage && ((what, err) => deps.storage!.report(what, err)) });

  app.addHook('onRequest', async (request, reply) => {
    reply.headers(SECURITY_HEADERS);
    const path = request.url.split('?')[0]!;
    if (path.startsWith('/api/')) reply.header('cache-control', 'no-store');
    if (PUBLIC_ROUTES.has(path) || path.startsWith('/assets/')) {
      if (path === '/api/auth/login') assertSameOrigin(request, publicHost());
      return;
    }
    if (LOGIN_FIRST_PAGES.has(path)) {
      // The portal, or a subdomain asking who this is: a browser without a session logs in first.
      const principal = await deps.auth.require(request.headers).catch(() => undefined);
      if (!principal) return reply.redirect(`/login?next=${encodeURIComponent(request.url)}`, 302);
      setPrincipal(request, principal);
      return;
    }
    const principal = await deps.auth.require(request.headers);
    if (principal.via === 'session') assertSameOrigin(request, publicHost());
    setPrincipal(request, principal);
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  frontDoorRoutes(app, {
    auth: deps.auth, store: deps.store, sandboxes: deps.sandboxes, audit: deps.audit, proxies: deps.proxies, metrics: deps.metrics,
    metricsToken: deps.metricsToken, baseDomain: deps.baseDomain, publicUrl: deps.baseUrl,
    storage: deps.storage,
  });
  loginRoutes(app);
  // With a base domain each sandbox's IDE is on a host of its own (ide-<id>.<domain>), which the portal frames.
  portalRoutes(app, undefined, () => {
    if (!deps.baseDomain) return [];
    const u = baseURL();
    return [`${u.protocol}//*.${deps.baseDomain}${u.port ? `:${u.port}` : ''}`];
  });
  authRoutes(app, { auth: deps.auth, users: deps.users, audit: deps.audit, store: deps.store, secureCookies: deps.secureCookies });
  keyRoutes(app, { auth: deps.auth, store: deps.store, audit: deps.audit });
  userRoutes(app, { users: deps.users, audit: deps.audit, store: deps.store });
  auditRoutes(app, deps.store);
  workspaceRoutes(app, { workspaces: deps.workspaces, store: deps.store, audit: deps.audit });
  backupRoutes(app, { store: deps.store, dataDir: deps.dataDir, log: deps.log, audit: deps.audit, sandboxes: deps.sandboxes, workspaces: deps.workspaces });
  hostRoutes(app, { sandboxes: deps.sandboxes, store: deps.store });
  if (deps.providerKeys && deps.aiConfig) aiRoutes(app, { keys: deps.providerKeys, store: deps.store, audit: deps.audit, ai: deps.aiConfig });
  sandboxRoutes(app, { sandboxes: deps.sandboxes, store: deps.store, auth: deps.auth, audit: deps.audit, baseUrl: deps.baseUrl, baseDomain: deps.baseDomain });
  return app;
}
