import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
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
import { aiRoutes } from './ai-routes.ts';
import { portalRoutes } from '../portal/portal-routes.ts';
import type { WorkspaceService } from '../workspaces/workspace-service.ts';

export interface AppDeps {
  auth: AuthService;
  users: UserService;
  sandboxes: SandboxService;
  workspaces: WorkspaceService;
  store: Store;
  /** Where backups are staged. */
  dataDir: string;
  audit: AuditLog;
  log: Logger;
  /** The model proxy (/ai/…), when set. */
  ai?: ModelProxy;
  providerKeys?: ProviderKeys;
  /** Provider names under ai.providers. */
  aiProviders?: () => string[];
  /** When set, proxy URLs are piped before fastify sees them (no body buffering). */
  proxy?: SandboxProxy;
  /** Peers allowed to set X-Forwarded-* (config.trustProxy). */
  trustProxy: string | false;
  /** The gateway's public base URL (links it hands out; the host CSRF checks accept). */
  baseUrl: () => string;
}

const PUBLIC_ROUTES = new Set(['/api/auth/login', '/healthz', '/login']);
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
  const app = Fastify({
    loggerInstance: deps.log.child({ component: 'api' }) as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    trustProxy: deps.trustProxy,
    serverFactory: (handler) => {
      // requestTimeout 0: a streamed upload through the proxy may take as long as it takes.
      const server = createServer({ requestTimeout: 0 }, (req: IncomingMessage, res: ServerResponse) => {
        // Model calls from sandboxes carry a sandbox token, not a gateway credential: they never reach fastify's auth.
        if (deps.ai?.handleRequest(req, res)) return;
        if (!deps.proxy?.handleRequest(req, res)) handler(req, res);
      });
      server.on('upgrade', (req, socket, head) => {
        if (!deps.proxy?.handleUpgrade(req, socket, head)) socket.destroy();
      });
      return server;
    },
  });

  app.register(fastifyCookie);
  installErrorHandler(app);
  const publicHost = () => new URL(deps.baseUrl()).host;

  app.addHook('onRequest', async (request, reply) => {
    reply.headers(SECURITY_HEADERS);
    const path = request.url.split('?')[0]!;
    if (path.startsWith('/api/')) reply.header('cache-control', 'no-store');
    if (PUBLIC_ROUTES.has(path) || path.startsWith('/assets/')) {
      if (path === '/api/auth/login') assertSameOrigin(request, publicHost());
      return;
    }
    if (path === '/') {
      // The portal: a browser without a session is sent to log in first.
      const principal = await deps.auth.require(request.headers).catch(() => undefined);
      if (!principal) return reply.redirect('/login?next=%2F', 302);
      setPrincipal(request, principal);
      return;
    }
    const principal = await deps.auth.require(request.headers);
    if (principal.via === 'session') assertSameOrigin(request, publicHost());
    setPrincipal(request, principal);
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  loginRoutes(app);
  portalRoutes(app);
  authRoutes(app, { auth: deps.auth, users: deps.users, audit: deps.audit, store: deps.store });
  keyRoutes(app, { auth: deps.auth, store: deps.store, audit: deps.audit });
  userRoutes(app, { users: deps.users, audit: deps.audit, store: deps.store });
  auditRoutes(app, deps.store);
  workspaceRoutes(app, { workspaces: deps.workspaces, store: deps.store, audit: deps.audit });
  backupRoutes(app, { store: deps.store, dataDir: deps.dataDir, log: deps.log, audit: deps.audit, sandboxes: deps.sandboxes, workspaces: deps.workspaces });
  hostRoutes(app, { sandboxes: deps.sandboxes, store: deps.store });
  if (deps.providerKeys) aiRoutes(app, { keys: deps.providerKeys, store: deps.store, audit: deps.audit, providers: deps.aiProviders ?? (() => []) });
  sandboxRoutes(app, { sandboxes: deps.sandboxes, store: deps.store, auth: deps.auth, audit: deps.audit, baseUrl: deps.baseUrl });
  return app;
}
