import { LINK_PATH, subdomainHost } from '../proxy/host-route.ts';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import { withoutLog, type ProgressEvent, type SandboxService } from '../sandboxes/sandbox-service.ts';
import type { SandboxRecord } from '../store/sandboxes.ts';
import type { Store } from '../store/store.ts';
import type { AuthService } from '../auth/auth-service.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { envVarsSchema, number, parseInput, text } from './validation.ts';
import { principalOf } from './principal.ts';
import { auditedBy } from './audited.ts';
import { cdpProxyPath, ideProxyPath } from '../proxy/routes.ts';
import { findTemplate, listTemplates, templateIDs } from '../templates/catalog.ts';

const MAX_TIMEOUT_S = 30 * 24 * 3600;
export const EXEC_DEFAULT_TIMEOUT_MS = 60_000;
export const EXEC_MAX_TIMEOUT_MS = 3_600_000;
export const EXEC_MAX_OUTPUT_BYTES = 1024 * 1024;

const CreateSandboxBody = z.strictObject({
  templateID: z.string({ error: (iss) => (iss.code !== 'invalid_type' ? undefined : iss.input === undefined ? `required; one of: ${templateIDs().join(', ')}` : 'expected a string') }).min(1).max(64),
  name: text().trim().min(1).max(64).optional(),
  memoryMB: number('a whole number of megabytes, e.g. 2048').int().min(256).max(256 * 1024).optional(),
  cpuCount: number('a number of CPUs, e.g. 1 or 0.5').positive().max(128).optional(),
  timeout: number('a whole number of seconds, e.g. 3600').int().min(1).max(MAX_TIMEOUT_S).optional(),
  metadata: z.record(text().max(256), text().max(4096)).optional(),
  envVars: envVarsSchema.optional(),
  workspace: z.union([text().min(1).max(64), z.null()], { error: 'expected a workspace name, or null for a throwaway workspace' }).optional(),
});

const LOG_FOLLOW_INTERVAL_MS = 500;
/** A comment line this often keeps proxies from closing a quiet event stream. */
const EVENTS_KEEPALIVE_MS = 15_000;

const TimeoutBody = z.strictObject({
  timeout: number('a whole number of seconds from now, e.g. 3600 (0 removes the deadline)').int().min(0).max(MAX_TIMEOUT_S),
});

const LogsQuery = z.strictObject({
  tail: z.coerce.number().int().min(0).max(10_000).default(100),
  follow: z.enum(['true', 'false']).optional(),
});

/** Lifecycle calls take no body; one with fields is a mistake worth saying so. */
const NoBody = z.strictObject({}).optional();

const WaitQuery = z.strictObject({ wait: z.enum(['true', 'false']).optional() });

const ExecBody = z.strictObject({
  cmd: z.union([text().min(1), z.array(text()).min(1)], {
    error: (iss) => (iss.input === undefined ? 'required: a command string (run by bash -c) or an argv array of strings' : 'expected a non-empty command string (run by bash -c) or an argv array of strings'),
  }),
  cwd: text().startsWith('/', 'must be an absolute path').optional(),
  envs: envVarsSchema.optional(),
  timeoutMs: number('a whole number of milliseconds, e.g. 60000').int().min(1).max(EXEC_MAX_TIMEOUT_MS).optional(),
});

export interface SandboxRouteDeps {
  sandboxes: SandboxService;
  store: Store;
  auth: AuthService;
  audit: AuditLog;
  /** The gateway's own base URL, for links it hands out. */
  baseUrl: () => string;
  /** routing.baseDomain: records then carry their subdomain URLs too. */
  baseDomain?: string;
}

export function sandboxRoutes(app: FastifyInstance, deps: SandboxRouteDeps): void {
  const { sandboxes, store, auth, audit } = deps;
  const view = (r: SandboxRecord) => sandboxView(r, store.users.byId(r.ownerId)?.username ?? '(deleted)', deps.baseUrl(), deps.baseDomain);

  const audited = auditedBy(audit);

  /** Open event streams: ended when the gateway shuts down, which would otherwise wait for every client to leave. */
  const streams = new Set<ServerResponse>();
  const openStream = (request: FastifyRequest, reply: FastifyReply): ServerResponse => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    streams.add(res);
    request.raw.on('close', () => streams.delete(res));
    return res;
  };
  app.addHook('preClose', async () => {
    for (const res of streams) res.end();
    streams.clear();
  });

  app.get('/api/templates', async () => listTemplates());

  app.post('/api/sandboxes', async (request, reply) => {
    const { user } = principalOf(request);
    const { wait } = parseInput(WaitQuery, request.query, 'query');
    const input = parseInput(CreateSandboxBody, request.body);
    let record = await audited(request, 'sandbox.create', null, async () => {
      await sandboxes.assertRuntimeAvailable();
      return sandboxes.create(user, input);
    },
      (r) => ({ templateID: r.templateID, memoryMB: r.memoryMB, cpuCount: r.cpuCount, workspace: r.workspace?.name ?? null }));
    if (wait === 'true') record = await sandboxes.settled(record.sandboxID);
    return reply.status(201).send(view(record));
  });

  app.get('/api/sandboxes', async (request) => {
    const { user } = principalOf(request);
    return sandboxes.listFor(user).map(view);
  });

  app.get<{ Params: { id: string } }>('/api/sandboxes/:id', async (request) => {
    const { user } = principalOf(request);
    return view(sandboxes.getFor(user, request.params.id));
  });

  app.delete<{ Params: { id: string } }>('/api/sandboxes/:id', async (request, reply) => {
    const { user } = principalOf(request);
    await audited(request, 'sandbox.delete', request.params.id, () => sandboxes.delete(user, request.params.id));
    auth.revokeSandbox(request.params.id);
    return reply.status(204).send();
  });

  app.post<{ Params: { id: string } }>('/api/sandboxes/:id/stop', async (request) => {
    const { user } = principalOf(request);
    parseInput(NoBody, request.body);
    return view(await sandboxes.stop(user, request.params.id));
  });

  app.post<{ Params: { id: string } }>('/api/sandboxes/:id/start', async (request) => {
    const { user } = principalOf(request);
    parseInput(NoBody, request.body);
    const { wait } = parseInput(WaitQuery, request.query, 'query');
    let record = await sandboxes.start(user, request.params.id);
    if (wait === 'true') record = await sandboxes.settled(record.sandboxID);
    return view(record);
  });

  app.post<{ Params: { id: string } }>('/api/sandboxes/:id/restart', async (request) => {
    const { user } = principalOf(request);
    parseInput(NoBody, request.body);
    const { wait } = parseInput(WaitQuery, request.query, 'query');
    let record = await audited(request, 'sandbox.restart', request.params.id, () => sandboxes.restart(user, request.params.id));
    if (wait === 'true') record = await sandboxes.settled(record.sandboxID);
    return view(record);
  });

  /** Extends (or shortens) the sandbox's life: it ends `timeout` seconds from now; 0 removes the deadline. */
  app.post<{ Params: { id: string } }>('/api/sandboxes/:id/timeout', async (request) => {
    const { user } = principalOf(request);
    const { timeout } = parseInput(TimeoutBody, request.body);
    return view(sandboxes.setTimeout(user, request.params.id, timeout));
  });

  app.get<{ Params: { id: string } }>('/api/sandboxes/:id/status', async (request) => {
    const { user } = principalOf(request);
    return sandboxes.status(user, request.params.id);
  });

  /** The main process's output: the last `tail` lines, then (follow=true) new lines as server-sent events. */
  app.get<{ Params: { id: string } }>('/api/sandboxes/:id/logs', async (request, reply) => {
    const { user } = principalOf(request);
    const { tail, follow } = parseInput(LogsQuery, request.query, 'query');
    const { text, offset } = sandboxes.readLog(user, request.params.id, 0);
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    const last = tail === 0 ? [] : lines.slice(-tail);
    if (follow !== 'true') return reply.type('text/plain; charset=utf-8').send(last.join('\n') + (last.length ? '\n' : ''));
    const res = openStream(request, reply);
    for (const line of last) res.write(`data: ${line}\n\n`);
    let position = offset;
    let partial = '';
    let lastWrite = Date.now();
    const timer = setInterval(() => {
      try {
        const next = sandboxes.readLog(user, request.params.id, position);
        position = next.offset;
        const chunk = partial + next.text;
        const parts = chunk.split('\n');
        partial = parts.pop() ?? '';
        for (const line of parts) res.write(`data: ${line}\n\n`);
        if (Date.now() - lastWrite >= EVENTS_KEEPALIVE_MS) res.write(': keep-alive\n\n');
        if (parts.length || Date.now() - lastWrite >= EVENTS_KEEPALIVE_MS) lastWrite = Date.now();
      } catch {
        clearInterval(timer);
        res.end();
      }
    }, LOG_FOLLOW_INTERVAL_MS);
    request.raw.on('close', () => clearInterval(timer));
  });

  /**
   * The sandbox's progress as server-sent events: first its state now, then each
   * step (`phase`, `message`, and the record as it is after the step) until the
   * client goes away. The portal's "starting…" view is built on this.
   */
  app.get<{ Params: { id: string } }>('/api/sandboxes/:id/events', async (request, reply) => {
    const { user } = principalOf(request);
    const id = request.params.id;
    const record = sandboxes.getFor(user, id);
    const res = openStream(request, reply);
    const send = (phase: string, message: string, at: string) => {
      const current = store.sandboxes.get(id);
      res.write(`event: progress\ndata: ${JSON.stringify({ phase, message, at, sandbox: current ? view(current) : null, lastCrash: current?.lastCrash ?? null })}\n\n`);
    };
    send(record.state, record.error ? withoutLog(record.error) : record.state, new Date().toISOString());
    const listener = (e: ProgressEvent) => {
      if (e.sandboxID !== id) return;
      send(e.phase, e.message, e.at);
      if (e.phase === 'deleted') res.end();
    };
    sandboxes.progress.on('progress', listener);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), EVENTS_KEEPALIVE_MS);
    request.raw.on('close', () => {
      clearInterval(keepAlive);
      sandboxes.progress.off('progress', listener);
    });
  });

  /** Its crashes, newest first. */
  app.get<{ Params: { id: string } }>('/api/sandboxes/:id/crashes', async (request) => {
    const { user } = principalOf(request);
    return sandboxes.crashes(user, request.params.id);
  });

  app.post<{ Params: { id: string } }>('/api/sandboxes/:id/exec', async (request) => {
    const { user } = principalOf(request);
    const body = parseInput(ExecBody, request.body);
    // The command is recorded as given (truncated): operators should know it may hold what users typed.
    const cmd = typeof body.cmd === 'string' ? body.cmd.slice(0, 500) : body.cmd.slice(0, 20).map((a) => a.slice(0, 200));
    return audited(request, 'sandbox.exec', request.params.id, () => sandboxes.exec(user, request.params.id, {
      cmd: body.cmd, cwd: body.cwd, envs: body.envs,
      timeoutMs: body.timeoutMs ?? EXEC_DEFAULT_TIMEOUT_MS,
      maxOutputBytes: EXEC_MAX_OUTPUT_BYTES,
    }), (r) => ({ cmd, exitCode: r.exitCode, timedOut: r.timedOut }));
  });

  /** A short-lived link that opens this sandbox's IDE in a browser, once, without a login. */
  app.post<{ Params: { id: string } }>('/api/sandboxes/:id/ide-token', async (request) => {
    const { user } = principalOf(request);
    let owner = '';
    return audited(request, 'token.issue', request.params.id, async () => {
      const record = sandboxes.getFor(user, request.params.id);
      const ownerUser = store.users.byId(record.ownerId)!;
      owner = ownerUser.username;
      const urls = { ...sandboxUrls(record, deps.baseUrl()), ...subdomainUrls(record, owner, deps.baseUrl(), deps.baseDomain) };
      // A browser sandbox's link is a bearer URL for CDP clients: short-lived and bound to its first client.
      const { token, expiresAt } = await auth.issueIdeToken(ownerUser, record.sandboxID, !urls.ide);
      // With a base domain the link opens the IDE on its own host; a browser has no IDE: its link is the CDP WebSocket.
      const url = !urls.ide ? `${urls.cdpWebSocket}?token=${token}`
        : urls.ide.startsWith('/') ? `${deps.baseUrl()}${urls.ide}?token=${token}` : `${urls.ide.replace(/\/$/, '')}${LINK_PATH}?token=${token}`;
      return { token, expiresAt: expiresAt.toISOString(), url };
    }, (r) => ({ for: owner, expiresAt: r.expiresAt }));
  });
}

/** The API's view of a sandbox: E2B's field names; no env values, no driver internals. */
export function sandboxView(r: SandboxRecord, owner: string, baseUrl: string, baseDomain?: string) {
  return {
    sandboxID: r.sandboxID,
    templateID: r.templateID,
    name: r.name,
    owner,
    state: r.state,
    memoryMB: r.memoryMB,
    cpuCount: r.cpuCount,
    createdAt: r.createdAt,
    endAt: r.endAt,
    lastActivityAt: r.lastActivityAt,
    workspace: r.workspace?.name ?? null,
    restarts: r.restarts,
    metadata: r.metadata,
    envVarNames: Object.keys(r.envVars),
    limits: r.limits,
    ...(r.error ? { error: r.error } : {}),
    urls: { ...sandboxUrls(r, baseUrl), ...subdomainUrls(r, owner, baseUrl, baseDomain) },
  };
}

/**
 * Where to reach the sandbox, by what its template serves: `ide` (a path on
 * the gateway, for browsers), or `cdp` and `cdpWebSocket` (absolute: what a
 * CDP client is given, e.g. Playwright's connectOverCDP).
 */
/**
 * With subdomain routing: `workspace`, the IDE at the root of its own origin
 * (<workspace>--<user>.<domain>), and `preview`, where a port is served, with
 * {port} to fill in.
 */
function subdomainUrls(r: SandboxRecord, owner: string, baseUrl: string, baseDomain: string | undefined): Record<string, string> {
  if (!baseDomain) return {};
  const u = new URL(baseUrl);
  const origin = (host: string) => `${u.protocol}//${host}${u.port ? `:${u.port}` : ''}/`;
  const urls: Record<string, string> = {};
  const services = findTemplate(r.templateID)?.services ?? {};
  // A name a DNS label cannot carry ("." or "_") has no subdomain: its IDE is reached by path.
  if ('ide' in services && r.workspace && /^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$/.test(r.workspace.name.toLowerCase())) urls.workspace = origin(subdomainHost(baseDomain, { user: owner, workspace: r.workspace.name }));
  if ('ide' in services) urls.preview = origin(`{port}-${r.sandboxID}.${baseDomain}`);
  // The sandbox's own IDE host: what the portal frames and links open (never the portal's origin).
  if ('ide' in services) urls.ide = origin(subdomainHost(baseDomain, { sandboxID: r.sandboxID }));
  return urls;
}

function sandboxUrls(r: SandboxRecord, baseUrl: string): Record<string, string> {
  const services = findTemplate(r.templateID)?.services ?? {};
  const urls: Record<string, string> = {};
  if ('ide' in services) urls.ide = ideProxyPath(r.sandboxID);
  if ('cdp' in services) {
    const base = new URL(cdpProxyPath(r.sandboxID), baseUrl);
    urls.cdp = base.href;
    urls.cdpWebSocket = `${base.protocol === 'https:' ? 'wss' : 'ws'}://${base.host}${base.pathname}devtools/browser`;
  }
  return urls;
}
