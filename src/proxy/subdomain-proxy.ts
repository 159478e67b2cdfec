import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../logger.ts';
import type { AuthService, Principal } from '../auth/auth-service.ts';
import { readCookie } from '../auth/cookies.ts';
import { randomToken } from '../auth/secrets.ts';
import { stateHash } from '../auth/handoff-tokens.ts';
import { originMatches } from '../auth/origin.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Store } from '../store/store.ts';
import type { SandboxService } from '../sandboxes/sandbox-service.ts';
import type { Endpoint } from '../runtime/interface.ts';
import { CodeyardError, SandboxStartingError, ForbiddenError, InternalError, NotFoundError, UnauthorizedError, UpstreamUnavailableError } from '../errors.ts';
import { withoutLog } from '../sandboxes/sandbox-service.ts';
import { safeNext } from '../portal/login-page.ts';
import { matchHostRoute, type HostRoute } from './host-route.ts';
import { splitQuery } from './routes.ts';
import type { ProxyPipe } from './proxy-pipe.ts';
import type { TrustedProxies } from './trusted-proxies.ts';
import { stripGatewayCredentials } from './sandbox-proxy.ts';
import { rejectUpgrade, sendProxyError, wantsHtml } from './error-page.ts';

/** Where a subdomain spends its login hand-off; a path no sandbox's app is likely to use. */
export const HANDOFF_PATH = '/_codeyard/handoff';


export interface SubdomainProxyDeps {
  baseDomain: string;
  /** The gateway's public URL (https://code.example.com): where to send a visitor to log in. */
  publicUrl: string;
  auth: AuthService;
  sandboxes: SandboxService;
  store: Store;
  pipe: ProxyPipe;
  proxies: TrustedProxies;
  audit: AuditLog;
  log: Logger;
}

type Target = { sandboxID: string; endpoint: Endpoint; mainService: boolean };

/**
 * Requests for <user>.<baseDomain>, <workspace>--<user>.<baseDomain> and
 * <port>-<sandboxID>.<baseDomain>: each its own origin, served at its root, open
 * to its owner only, with a cookie of its own made by a login hand-off from the
 * base domain. Everything else (the base domain, IPs) is left to the gateway.
 */
export class SubdomainProxy {
  private readonly deps: SubdomainProxyDeps;
  private readonly secureCookie: boolean;
  /** Workspace host → the sandbox serving it (the host names its owner, checked before this is read). */
  private readonly hostSandbox = new Map<string, string>();

  constructor(deps: SubdomainProxyDeps) {
    this.deps = deps;
    this.secureCookie = deps.publicUrl.startsWith('https:');
  }

  handleRequest(req: IncomingMessage, res: ServerResponse): boolean {
    const route = this.route(req);
    if (route.kind === 'gateway') return false;
    this.serve(req, res, route).catch((err) => {
      const e = this.asCodeyardError(err);
      if (e instanceof UnauthorizedError && req.method === 'GET' && wantsHtml(req)) {
        // Not signed in here yet: the base domain knows who this is (or asks them to log in), then hands back a
        // token made for this browser's state, which only this browser holds (in a cookie of this host).
        const state = randomToken(24);
        const back = `${this.deps.publicUrl}/auth/handoff?host=${encodeURIComponent((route as { host: string }).host)}&next=${encodeURIComponent(req.url ?? '/')}&state=${stateHash(state)}`;
        res.writeHead(302, { location: back, 'cache-control': 'no-store', 'set-cookie': this.cookie(this.deps.auth.cookies.handoffState, state, req, HANDOFF_STATE_SECONDS) });
        res.end();
        return;
      }
      sendProxyError(req, res, e.status, e.kind, e.message, e instanceof SandboxStartingError);
    });
    return true;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const route = this.route(req);
    if (route.kind === 'gateway') return false;
    (async () => {
      if (route.kind === 'unknown') throw new NotFoundError(`no workspace or port is served at ${route.host}`);
      // Cookies ride along with any page's WebSocket: only this origin's own pages may open one.
      const origin = req.headers.origin;
      // With an https public URL, an http page of the same name is another origin too.
      if (origin !== undefined && (!originMatches(origin, [req.headers.host]) || (this.secureCookie && !origin.startsWith('https:')))) {
        throw new ForbiddenError(`WebSocket from another origin (${origin.slice(0, 100)}) refused`);
      }
      const principal = this.deps.auth.requireForHost(req.headers, route.host);
      const target = await this.target(route, principal, false);
      stripGatewayCredentials(req, this.deps.proxies.fromTrustedPeer(req));
      this.deps.pipe.ws(req, socket, head, target, { userId: principal.user.id, sessionHash: principal.sessionHash, keyId: principal.keyId });
    })().catch((err) => {
      const e = this.asCodeyardError(err);
      rejectUpgrade(socket, e.status, e.kind, e.message);
    });
    return true;
  }

  private route(req: IncomingMessage): HostRoute {
    return matchHostRoute(this.deps.proxies.host(req), this.deps.baseDomain);
  }

  private async serve(req: IncomingMessage, res: ServerResponse, route: Exclude<HostRoute, { kind: 'gateway' }>): Promise<void> {
    if (route.kind === 'unknown') throw new NotFoundError(`no workspace or port is served at ${route.host}: check the address (see the portal for yours)`);
    const [path, query] = splitQuery(req.url ?? '/');
    if (path === HANDOFF_PATH) return this.spendHandoff(req, res, route.host, new URLSearchParams(query));
    const principal = this.deps.auth.requireForHost(req.headers, route.host);
    const target = await this.target(route, principal, req.method === 'GET' && wantsHtml(req));
    stripGatewayCredentials(req, this.deps.proxies.fromTrustedPeer(req));
    this.deps.pipe.web(req, res, target, this.secureCookie || this.deps.proxies.isHttps(req));
  }

  /** The base domain sent the browser here with a one-time token: trade it for this host's cookie, and go where it was going. */
  private async spendHandoff(req: IncomingMessage, res: ServerResponse, host: string, params: URLSearchParams): Promise<void> {
    const token = params.get('token') ?? '';
    const ip = this.deps.proxies.clientIp(req) || null;
    let sessionToken: string;
    try {
      const redeemed = await this.deps.auth.redeemHandoff(token, host, readCookie(req.headers.cookie, this.deps.auth.cookies.handoffState));
      sessionToken = redeemed.sessionToken;
      this.deps.audit.record({ actor: redeemed.principal.user.username, ip, action: 'subdomain.login', target: host });
    } catch (err) {
      this.deps.audit.record({ actor: null, ip, action: 'subdomain.login', target: host, outcome: 'denied', details: { reason: (err as Error).message.slice(0, 200) } });
      throw err instanceof UnauthorizedError ? new ForbiddenError(err.message) : err;
    }
    res.writeHead(302, {
      location: safeNext(params.get('next') ?? '/'),
      'set-cookie': [this.cookie(this.deps.auth.cookies.subdomain, sessionToken, req), this.cookie(this.deps.auth.cookies.handoffState, '', req, 0)],
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
    });
    res.end();
  }

  /** Host-only (no Domain attribute): no other subdomain, nor the base domain, ever receives it. */
  private cookie(name: string, value: string, req: IncomingMessage, maxAgeSeconds?: number): string {
    const secure = this.secureCookie || this.deps.proxies.isHttps(req) || name.startsWith('__Host-');
    return `${name}=${value}; Path=/; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}${maxAgeSeconds === undefined ? '' : `; Max-Age=${maxAgeSeconds}`}`;
  }

  private async target(route: Exclude<HostRoute, { kind: 'gateway' | 'unknown' }>, principal: Principal, openIfStopped: boolean): Promise<Target> {
    if (route.kind === 'port') {
      const facts = (() => { try { return this.deps.sandboxes.factsFor(principal.user, route.sandboxID); } catch { return undefined; } })();
      if (!facts || facts.ownerId !== principal.user.id) throw new NotFoundError(`no sandbox ${route.sandboxID} of yours: port previews open for the sandbox's owner only`);
      return { sandboxID: route.sandboxID, endpoint: await this.deps.sandboxes.portEndpoint(route.sandboxID, route.port), mainService: false };
    }
    if (route.user !== principal.user.username) {
      throw new ForbiddenError(`${route.host} is ${route.user}'s workspace and you are signed in as ${principal.user.username}: open your own (${principal.user.username}.${this.deps.baseDomain})`);
    }
    // Every asset of the workbench comes this way: the sandbox found for this host last time, while it runs, is the answer.
    const known = this.hostSandbox.get(route.host);
    const knownEndpoint = known && this.deps.sandboxes.endpoint(known, 'ide');
    if (knownEndpoint) return { sandboxID: known!, endpoint: knownEndpoint, mainService: true };
    const workspace = this.workspaceName(principal, route.workspace);
    // Only a browser opening the page starts or creates anything; assets and sockets wait for it.
    const record = openIfStopped ? await this.deps.sandboxes.openWorkspace(principal.user, workspace) : this.runningOn(principal, workspace);
    const endpoint = this.deps.sandboxes.endpoint(record.sandboxID, 'ide');
    if (endpoint) {
      if (this.hostSandbox.size > 10_000) this.hostSandbox.clear();
      this.hostSandbox.set(route.host, record.sandboxID);
      return { sandboxID: record.sandboxID, endpoint, mainService: true };
    }
    if (record.state === 'error') {
      throw new UpstreamUnavailableError(`your workspace's sandbox ${record.sandboxID} failed: ${withoutLog(record.error ?? 'unknown error')}. ` +
        `See its log and start it again from the portal (${this.deps.publicUrl}/#/s/${record.sandboxID}/details)`);
    }
    throw new SandboxStartingError(`workspace ${workspace} is ${record.state === 'stopped' ? 'stopped' : 'starting'} (sandbox ${record.sandboxID})`);
  }

  /** The workspace a label names: labels are lowercase, names need not be. */
  private workspaceName(principal: Principal, label: string): string {
    if (label === 'default') return 'default';
    const found = this.deps.store.workspaces.list(principal.user.id).find((w) => w.name.toLowerCase() === label);
    if (!found) throw new NotFoundError(`you have no workspace named ${label}: create it in the portal first`);
    return found.name;
  }

  private runningOn(principal: Principal, workspace: string) {
    const record = this.deps.store.sandboxes.list(principal.user.id).find((r) => r.workspace?.name === workspace && this.deps.sandboxes.endpoint(r.sandboxID, 'ide'));
    if (!record) throw new SandboxStartingError(`workspace ${workspace} is not running: open ${workspace === 'default' ? '' : `${workspace}--`}${principal.user.username}.${this.deps.baseDomain} in a browser to start it`);
    return record;
  }

  private asCodeyardError(err: unknown): CodeyardError {
    if (err instanceof CodeyardError) return err;
    this.deps.log.error({ err }, 'subdomain proxy failure');
    return new InternalError('internal error: see the gateway log');
  }
}

/** Long enough to log in on the base domain in between. */
const HANDOFF_STATE_SECONDS = 600;
