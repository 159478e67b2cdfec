import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthService } from '../auth/auth-service.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Store } from '../store/store.ts';
import type { SandboxService } from '../sandboxes/sandbox-service.ts';
import type { GatewayMetrics } from '../metrics/gateway-metrics.ts';
import type { TrustedProxies } from '../proxy/trusted-proxies.ts';
import { matchHostRoute } from '../proxy/host-route.ts';
import { HANDOFF_PATH } from '../proxy/subdomain-proxy.ts';
import { safeNext } from '../portal/login-page.ts';
import { sendProxyError } from '../proxy/error-page.ts';
import { CodeyardError, ForbiddenError, InvalidInputError, NotFoundError, UnauthorizedError } from '../errors.ts';
import { principalOf } from './principal.ts';

export interface FrontDoorDeps {
  auth: AuthService;
  store: Store;
  sandboxes: SandboxService;
  audit: AuditLog;
  proxies: TrustedProxies;
  metrics: GatewayMetrics;
  /** GET /metrics needs this as a Bearer token; without one nobody gets it (sandboxes reach the gateway from loopback). */
  metricsToken: string | undefined;
  baseDomain: string | undefined;
  /** https://code.example.com[:port]: the scheme and port subdomains share with it. */
  publicUrl: () => string;
  /** The data dir's disk: too little free space there is a reason not to be ready. */
  storage?: { lowSpace(): { detail: string; brief: string } | undefined };
}

/** Health for load balancers, metrics for Prometheus, and the login hand-off to subdomains. */
export function frontDoorRoutes(app: FastifyInstance, deps: FrontDoorDeps): void {
  app.get('/readyz', async (request, reply) => {
    const problems: string[] = [];
    /** What anyone may be told of a problem whose details name paths. */
    const briefs = new Map<string, string>();
    try { deps.store.db.prepare('SELECT 1').get(); } catch (err) { problems.push(`store: ${(err as Error).message}`); }
    try {
      const low = deps.storage?.lowSpace();
      if (low) { problems.push(`disk: ${low.detail}`); briefs.set(problems.at(-1)!, `disk: ${low.brief}`); }
    } catch (err) { problems.push(`disk: ${(err as Error).message}`); }
    try { await deps.sandboxes.assertRuntimeAvailable(); } catch (err) { problems.push(`runtime: ${(err as Error).message}`); }
    reply.header('cache-control', 'no-store');
    if (problems.length > 0) {
      // Anyone may ask; only the log (and loopback callers) get the details, which name paths and sockets.
      request.log.warn({ problems }, 'not ready');
      // Details name paths and sockets, and sandboxes come in from loopback too (their relay): only the log has them.
      return reply.status(503).send({ status: 'unavailable', problems: problems.map((p) => briefs.get(p) ?? `${p.split(':')[0]}: unavailable (details in the gateway log)`) });
    }
    return { status: 'ready' };
  });

  app.get('/metrics', async (request, reply) => {
    if (deps.metricsToken) {
      if (!sameSecret(request.headers.authorization ?? '', `Bearer ${deps.metricsToken}`)) throw new UnauthorizedError('GET /metrics needs the metrics token: Authorization: Bearer <metrics.token>');
    } else {
      throw new ForbiddenError('GET /metrics needs metrics.token (CODEYARD_METRICS_TOKEN) here: sandboxes reach this gateway from loopback (their relay to the model proxy), so loopback alone proves nothing');
    }
    reply.header('cache-control', 'no-store').type(deps.metrics.contentType);
    return deps.metrics.text();
  });

  /**
   * A subdomain sent a browser here to find out who it is. Logged in (the auth hook
   * sends everyone else to /login first) and allowed there: back it goes with a
   * one-time token that the subdomain trades for a cookie of its own.
   */
  app.get<{ Querystring: { host?: string; next?: string; state?: string } }>('/auth/handoff', async (request, reply) => {
    try {
      if (!deps.baseDomain) throw new NotFoundError('subdomain routing is off (routing.baseDomain is not set)');
      const route = matchHostRoute(request.query.host, deps.baseDomain);
      if (route.kind !== 'workspace' && route.kind !== 'port' && route.kind !== 'sandbox') throw new InvalidInputError(`host: ${String(request.query.host).slice(0, 100)} is not a workspace, sandbox or port address under ${deps.baseDomain}`);
      const principal = principalOf(request);
      if (principal.via !== 'session') throw new ForbiddenError('only a browser session can sign in to a subdomain');
      const state = request.query.state;
      if (typeof state !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(state)) throw new InvalidInputError(`state: missing or malformed; open ${route.host} itself, which sends you here`);
      const user = principal.user;
      if (route.kind === 'workspace' && route.user !== user.username) {
        throw new ForbiddenError(`${route.host} is ${route.user}'s workspace and you are signed in as ${user.username}: open your own (${user.username}.${deps.baseDomain})`);
      }
      if (route.kind === 'port' && deps.store.sandboxes.get(route.sandboxID)?.ownerId !== user.id) {
        throw new ForbiddenError(`sandbox ${route.sandboxID} is not yours: port previews open for the sandbox's owner only`);
      }
      // A sandbox's IDE host: its owner, or an admin (who goes to the sandbox's own origin, never runs it on the portal's; audited below).
      const ownerId = route.kind === 'sandbox' ? deps.store.sandboxes.get(route.sandboxID)?.ownerId : undefined;
      if (route.kind === 'sandbox' && ownerId !== user.id && !(user.role === 'admin' && ownerId !== undefined)) {
        throw new ForbiddenError(`sandbox ${route.sandboxID} is not yours: its IDE opens for its owner (and admins) only`);
      }
      const token = await deps.auth.issueHandoff(principal, route.host, state);
      deps.audit.record({
        actor: user.username, ip: deps.proxies.clientIp(request.raw) || null, action: 'subdomain.handoff', target: route.host,
        ...(ownerId !== undefined && ownerId !== user.id ? { details: { asAdmin: true, owner: deps.store.users.byId(ownerId)?.username } } : {}),
      });
      const base = new URL(deps.publicUrl());
      const target = `${base.protocol}//${route.host}${base.port ? `:${base.port}` : ''}${HANDOFF_PATH}?token=${encodeURIComponent(token)}&next=${encodeURIComponent(safeNext(request.query.next ?? '/'))}`;
      return reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer').redirect(target, 302);
    } catch (err) {
      return htmlError(request, reply, err);
    }
  });
}

/** A browser arrived here by a redirect: it gets a page, not JSON. */
function htmlError(request: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
  if (!(err instanceof CodeyardError)) throw err;
  reply.hijack();
  sendProxyError(request.raw, reply.raw, err.status, err.kind, err.message);
  return reply;
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
