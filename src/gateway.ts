import { existsSync, mkdirSync, statSync, chmodSync, chownSync, readFileSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { pathPreviewsEnabled, publicBaseUrl, type Config } from './config.ts';
import { subdomainHost } from './proxy/host-route.ts';
import { WorkspaceVolume } from './workspaces/workspace-volume.ts';
import { createLogger, type Logger } from './logger.ts';
import { Store } from './store/store.ts';
import { StorageGuard } from './store/storage-guard.ts';
import { AuthService } from './auth/auth-service.ts';
import { bootstrapAdmin } from './auth/bootstrap-admin.ts';
import { IdeTokens, loadOrCreateSecret } from './auth/ide-tokens.ts';
import { cookieNames } from './auth/cookies.ts';
import { UserService } from './auth/user-service.ts';
import { AuditLog } from './audit/audit-log.ts';
import { SandboxService } from './sandboxes/sandbox-service.ts';
import { MemoryAdmission } from './sandboxes/admission.ts';
import { WorkspaceService } from './workspaces/workspace-service.ts';
import { ProviderKeys } from './ai/provider-keys.ts';
import { ModelProxy } from './ai/model-proxy.ts';
import { opencodeConfig } from './ai/opencode-config.ts';
import { randomToken } from './auth/secrets.ts';
import { findTemplate, templateIDs } from './templates/catalog.ts';
import { LocalRuntime } from './runtime/local/local-runtime.ts';
import { DockerRuntime } from './runtime/docker/docker-runtime.ts';
import { dockerClient } from './runtime/docker/docker-client.ts';
import type { Runtime } from './runtime/interface.ts';
import { SandboxProxy } from './proxy/sandbox-proxy.ts';
import { SubdomainProxy } from './proxy/subdomain-proxy.ts';
import { hostName, matchHostRoute } from './proxy/host-route.ts';
import { ProxyPipe } from './proxy/proxy-pipe.ts';
import { markUnixPeer, TrustedProxies } from './proxy/trusted-proxies.ts';
import { GatewayMetrics } from './metrics/gateway-metrics.ts';
import { buildApp } from './api/app.ts';
import { toolchainPaths } from './toolchain/paths.ts';
import { ConnectionCap } from './server/connection-cap.ts';
import { serverTimeouts } from './server/timeouts.ts';
import { SetupError } from './errors.ts';

/** How often expired and idle sessions are swept from the store. */
const SESSION_SWEEP_MS = 600_000;

export interface Gateway {
  app: FastifyInstance;
  store: Store;
  sandboxes: SandboxService;
  url: string;
  port: number;
  /** Stops serving; sandboxes keep running (adopted on the next start) unless `stopSandboxes`. */
  close(opts?: { stopSandboxes?: boolean }): Promise<void>;
}

export interface GatewayOptions {
  log?: Logger;
  /** A runtime to use instead of the configured driver (unit tests pass a fake). */
  runtime?: Runtime;
  /** Skip binding a port (fastify inject() tests). */
  listen?: boolean;
  env?: NodeJS.ProcessEnv;
}

/** Wires store, auth, runtime, lifecycle, proxy and API together, and listens. */
export async function startGateway(config: Config, opts: GatewayOptions = {}): Promise<Gateway> {
  const log = opts.log ?? createLogger(config.logLevel);
  const env = opts.env ?? process.env;
  prepareDataDir(config.dataDir);

  // Workspaces share the data dir's disk with the store: when a user fills it, the reserve is given
  // back to the store's writes, and every failure is logged once a minute instead of ending the process.
  const storage = new StorageGuard({ dataDir: config.dataDir, minFreeMB: config.storage.minFreeMB, reserveMB: config.storage.reserveMB, log: log.child({ component: 'storage' }) });
  const store = storage.retryWhenFull('opening the store', () => Store.open(config.dataDir));
  store.hooks.onDiskFull = () => storage.releaseReserve('a store write');
  store.hooks.onFault = (what, err) => storage.report(what, err);
  storage.start();
  const audit = new AuditLog(store, log.child({ component: 'audit' }));
  const auth = new AuthService(store, new IdeTokens(loadOrCreateSecret(config.dataDir)), {
    sessionTtlMs: config.auth.sessionTtlHours * 3600_000,
    sessionIdleMs: config.auth.sessionIdleHours * 3600_000,
    ideTokenTtlSeconds: config.auth.ideTokenTtlSeconds,
    throttle: { windowMs: config.auth.loginWindowSeconds * 1000, freeFailures: config.auth.loginFreeFailures, baseDelayMs: config.auth.loginBaseDelayMs },
    cookies: cookieNames(publicBaseUrl(config).startsWith('https:')),
  });
  await bootstrapAdmin({ store, auth, dataDir: config.dataDir, log, envPassword: env.CODEYARD_ADMIN_PASSWORD });

  const runtime = opts.runtime ?? createRuntime(config, log);
  const providerKeys = new ProviderKeys(config.dataDir);
  const modelProxy = new ModelProxy({ store, keys: providerKeys, config: () => config.ai, log: log.child({ component: 'ai' }) });
  // Where a sandbox's opencode reaches the model proxy: 127.0.0.1:<port> inside it leads here (a relay to gateway.sock
  // in bubblewrap and container sandboxes; the host's own loopback with isolation: none).
  let listenPort = config.port;
  const sandboxGatewayUrl = () => `http://${['0.0.0.0', '::', ''].includes(config.host) ? '127.0.0.1' : config.host}:${listenPort}`;
  // Hard workspace limits: <dataDir>/users is a filesystem of its own (made and mounted before anything reads it).
  const volume = new WorkspaceVolume({ dataDir: config.dataDir, imageMB: config.storage.workspaceImageMB, log: log.child({ component: 'workspaces' }) });
  await volume.ensureMounted();
  const workspaces = new WorkspaceService({
    store, dataDir: config.dataDir, log: log.child({ component: 'workspaces' }),
    volume: { fs: volume, workspaceMB: config.users.defaultLimits.workspaceMB, throwawayMB: config.sandboxes.throwawayWorkspaceMB },
  });
  const sandboxes = new SandboxService({
    workspaces,
    onExpiry: templateExpiry(config),
    prepareRun: (record): Record<string, string> => {
      if (!hasIde(record.templateID)) return {};
      // A fresh token every start: the one a stopped sandbox held stops working.
      const token = `cyai_${randomToken(24)}`;
      store.ai.setToken(record.sandboxID, token);
      return { 'opencode.json': opencodeConfig(config.ai, sandboxGatewayUrl(), token) };
    },
    gatewayPort: () => listenPort,
    templateOptions: (record) => ({
      // code-server fills in {{port}}; the Ports view then offers the preview's own subdomain.
      proxyDomain: config.routing.baseDomain ? `{{port}}-${record.sandboxID}.${config.routing.baseDomain}` : undefined,
    }),
    systemEnv: (record): Record<string, string> => (hasIde(record.templateID) ? {
      OPENCODE_CONFIG: '${GATEWAY_DIR}/opencode.json',
      // Where a port of this sandbox is previewed, for code-server's Ports view and for the user's tools.
      ...(config.routing.baseDomain ? { VSCODE_PROXY_URI: portPreviewTemplate(publicBaseUrl(config, listenPort), config.routing.baseDomain, record.sandboxID) } : {}),
    } : {}),
    store, runtime, log: log.child({ component: 'sandboxes' }),
    defaults: { memoryMB: config.sandboxes.defaultMemoryMB, cpuCount: config.sandboxes.defaultCpuCount },
    admission: new MemoryAdmission({ memoryShare: config.sandboxes.memoryShare, userShare: config.sandboxes.userShare }),
    limits: { userDefaults: config.users.defaultLimits, sandbox: { maxMemoryMB: config.sandboxes.maxMemoryMB, maxCpuCount: config.sandboxes.maxCpuCount } },
    startTimeoutMs: config.sandboxes.startTimeoutSeconds * 1000,
    idleStopMs: config.sandboxes.idleStopSeconds * 1000,
    // Look for idle sandboxes often enough that a short idle limit is kept to within a quarter of itself.
    reaperIntervalMs: Math.min(5_000, Math.max(200, (config.sandboxes.idleStopSeconds * 1000) / 4 || 5_000)),
    supervision: {
      backoffMs: config.supervisor.backoffSeconds.map((s) => s * 1000),
      resetAfterMs: config.supervisor.resetAfterSeconds * 1000,
      maxFailures: config.supervisor.maxFailures,
      checkIntervalMs: config.supervisor.checkIntervalMs,
      healthIntervalMs: config.supervisor.healthIntervalSeconds * 1000,
      healthFailures: config.supervisor.healthFailures,
    },
  });
  await sandboxes.reconcile();
  sandboxes.startReaper();
  const users = new UserService(store, auth, sandboxes, workspaces);
  const sweep = () => store.bestEffort('sweeping expired sessions', () => auth.sweep());
  sweep();
  const sessionSweeper = setInterval(sweep, SESSION_SWEEP_MS);
  sessionSweeper.unref();

  let port = config.port;
  const baseUrl = () => publicBaseUrl(config, port);
  const proxies = new TrustedProxies(config.trustProxy);
  if (proxies.trust('127.0.0.1', 0)) {
    log.warn('trustProxy trusts loopback, where sandboxes reach the gateway too (their relay to the model proxy): a sandbox could claim any client address. ' +
      'Put nginx on the gateway\'s unix socket (socket: /run/codeyard/gateway.sock, nginx-config --upstream unix:…) and drop trustProxy');
  }
  let metrics: GatewayMetrics | undefined = undefined;
  const pipe = new ProxyPipe({
    auth, sandboxes, log: log.child({ component: 'proxy' }),
    activitySampleMs: Math.min(1_000, Math.max(100, (config.sandboxes.idleStopSeconds * 1000) / 8 || 1_000)),
    onBytes: (id, bytesIn, bytesOut) => metrics?.proxied(id, bytesIn, bytesOut),
  });
  metrics = new GatewayMetrics({ store, sandboxes, pipe: () => pipe });
  const proxyLog = log.child({ component: 'proxy' });
  const publicIsHttps = baseUrl().startsWith('https:');
  const proxy = new SandboxProxy({
    auth, sandboxes, log: proxyLog, pipe, proxies, publicHost: () => new URL(baseUrl()).host, publicIsHttps,
    pathPreviews: pathPreviewsEnabled(config), audit, dataDir: config.dataDir,
    // With a base domain every IDE has a host of its own; browsers are sent there, never served it on the portal's origin.
    ideOrigin: config.routing.baseDomain
      ? (id: string) => { const u = new URL(baseUrl()); return `${u.protocol}//${subdomainHost(config.routing.baseDomain!, { sandboxID: id })}${u.port ? `:${u.port}` : ''}`; }
      : undefined,
  });
  if (pathPreviewsEnabled(config)) {
    log.warn('routing.pathPreviews is on: port previews are served on the portal\'s own origin (each page in an opaque origin, CSP sandbox). ' +
      'Prefer routing.baseDomain, which gives every preview a host of its own');
  }
  const baseDomain = config.routing.baseDomain;
  const subdomains = baseDomain
    ? new SubdomainProxy({ baseDomain, publicUrl: baseUrl(), auth, sandboxes, store, pipe, proxies, audit, log: proxyLog, dataDir: config.dataDir })
    : undefined;
  const tls = loadTls(config);
  const app = buildApp({
    ai: modelProxy, providerKeys, aiConfig: () => config.ai, auth, users, sandboxes, workspaces, store,
    dataDir: config.dataDir, storage, audit, log, proxy, subdomains, proxies, metrics, metricsToken: config.metrics.token, baseDomain,
    tls: tls && { ...tls, hstsSeconds: config.tls.hstsSeconds }, secureCookies: publicIsHttps, baseUrl, server: config.server,
  });
  // One client cannot hold every socket: per address, over the TCP listeners (the unix socket is the front proxy's).
  const connectionCap = new ConnectionCap({
    max: config.server.maxConnectionsPerClient, exempt: (address) => proxies.trust(address, 0),
    onRefused: (address) => log.warn({ client: address, max: config.server.maxConnectionsPerClient }, 'a client holds server.maxConnectionsPerClient connections: closing its further ones until some end'),
  });
  connectionCap.attach(app.server);

  let redirectServer: HttpServer | undefined;
  let socketServer: HttpServer | undefined;
  const reloadTls = () => {
    // New connections get the new certificate; open ones keep theirs (nothing is dropped).
    if (!tls) { log.info('SIGHUP: nothing to reload (no tls.cert); the configuration is read at start'); return; }
    try {
      const fresh = loadTls(config);
      if (fresh) (app.server as unknown as HttpsServer).setSecureContext(fresh);
      log.info({ cert: config.tls.cert }, 'TLS certificate reloaded');
    } catch (err) {
      log.error({ err: (err as Error).message }, 'TLS certificate reload failed: kept the old one; fix the files and send SIGHUP again');
    }
  };
  if (opts.listen !== false) {
    await app.listen({ host: config.host, port: config.port });
    port = (app.server.address() as AddressInfo).port;
    listenPort = port;
    // Handled even without TLS: an unhandled SIGHUP (systemctl reload) would end the process.
    process.on('SIGHUP', reloadTls);
    if (tls && config.tls.redirectHttpPort !== undefined) redirectServer = await listenRedirect(config, baseUrl, log, connectionCap);
    if (config.socket) socketServer = await listenUnixSocket(config, app.server, log);
  } else {
    await app.ready();
  }
  const url = baseUrl();
  log.info({ url, dataDir: config.dataDir, runtime: runtime.name, baseDomain: baseDomain ?? null, tls: Boolean(tls) }, 'codeyard gateway listening');

  return {
    app, store, sandboxes, url, port,
    async close(closeOpts = {}) {
      clearInterval(sessionSweeper);
      process.off('SIGHUP', reloadTls);
      redirectServer?.close();
      socketServer?.close();
      // Open IDE WebSockets would hold the server open: cut them first.
      pipe.close();
      await app.close();
      await sandboxes.close(closeOpts);
      await storage.close();
      store.close();
    },
  };
}

/**
 * With no gateway running: stops every sandbox the store says is not stopped
 * (sandboxes outlive a stopped gateway by design). A restore calls this, so no
 * sandbox keeps running on the files it replaces. Returns their IDs.
 */
export async function stopLingeringSandboxes(config: Config, log: Logger): Promise<string[]> {
  const store = Store.open(config.dataDir);
  try {
    const active = store.sandboxes.list().filter((r) => r.state !== 'stopped').map((r) => r.sandboxID);
    if (active.length === 0) return [];
    const sandboxes = new SandboxService({
      store, runtime: createRuntime(config, log), log: log.child({ component: 'sandboxes' }),
      workspaces: new WorkspaceService({ store, dataDir: config.dataDir, log }),
      defaults: { memoryMB: config.sandboxes.defaultMemoryMB, cpuCount: config.sandboxes.defaultCpuCount },
      startTimeoutMs: config.sandboxes.startTimeoutSeconds * 1000,
    });
    await sandboxes.close({ stopSandboxes: true });
    return active;
  } finally {
    store.close();
  }
}

/** https://{{port}}-<id>.<baseDomain>[:port]/: the public URL's scheme and port, the preview's own host. */
function portPreviewTemplate(publicUrl: string, baseDomain: string, sandboxID: string): string {
  const u = new URL(publicUrl);
  return `${u.protocol}//{{port}}-${sandboxID}.${baseDomain}${u.port ? `:${u.port}` : ''}/`;
}

/** Templates with an IDE get opencode, configured for the model proxy. */
function hasIde(templateID: string): boolean {
  return 'ide' in (findTemplate(templateID)?.services ?? {});
}

/** `templates.<id>.onExpiry` from the config; a template ID this version lacks is a config error. */
function templateExpiry(config: Config): Record<string, 'stop' | 'delete' | undefined> {
  for (const id of Object.keys(config.templates)) {
    if (!findTemplate(id)) throw new SetupError(`config templates.${id}: no such template; available: ${templateIDs().join(', ')}`);
  }
  return Object.fromEntries(Object.entries(config.templates).map(([id, t]) => [id, t.onExpiry]));
}

function createRuntime(config: Config, log: Logger): Runtime {
  if (config.runtime.driver === 'docker') {
    const { docker, where } = dockerClient(config.runtime.docker.host);
    return new DockerRuntime({
      docker, where, dataDir: config.dataDir, image: config.runtime.docker.image, uid: config.runtime.docker.uid,
      maxProcesses: config.sandboxes.maxProcesses, socketWaitMs: config.sandboxes.startTimeoutSeconds * 1000,
      networks: Object.fromEntries(Object.entries(config.templates).map(([id, t]) => [id, t.network])),
      log: log.child({ component: 'runtime' }),
    });
  }
  const toolchain = toolchainPaths();
  if (!existsSync(toolchain.codeServerEntry)) {
    throw new SetupError(`code-server is not installed in the toolchain cache (${toolchain.codeServerDir}): run \`npm run setup\` (or \`codeyard setup\`) first`);
  }
  if (config.runtime.local.network === 'host') {
    log.warn('runtime.local.network: host — sandboxes share this machine\'s network: each reaches every other sandbox\'s servers and the host\'s loopback. Use it for measurements or a machine with one user only');
  }
  return new LocalRuntime({
    dataDir: config.dataDir, toolchain, isolation: config.runtime.local.isolation, sharedNetwork: config.runtime.local.network === 'host',
    uidBase: config.runtime.local.uidBase, maxProcesses: config.sandboxes.maxProcesses,
    socketWaitMs: config.sandboxes.startTimeoutSeconds * 1000,
    networks: Object.fromEntries(Object.entries(config.templates).map(([id, t]) => [id, t.network])),
    log: log.child({ component: 'runtime' }),
  });
}

/** The certificate and key from tls.cert/tls.key, read now (at start, and again on SIGHUP). */
function loadTls(config: Config): { cert: Buffer; key: Buffer } | undefined {
  if (!config.tls.cert || !config.tls.key) return undefined;
  try {
    return { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) };
  } catch (err) {
    throw new SetupError(`cannot read the TLS certificate or key (tls.cert ${config.tls.cert}, tls.key ${config.tls.key}): ${(err as Error).message}. Fix the paths, or make a test pair with \`codeyard tls self-signed --domain <domain>\``);
  }
}

/**
 * The same handlers on a unix socket, plain HTTP, for a front proxy on this machine.
 * Its connections are marked as the trusted proxy (see TrustedProxies).
 */
async function listenUnixSocket(config: Config, main: HttpServer | HttpsServer, log: Logger): Promise<HttpServer> {
  const path = config.socket!;
  // Timed like the TCP listener; not capped per client: every connection here is the front proxy's.
  const server = createHttpServer(serverTimeouts(config.server));
  server.on('connection', markUnixPeer);
  for (const listener of main.listeners('request')) server.on('request', listener as (...args: unknown[]) => void);
  for (const listener of main.listeners('upgrade')) server.on('upgrade', listener as (...args: unknown[]) => void);
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  // A socket file left by a gateway that died: nobody can be listening on it (the gateway.pid lock says so).
  if (existsSync(path)) {
    if (!statSync(path).isSocket()) throw new SetupError(`socket: ${path} exists and is not a socket; remove it or choose another path`);
    unlinkSync(path);
  }
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(path, resolve); });
  chmodSync(path, 0o660);
  if (config.socketGroup) {
    const gid = groupId(config.socketGroup);
    if (gid === undefined) throw new SetupError(`socketGroup: no group named ${config.socketGroup} on this machine`);
    chownSync(path, process.getuid?.() ?? 0, gid);
  }
  log.info({ socket: path, group: config.socketGroup ?? null }, 'listening on the unix socket for a front proxy (its X-Forwarded-* are trusted)');
  return server;
}

function groupId(group: string): number | undefined {
  if (/^\d+$/.test(group)) return Number(group);
  const line = readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.split(':')[0] === group);
  return line ? Number(line.split(':')[2]) : undefined;
}

/** Plain HTTP on tls.redirectHttpPort: every request goes to the same path on the HTTPS public URL. */
async function listenRedirect(config: Config, baseUrl: () => string, log: Logger, connectionCap: ConnectionCap): Promise<HttpServer> {
  const server = createHttpServer(serverTimeouts(config.server), (req, res) => {
    const base = new URL(baseUrl());
    const host = hostName(req.headers.host ?? base.host);
    // Only names this gateway serves: a redirect must not send anyone elsewhere.
    const route = matchHostRoute(host, config.routing.baseDomain);
    const known = host === base.hostname || route.kind === 'workspace' || route.kind === 'port';
    res.writeHead(301, { location: `https://${known ? host : base.hostname}${base.port ? `:${base.port}` : ''}${req.url ?? '/'}` });
    res.end();
  });
  connectionCap.attach(server);
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(config.tls.redirectHttpPort, config.host, resolve); });
  log.info({ port: config.tls.redirectHttpPort }, 'redirecting plain HTTP to HTTPS');
  return server;
}

/** The data dir holds the database and secrets: owner-only. */
function prepareDataDir(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const mode = statSync(dataDir).mode & 0o777;
  if (mode & 0o077) chmodSync(dataDir, 0o700);
}
