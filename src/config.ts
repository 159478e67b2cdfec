// The one place configuration is read: defaults < file (codeyard.yaml or JSON)
// < environment (CODEYARD_*) < command-line flags. Validated once; every error
// names the key and the source it came from.
import { readFileSync, existsSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import proxyAddr from '@fastify/proxy-addr';
import { InvalidInputError } from './errors.ts';
import { DNS_NAME } from './proxy/host-route.ts';

const port = z.coerce.number().int().min(0).max(65535);
/** The workspace image this version builds and runs by default. */
export const DEFAULT_IMAGE = `codeyard/workspace:${(JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { version: string }).version}`;

const ConfigSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port: port.default(8080),
  dataDir: z.string().min(1).default(join(process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'codeyard')),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /**
   * Also listen on this unix socket, for a front proxy on this machine (nginx's
   * `--upstream unix:<path>`). Whoever connects there is trusted as that proxy
   * (its X-Forwarded-* are believed), so the file is 0660: give nginx's group
   * access with socketGroup. Local sandboxes share the host's loopback, so they can
   * never pass for a proxy that comes in this way.
   */
  socket: z.string().min(1).optional(),
  /** Group owning the socket file (e.g. www-data, nginx's); default: the gateway's. */
  socketGroup: z.string().min(1).optional(),
  /** Public base URL used in links the API hands out; derived from host:port when unset. */
  publicUrl: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL, e.g. https://code.example.com' }).optional(),
  /**
   * Which peers may set X-Forwarded-* (client IP, host, protocol): false (nobody,
   * the default), true (a proxy on this machine: loopback), or addresses/CIDRs,
   * comma-separated (e.g. "10.0.0.5, 10.0.1.0/24"). Only the hops named are trusted.
   */
  trustProxy: z.union([z.boolean(), z.string().min(1)])
    .transform((v): string | false => (v === true || v === 'true' ? 'loopback' : v === false || v === 'false' ? false : v))
    .default(false),
  /** How requests find their sandbox: by path always, and by subdomain once a wildcard domain points here. */
  routing: z.strictObject({
    /**
     * The domain whose subdomains are sandboxes (e.g. code.example.com, with *.code.example.com
     * pointing here): <user>.<domain> is the user's default workspace, <workspace>--<user>.<domain>
     * a named one, <port>-<sandboxID>.<domain> a port inside a sandbox. Unset: path routing only.
     */
    baseDomain: z.string().regex(DNS_NAME,
      'a lowercase DNS name such as code.example.com (no scheme, port or wildcard)').optional(),
    /**
     * Port previews by path: /proxy/<port>/ and /absproxy/<port>/ under /vscode-proxy/<id>/. They serve
     * what the sandbox runs on the portal's own origin, so they are off unless set to true here (the
     * gateway then warns, and each such page runs in an opaque origin, CSP `sandbox`); port subdomains
     * under baseDomain give every preview an origin of its own.
     */
    pathPreviews: z.union([z.boolean(), z.enum(['true', 'false'])]).transform((v) => v === true || v === 'true').optional(),
  }).prefault({}),
  /** The gateway terminates TLS itself (no nginx in front): PEM files, re-read on SIGHUP. */
  tls: z.strictObject({
    cert: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
    /** Strict-Transport-Security max-age in seconds on every answer over TLS; 0: not sent. */
    hstsSeconds: z.coerce.number().int().min(0).default(0),
    /** A plain-HTTP port that redirects everything to the HTTPS public URL (e.g. 80); unset: none. */
    redirectHttpPort: port.optional(),
  }).prefault({}).refine((t) => (t.cert === undefined) === (t.key === undefined), { message: 'tls.cert and tls.key go together: set both or neither' }),
  /** GET /metrics (Prometheus): with a token, for whoever presents it (Bearer); without, for loopback clients only. */
  metrics: z.strictObject({
    token: z.string().min(16, 'at least 16 characters').optional(),
  }).prefault({}),
  /** What one client may hold of the gateway's listeners (TCP, TLS, the redirect port, the unix socket). */
  server: z.strictObject({
    /** A connection must deliver a request's complete headers this long after opening (or after its next request
     *  starts): slow or silent clients get a 408 and are closed. Bodies, streams and WebSockets are not timed. */
    headersTimeoutSeconds: z.coerce.number().positive().max(3600).default(20),
    /** A kept-alive connection with no request in flight is closed after this long. Longer than nginx's upstream
     *  keep-alive (60 s), so the gateway never closes a connection nginx is about to reuse. */
    keepAliveTimeoutSeconds: z.coerce.number().positive().max(3600).default(65),
    /** Open connections one client address may hold on the TCP listeners; more are closed at once (0: no cap).
     *  The unix socket and trustProxy peers (one proxy carries many clients) are not counted. */
    maxConnectionsPerClient: z.coerce.number().int().min(0).default(256),
  }).prefault({}),
  auth: z.strictObject({
    /** A session ends this long after login, whatever happens. */
    sessionTtlHours: z.coerce.number().positive().default(24 * 7),
    /** …or after this long without a request. */
    sessionIdleHours: z.coerce.number().positive().default(24),
    /** Lifetime of an IDE link (POST /api/sandboxes/:id/ide-token). */
    ideTokenTtlSeconds: z.coerce.number().int().min(10).max(86_400).default(300),
    /** Failed logins are counted per username and per IP over this window… */
    loginWindowSeconds: z.coerce.number().positive().default(60),
    /** …this many are free (four times as many per IP)… */
    loginFreeFailures: z.coerce.number().int().min(1).default(5),
    /** …then each further one doubles a wait that starts here, up to the window's end. */
    loginBaseDelayMs: z.coerce.number().int().min(1).default(1000),
  }).prefault({}),
  runtime: z.strictObject({
    /** `local` (bubblewrap on this machine) or `docker` (a container per sandbox; Podman through its Docker-compatible socket). */
    driver: z.enum(['local', 'docker']).default('local'),
    docker: z.strictObject({
      /** The workspace image (`codeyard image build` makes it). */
      image: z.string().min(1).default(DEFAULT_IMAGE),
      /** uid (and gid) of `coder` in the image: owner of workspace files on the host. */
      uid: z.coerce.number().int().min(1).max(2 ** 31 - 2).default(1000),
      /** The engine's API; default: DOCKER_HOST, else unix:///var/run/docker.sock. */
      host: z.string().optional(),
    }).prefault({}),
    local: z.strictObject({
      /** `bubblewrap` (default) or `none` (explicit opt-out: no namespaces, for machines without bwrap). */
      isolation: z.enum(['bubblewrap', 'none']).default('bubblewrap'),
      /** First host uid handed to sandboxes when the gateway runs as root; sandbox N gets base+N.
       *  Far above login users' uids, so a sandbox never shares a uid with a person. */
      uidBase: z.coerce.number().int().min(100000).default(200000),
      /** `namespace` (default): every sandbox has a network of its own (slirp4netns out, nothing of the host's
       *  loopback or another sandbox's). `host`: sandboxes share the host's network, as before 0.2: for
       *  measurements and single-user machines only — any sandbox then reaches every other's servers. */
      network: z.enum(['namespace', 'host']).default('namespace'),
    }).prefault({}),
  }).prefault({}),
  supervisor: z.strictObject({
    /** Waits before restarting a crashed sandbox: the 1st, 2nd, 3rd… (the last repeats). */
    backoffSeconds: z.array(z.coerce.number().nonnegative()).min(1).default([30, 60, 120]),
    /** A run this long resets the count of crashes in a row. */
    resetAfterSeconds: z.coerce.number().nonnegative().default(30),
    /** Crashes in a row before the sandbox is left in `error`. */
    maxFailures: z.coerce.number().int().min(1).default(5),
    /** How often a running sandbox's process is checked… */
    checkIntervalMs: z.coerce.number().int().min(10).default(1000),
    /** …and how often its health endpoint is probed, and how many failures mean "hung". */
    healthIntervalSeconds: z.coerce.number().positive().default(5),
    healthFailures: z.coerce.number().int().min(1).default(3),
  }).prefault({}),
  /** Accounts. */
  users: z.strictObject({
    /**
     * What each account with role `user` may hold unless an admin set its own limit
     * (PATCH /api/users/:name {limits}: a number, null for no limit, "default" for
     * these). Admins follow no default: they have no limit unless one is set. null: no limit.
     */
    defaultLimits: z.strictObject({
      /** Sandboxes a user may have, stopped ones included (each holds a record and a workspace). */
      maxSandboxes: z.coerce.number().int().min(0).nullable().default(4),
      /** MB of memoryMB the user's sandboxes that are not stopped may hold together. */
      maxMemoryMB: z.coerce.number().int().min(0).nullable().default(8192),
      /**
       * CPUs (cpuCount) the user's sandboxes that are not stopped may hold together. Default
       * null: CPU is shared, not reserved (nobody's start fails for it, busy sandboxes share
       * the cores), and a total of "the host's cores" would still let one user take them all;
       * sandboxes.maxCpuCount caps each sandbox.
       */
      maxCpu: z.coerce.number().min(0).nullable().default(null),
      /** MB a user's workspace may fill: carried as a default here, enforced where workspaces are (not by the gateway's admission). */
      workspaceMB: z.coerce.number().int().min(0).nullable().default(10240),
    }).prefault({}),
  }).prefault({}),
  sandboxes: z.strictObject({
    defaultMemoryMB: z.coerce.number().int().min(128).default(2048),
    defaultCpuCount: z.coerce.number().positive().default(1),
    /** The most memoryMB one sandbox may have (creates and starts past it: 403); admins too. */
    maxMemoryMB: z.coerce.number().int().min(128).default(8192),
    /** The most cpuCount one sandbox may have; default: this machine's cores. */
    maxCpuCount: z.coerce.number().positive().default(availableParallelism()),
    /** Size limit of a throwaway workspace (home and files) in MB, where limits are hard (storage.workspaceImageMB). */
    throwawayWorkspaceMB: z.coerce.number().int().min(16).default(2048),
    /** Processes (and threads) one sandbox may hold at once: a fork bomb stays inside it. */
    maxProcesses: z.coerce.number().int().min(64).default(4096),
    /** A running sandbox nobody has used (no HTTP request, no WebSocket frame) for this long is stopped; 0: never. */
    idleStopSeconds: z.coerce.number().nonnegative().default(3600),
    /** Seconds a code-server may take to answer its health check before the sandbox is marked error. */
    startTimeoutSeconds: z.coerce.number().int().positive().default(120),
    /**
     * Admission control: the memoryMB of sandboxes that are not stopped may add up
     * to this share of the machine's memory (MemTotal); a create or start past it
     * is refused with 503. Above 1 over-commits on purpose (idle IDEs use far less
     * than their limit); 0 turns the check off.
     */
    memoryShare: z.coerce.number().min(0).max(16).default(0.8),
    /**
     * Of what memoryShare allows, the share one user's sandboxes that are not stopped
     * may hold together (403 past it), so no one user fills the host and makes
     * everyone else's start fail with 503. Admins are exempt; 1: no per-user share.
     */
    userShare: z.coerce.number().gt(0).max(1).default(0.5),
  }).prefault({}),
  /** The data dir's disk, which workspaces share with the store: a user can fill it (docs/operations.md, "A full disk"). */
  storage: z.strictObject({
    /** Below this much free space there, /readyz answers 503 and `codeyard doctor` fails, both naming the disk. */
    minFreeMB: z.coerce.number().int().min(0).default(512),
    /**
     * A file of this size kept in the data dir (<dataDir>/.reserve), deleted when a store write finds
     * the disk full so the gateway can keep recording state, and made again once reserveMB + minFreeMB
     * are free; 0: none.
     */
    reserveMB: z.coerce.number().int().min(0).default(64),
    /**
     * Hard workspace size limits: > 0 makes <dataDir>/users a btrfs filesystem of this many MB (an image
     * the gateway makes and mounts; root and btrfs-progs needed), each workspace a subvolume limited to
     * users.defaultLimits.workspaceMB and each throwaway one to sandboxes.throwawayWorkspaceMB: a write
     * past it fails with "Disk quota exceeded", and workspaces together never fill the data dir's disk.
     * 0 (default): no hard limit (docs/operations.md).
     */
    workspaceImageMB: z.coerce.number().int().min(0).default(0),
  }).prefault({}),
  /** The model proxy (/ai/<provider>/…): sandboxes' opencode talks to it; it holds the real keys. */
  ai: z.strictObject({
    /** Upstreams by name. `anthropic` and `openai` have their public base URLs; `openai-compatible` needs baseUrl. */
    providers: z.record(z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'provider names: lowercase letters, digits, -'), z.strictObject({
      kind: z.enum(['anthropic', 'openai', 'openai-compatible']),
      baseUrl: z.url().optional(),
      /** Model IDs offered to opencode (it works offline only with an explicit list). */
      models: z.array(z.string().min(1)).min(1).optional(),
    })).default({
      anthropic: { kind: 'anthropic' as const, models: ['claude-sonnet-4-5', 'claude-haiku-4-5'] },
      openai: { kind: 'openai' as const, models: ['gpt-5', 'gpt-5-mini'] },
    }),
    /** What opencode uses unless the user picks another: "<provider>/<model>". */
    defaultModel: z.string().regex(/^[a-z0-9-]+\/.+$/, 'expected "<provider>/<model>"').default('anthropic/claude-sonnet-4-5'),
    /** Per user: calls a minute, and tokens (in + out) a calendar month; null: no limit. */
    requestsPerMinute: z.coerce.number().int().min(1).default(60),
    monthlyTokens: z.coerce.number().int().min(1).nullable().default(null),
    /** How long an upstream may take to start answering. */
    upstreamTimeoutSeconds: z.coerce.number().int().min(1).default(120),
  }).prefault({}),
  /** Per-template settings, by template ID. */
  templates: z.record(z.string(), z.strictObject({
    /** On timeout: `stop` (keep it, files and all) or `delete`. Default: stop with a persistent workspace, delete with a throwaway one. */
    onExpiry: z.enum(['stop', 'delete']).optional(),
    /** Container runtime: `default` (egress allowed) or `none` (no network at all). */
    network: z.enum(['default', 'none']).optional(),
  })).default({}),
});

export type Config = z.infer<typeof ConfigSchema>;

/** Flat env var -> config path. Only these are read; anything else CODEYARD_* is left alone. */
const ENV_KEYS: Record<string, string[]> = {
  CODEYARD_HOST: ['host'],
  CODEYARD_PORT: ['port'],
  CODEYARD_DATA_DIR: ['dataDir'],
  CODEYARD_LOG_LEVEL: ['logLevel'],
  CODEYARD_PUBLIC_URL: ['publicUrl'],
  CODEYARD_RUNTIME: ['runtime', 'driver'],
  CODEYARD_ISOLATION: ['runtime', 'local', 'isolation'],
  CODEYARD_TRUST_PROXY: ['trustProxy'],
  CODEYARD_DOCKER_IMAGE: ['runtime', 'docker', 'image'],
  CODEYARD_BASE_DOMAIN: ['routing', 'baseDomain'],
  CODEYARD_SOCKET: ['socket'],
  CODEYARD_TLS_CERT: ['tls', 'cert'],
  CODEYARD_TLS_KEY: ['tls', 'key'],
  CODEYARD_METRICS_TOKEN: ['metrics', 'token'],
};

export interface ConfigSources {
  /** Explicit path (--config / CODEYARD_CONFIG); when absent, <dataDir>/codeyard.yaml is read if present. */
  configPath?: string;
  env?: NodeJS.ProcessEnv;
  /** Already-parsed flags, in config shape (e.g. { port: 9000, dataDir: '/x' }). */
  flags?: Record<string, unknown>;
}

export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? process.env;
  const fromEnv: Record<string, unknown> = {};
  for (const [name, path] of Object.entries(ENV_KEYS)) {
    if (env[name] !== undefined && env[name] !== '') setPath(fromEnv, path, env[name]);
  }
  const flags = stripUndefined(sources.flags ?? {});
  const explicitPath = sources.configPath ?? env.CODEYARD_CONFIG;
  const dataDirHint = (flags.dataDir ?? fromEnv.dataDir) as string | undefined;
  const filePath = explicitPath ?? findDefaultConfigFile(dataDirHint);
  const fromFile = filePath ? readConfigFile(filePath, explicitPath !== undefined) : {};

  const merged = deepMerge(deepMerge(fromFile, fromEnv), flags);
  const parsed = ConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = issue.path.join('.') || '(root)';
    const where = filePath ? ` (merged from ${filePath}, CODEYARD_* env and flags)` : '';
    throw new InvalidInputError(`config key "${key}": ${issue.message}${where}`);
  }
  const config = parsed.data;
  config.dataDir = resolve(config.dataDir);
  if (config.socket) config.socket = resolve(config.socket);
  if (config.tls.cert) { config.tls.cert = resolve(config.tls.cert); config.tls.key = resolve(config.tls.key!); }
  if (!config.tls.cert && (config.tls.hstsSeconds > 0 || config.tls.redirectHttpPort !== undefined)) {
    throw new InvalidInputError('config keys "tls.hstsSeconds" and "tls.redirectHttpPort" need tls.cert and tls.key (the gateway\'s own HTTPS); behind nginx, set HSTS and the redirect there');
  }
  if (config.trustProxy) {
    try { proxyAddr.compile(config.trustProxy.split(',').map((a) => a.trim())); } catch (err) {
      throw new InvalidInputError(`config key "trustProxy": ${(err as Error).message}; use true (loopback), addresses or CIDRs separated by commas, e.g. "10.0.0.5, 10.0.1.0/24"`);
    }
  }
  if (config.routing.baseDomain && config.publicUrl && new URL(config.publicUrl).hostname !== config.routing.baseDomain) {
    throw new InvalidInputError(`config key "routing.baseDomain": ${config.routing.baseDomain} must be the public URL's host (${new URL(config.publicUrl).hostname}): the portal and API live at the base domain itself`);
  }
  // A default past the ceiling would refuse every create that leaves it out.
  const s = config.sandboxes;
  if (s.defaultMemoryMB > s.maxMemoryMB) {
    throw new InvalidInputError(`config key "sandboxes.defaultMemoryMB": ${s.defaultMemoryMB} is above sandboxes.maxMemoryMB (${s.maxMemoryMB}), the most one sandbox may have: lower it or raise sandboxes.maxMemoryMB`);
  }
  if (s.defaultCpuCount > s.maxCpuCount) {
    throw new InvalidInputError(`config key "sandboxes.defaultCpuCount": ${s.defaultCpuCount} is above sandboxes.maxCpuCount (${s.maxCpuCount}), the most one sandbox may have: lower it or raise sandboxes.maxCpuCount`);
  }
  return config;
}

/** The URL a browser uses to reach this gateway, for links in API answers. */
export function publicBaseUrl(config: Config, boundPort = config.port): string {
  if (config.publicUrl) return config.publicUrl.replace(/\/$/, '');
  const scheme = config.tls.cert ? 'https' : 'http';
  if (config.routing.baseDomain) return `${scheme}://${config.routing.baseDomain}:${boundPort}`;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
}

/** Whether path previews (/vscode-proxy/<id>/proxy/<port>/) are on: only when the operator says so. */
export function pathPreviewsEnabled(config: Config): boolean {
  return config.routing.pathPreviews === true;
}

function findDefaultConfigFile(dataDir: string | undefined): string | undefined {
  const candidates = ['codeyard.yaml', 'codeyard.yml', 'codeyard.json'];
  const dirs = [dataDir ?? join(process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'codeyard')];
  for (const dir of dirs) for (const name of candidates) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

function readConfigFile(path: string, required: boolean): Record<string, unknown> {
  if (!existsSync(path)) {
    if (required) throw new InvalidInputError(`config file ${path} does not exist: create it or drop --config/CODEYARD_CONFIG`);
    return {};
  }
  const text = readFileSync(path, 'utf8');
  let value: unknown;
  try {
    value = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new InvalidInputError(`config file ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
  if (value == null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidInputError(`config file ${path} must hold a mapping of keys (host, port, dataDir, …)`);
  }
  return value as Record<string, unknown>;
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
  node[path.at(-1)!] = value;
}

function stripUndefined(obj: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isPlainObject(v) && isPlainObject(out[k]) ? deepMerge(out[k] as Record<string, unknown>, v) : v;
  }
  return out;
}
