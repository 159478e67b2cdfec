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
import { LINK_PATH, matchHostRoute, type HostRoute } from './host-route.ts';
import { splitQuery } from './routes.ts';
import { findTemplate } from '../templates/catalog.ts';
import type { ProxyPipe } from './proxy-pipe.ts';
import type { TrustedProxies } from './trusted-proxies.ts';
import { stripGatewayCredentials } from './sandbox-proxy.ts';
import { rejectUpgrade, sendProxyError, sendStartPage, START_PATH, wantsHtml } from './error-page.ts';
import { refusedServiceWorker } from './response-headers.ts';
import { storageError } from '../store/storage-errors.ts';

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
  /** The data dir, whose disk a full-disk answer names. */
  dataDir?: string;
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
  /** frame-ancestors of an IDE on its own host: itself (its webviews) and the portal. */
  private readonly framedBy: string;
  /** Workspace host → the sandbox serving it (the host names its owner, checked before this is read). */
  private readonly hostSandbox = new Map<string, string>();

  constructor(deps: SubdomainProxyDeps) {
    this.deps = deps;
    this.secureCookie = deps.publicUrl.startsWith('https:');
    this.framedBy = `'self' ${new URL(deps.publicUrl).origin}`;
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
      if (target === 'stopped') throw new SandboxStartingError('the workspace is not running');
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
    if (path === LINK_PATH && route.kind === 'sandbox') return this.spendLink(req, res, route, new URLSearchParams(query));
    const principal = this.deps.auth.requireForHost(req.headers, route.host);
    if (route.kind !== 'port' && path === START_PATH && req.method === 'POST') return this.openFromPage(req, res, route, principal);
    const target = await this.target(route, principal, req.method === 'GET' && wantsHtml(req));
    if (target === 'stopped') {
      sendStartPage(res, {
        title: route.kind === 'workspace' ? `Workspace ${route.workspace} is not running` : `Sandbox ${(route as { sandboxID: string }).sandboxID} is stopped`,
        message: 'Its files are kept. Start it to open VS Code.', action: START_PATH, button: 'Start VS Code',
      });
      return;
    }
    if (refusedServiceWorker(req, path, target.mainService)) throw new ForbiddenError('a service worker may be registered only from code-server\'s own static files');
    stripGatewayCredentials(req, this.deps.proxies.fromTrustedPeer(req));
    // The portal frames IDEs from their own hosts (and the IDE its own webviews); previews are framed by nobody else.
    this.deps.pipe.web(req, res, { ...target, framedBy: target.mainService ? this.framedBy : undefined }, this.secureCookie || this.deps.proxies.isHttps(req));
  }

  /** The not-running page's button: a POST from this very host opens (starts or creates) the workspace's sandbox, or starts this sandbox. */
  private async openFromPage(req: IncomingMessage, res: ServerResponse, route: Extract<HostRoute, { kind: 'workspace' | 'sandbox' }>, principal: Principal): Promise<void> {
    const origin = req.headers.origin;
    if (origin === undefined || !originMatches(origin, [req.headers.host]) || (this.secureCookie && !origin.startsWith('https:'))) {
      throw new ForbiddenError('a workspace is started from its own page (or the portal), not from another site');
    }
    if (route.kind === 'workspace' && route.user !== principal.user.username) throw new ForbiddenError(`${route.host} is ${route.user}'s workspace`);
    const record = route.kind === 'sandbox'
      ? await this.deps.sandboxes.startOnOpen(principal.user, route.sandboxID)
      : await this.deps.sandboxes.openWorkspace(principal.user, this.workspaceName(principal, route.workspace));
    this.deps.audit.record({ actor: principal.user.username, ip: this.deps.proxies.clientIp(req) || null, action: 'sandbox.start', target: record.sandboxID, details: { from: route.host } });
    res.writeHead(303, { location: '/', 'cache-control': 'no-store' });
    res.end();
  }

  /** An IDE link (a share link) opened on the sandbox's own host: spent for a session of this host alone. */
  private async spendLink(req: IncomingMessage, res: ServerResponse, route: Extract<HostRoute, { kind: 'sandbox' }>, params: URLSearchParams): Promise<void> {
    const ip = this.deps.proxies.clientIp(req) || null;
    let sessionToken: string;
    try {
      const redeemed = await this.deps.auth.redeemIdeToken(params.get('token') ?? '', route.sandboxID, route.host);
      sessionToken = redeemed.sessionToken;
      this.deps.audit.record({ actor: redeemed.principal.user.username, ip, action: 'token.redeem', target: route.sandboxID, details: { host: route.host } });
    } catch (err) {
      this.deps.audit.record({ actor: null, ip, action: 'token.redeem', target: route.sandboxID, outcome: 'denied', details: { reason: (err as Error).message.slice(0, 200) } });
      throw err;
    }
    res.writeHead(302, {
      location: '/', 'set-cookie': this.cookie(this.deps.auth.cookies.subdomain, sessionToken, req), 'cache-control': 'no-store', 'referrer-policy': 'no-referrer',
    });
    res.end();
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

  /** Where the request goes; 'stopped' when a browser opened a workspace with nothing running on it (it gets a button). */
  private async target(route: Exclude<HostRoute, { kind: 'gateway' | 'unknown' }>, principal: Principal, openedInBrowser: boolean): Promise<Target | 'stopped'> {
    if (route.kind === 'sandbox') return this.sandboxTarget(route.sandboxID, principal, openedInBrowser);
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
    // A GET never starts or creates anything (a link on any site could make it): a browser gets a button that POSTs.
    const active = this.activeOn(principal, workspace);
    if (!active && openedInBrowser) return 'stopped';
    const record = active ?? this.runningOn(principal, workspace);
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

  /** ide-<id>: that sandbox's IDE, for its owner or an admin (whose session here was handed over for this host alone, audited). */
  private sandboxTarget(sandboxID: string, principal: Principal, openedInBrowser: boolean): Target | 'stopped' {
    const record = this.deps.sandboxes.getFor(principal.user, sandboxID);
    if (!('ide' in (findTemplate(record.templateID)?.services ?? {}))) throw new NotFoundError(`sandbox ${sandboxID} runs ${record.templateID}, which has no IDE`);
    const endpoint = this.deps.sandboxes.endpoint(sandboxID, 'ide');
    if (endpoint) return { sandboxID, endpoint, mainService: true };
    if (record.state === 'stopped' && openedInBrowser) return 'stopped';
    if (record.state === 'error') {
      throw new UpstreamUnavailableError(`sandbox ${sandboxID} failed: ${withoutLog(record.error ?? 'unknown error')}. See its log and start it again from the portal (${this.deps.publicUrl}/#/s/${sandboxID}/details)`);
    }
    if (record.state === 'stopped') throw new UpstreamUnavailableError(`sandbox ${sandboxID} is stopped: open it in a browser to start it`);
    throw new SandboxStartingError(`sandbox ${sandboxID} is ${record.state}`);
  }

  /** The workspace a label names: labels are lowercase, names need not be. */
  private workspaceName(principal: Principal, label: string): string {
    if (label === 'default') return 'default';
    const found = this.deps.store.workspaces.list(principal.user.id).find((w) => w.name.toLowerCase() === label);
    if (!found) throw new NotFoundError(`you have no workspace named ${label}: create it in the portal first`);
    return found.name;
  }

  /** A sandbox of the workspace that runs or is on its way (starting, restarting, or failed: its page says why). */
  private activeOn(principal: Principal, workspace: string) {
    const rank = ['running', 'starting', 'restarting', 'error'];
    return this.deps.store.sandboxes.list(principal.user.id)
      .filter((r) => r.workspace?.name === workspace && rank.includes(r.state) && r.templateID === 'vscode')
      .sort((a, b) => rank.indexOf(a.state) - rank.indexOf(b.state))[0];
  }

  private runningOn(principal: Principal, workspace: string) {
    const record = this.deps.store.sandboxes.list(principal.user.id).find((r) => r.workspace?.name === workspace && this.deps.sandboxes.endpoint(r.sandboxID, 'ide'));
    if (!record) throw new SandboxStartingError(`workspace ${workspace} is not running: open ${workspace === 'default' ? '' : `${workspace}--`}${principal.user.username}.${this.deps.baseDomain} in a browser to start it`);
    return record;
  }

  private asCodeyardError(err: unknown): CodeyardError {
    if (err instanceof CodeyardError) return err;
    // A store or disk fault (a full disk) answers as the API does: 507 naming the disk, 503 for a busy store.
    const stored = storageError(err, this.deps.dataDir);
    if (stored) { this.deps.log.warn({ err: (err as Error).message }, stored.message); return stored; }
    this.deps.log.error({ err }, 'subdomain proxy failure');
    return new InternalError('internal error: see the gateway log');
  }
}

/** Long enough to log in on the base domain in between. */
const HANDOFF_STATE_SECONDS = 600;
