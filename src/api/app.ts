import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import fastifyCookie from '@fastify/cookie';
import type { Logger } from '../logger.ts';
import type { AuthService } from '../auth/auth-service.ts';
import type { SandboxService } from '../sandboxes/sandbox-service.ts';
import type { Store } from '../store/store.ts';
import type { SandboxProxy } from '../proxy/sandbox-proxy.ts';
import { installErrorHandler } from './error-handler.ts';
import { setPrincipal } from './principal.ts';
import { authRoutes } from './auth-routes.ts';
import { keyRoutes } from './key-routes.ts';
import { sandboxRoutes } from './sandbox-routes.ts';
import { loginRoutes } from './login-routes.ts';

export interface AppDeps {
  auth: AuthService;
  sandboxes: SandboxService;
  store: Store;
  log: Logger;
  /** When set, proxy URLs are piped before fastify sees them (no body buffering). */
  proxy?: SandboxProxy;
  trustProxy: boolean;
}

const PUBLIC_ROUTES = new Set(['/api/auth/login', '/healthz', '/login']);
const BODY_LIMIT_BYTES = 1024 * 1024;

/** The HTTP surface: JSON API via fastify, proxy URLs straight to the sandbox proxy. */
export function buildApp(deps: AppDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.log.child({ component: 'api' }) as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    trustProxy: deps.trustProxy,
    serverFactory: (handler) => {
      // requestTimeout 0: a streamed upload through the proxy may take as long as it takes.
      const server = createServer({ requestTimeout: 0 }, (req: IncomingMessage, res: ServerResponse) => {
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

  app.addHook('onRequest', async (request) => {
    const path = request.url.split('?')[0]!;
    if (PUBLIC_ROUTES.has(path)) return;
    setPrincipal(request, deps.auth.require(request.headers));
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  loginRoutes(app);
  authRoutes(app, deps.auth);
  keyRoutes(app, deps.auth, deps.store);
  sandboxRoutes(app, deps.sandboxes, deps.store);
  return app;
}
