import { EventEmitter } from 'node:events';
import type { Logger } from '../logger.ts';
import type { Store } from '../store/store.ts';
import type { CrashRecord, SandboxRecord } from '../store/sandboxes.ts';
import type { User } from '../store/users.ts';
import type { Endpoint, ExecRequest, ExecResult, Runtime, SandboxSpec } from '../runtime/interface.ts';
import { ConflictError, ForbiddenError, InvalidInputError, NotFoundError, UpstreamUnavailableError } from '../errors.ts';
import { defaultOnExpiry, findTemplate, templateIDs, type TemplateOptions } from '../templates/catalog.ts';
import type { WorkspaceService } from '../workspaces/workspace-service.ts';
import { probe, waitForHealthy } from '../supervisor/health.ts';
import { Supervisor } from '../supervisor/supervisor.ts';
import { classifyCrash } from '../supervisor/crash-classifier.ts';
import { newSandboxID } from './sandbox-id.ts';
import type { MemoryAdmission } from './admission.ts';
import { checkSandboxSize, checkUserQuota, limitsInForce, type LimitsInForce, type SandboxCeilings } from './limits.ts';

export interface CreateSandboxInput {
  templateID: string;
  name?: string;
  memoryMB?: number;
  cpuCount?: number;
  /** Seconds until the sandbox expires: stopped with a persistent workspace, deleted with a throwaway one (see onExpiry). */
  timeout?: number;
  /** The persistent workspace to mount (created on first use); null: a throwaway one; absent: the template's default. */
  workspace?: string | null;
  metadata?: Record<string, string>;
  envVars?: Record<string, string>;
}

export interface SupervisionOptions {
  /** Waits before restart 1, 2, 3…; the last repeats. */
  backoffMs: number[];
  /** A process that stayed up this long starts the failure count afresh. */
  resetAfterMs: number;
  /** Failures in a row before the sandbox is left in `error`. */
  maxFailures: number;
  checkIntervalMs: number;
  healthIntervalMs: number;
  healthFailures: number;
}

export const DEFAULT_SUPERVISION: SupervisionOptions = {
  backoffMs: [30_000, 60_000, 120_000], resetAfterMs: 30_000, maxFailures: 5,
  checkIntervalMs: 1_000, healthIntervalMs: 5_000, healthFailures: 3,
};

export interface SandboxServiceOptions {
  store: Store;
  runtime: Runtime;
  log: Logger;
  defaults: { memoryMB: number; cpuCount: number };
  startTimeoutMs: number;
  /** How often expired and idle sandboxes are looked for. */
  reaperIntervalMs?: number;
  /** Stop a running sandbox after this long without activity at the proxy; 0: never. */
  idleStopMs?: number;
  supervision?: SupervisionOptions;
  workspaces: WorkspaceService;
  /** Files for one start of a sandbox (a fresh model-proxy token and opencode's config). */
  prepareRun?: (record: SandboxRecord) => Record<string, string>;
  /** Environment the gateway gives a sandbox's processes, its exec commands included. */
  systemEnv?: (record: SandboxRecord) => Record<string, string>;
  /** The gateway's own port on the loopback, for sandboxes that must reach it (opencode → model proxy). */
  gatewayPort?: () => number;
  /** What the configuration adds to templates' commands (port previews). */
  templateOptions?: (record: SandboxRecord) => TemplateOptions;
  /** What expiry does, per template ID, where the config says (otherwise: defaultOnExpiry). */
  onExpiry?: Record<string, 'stop' | 'delete' | undefined>;
  /**
   * Refuses a create or a user's start that would over-commit the host's memory.
   * Only those two ask it: a supervisor restart, or reconciliation at gateway
   * start, brings back a sandbox that was already admitted (it kept its
   * commitment while `restarting`), so a running user's IDE is never lost to it.
   */
  admission?: MemoryAdmission;
  /** users.defaultLimits (what a user's 'default' limit means) and the most one sandbox may have; absent: none. */
  limits?: { userDefaults: LimitsInForce; sandbox: SandboxCeilings };
}

/** How long a found port-preview endpoint is reused without looking again. */
const PORT_ENDPOINT_CACHE_MS = 2_000;

/** Lines of output kept with a crash. */
const CRASH_LOG_LINES = 50;

const REAPER_INTERVAL_MS = 5_000;
/** How often reconciliation is tried again while the runtime's engine is down. */
const RECONCILE_RETRY_MS = 5_000;

/**
 * A step in a sandbox's life, for people watching it (the portal's progress
 * view, `GET /api/sandboxes/:id/events`): created → preparing → starting →
 * waiting → running; restarting / error after a crash; stopping → stopped;
 * deleted.
 */
export interface ProgressEvent {
  sandboxID: string;
  phase: 'created' | 'preparing' | 'starting' | 'waiting' | 'running' | 'restarting' | 'error' | 'stopping' | 'stopped' | 'deleted';
  message: string;
  at: string;
  /** On `running`: seconds since the start began (metrics). */
  startSeconds?: number;
  /** On a crash's `restarting` or `error`: how it was classified (metrics). */
  classification?: string;
}

/** A failure's one-line reason: the log tail it may carry is shown on its own. */
export const withoutLog = (why: string) => why.split(/\.? Last log lines:/)[0]!;

/** A start cancelled by a stop or delete that came in while it was running. */
class StartCancelled extends Error {}

/** The sandbox lifecycle; the only caller of the runtime driver. */
export class SandboxService {
  private readonly opts: SandboxServiceOptions;
  /** In-flight lifecycle operations per sandbox, so start, stop and delete never overlap. */
  private readonly pending = new Map<string, Promise<unknown>>();
  /** Starts in progress, so a stop or delete can cut their health wait short. */
  private readonly starting = new Map<string, AbortController>();
  /** Service endpoints of running sandboxes: the proxy's hot path reads only this. */
  private readonly endpoints = new Map<string, Record<string, Endpoint>>();
  /** One supervisor per running sandbox. */
  private readonly supervisors = new Map<string, Supervisor>();
  /** Crashes in a row, per sandbox (reset by a long enough run). */
  private readonly failures = new Map<string, number>();
  /** Restarts waiting out their back-off. */
  private readonly restartTimers = new Map<string, NodeJS.Timeout>();
  private readonly supervision: SupervisionOptions;
  /** Last activity per sandbox seen at the proxy (ms): noted here on every request and frame, written by the reaper's tick. */
  private readonly activity = new Map<string, number>();
  /** What the store has of it; a write that failed leaves this behind, so the next tick tries again. */
  private readonly activityFlushed = new Map<string, number>();
  /** Exec commands in flight per sandbox. */
  private readonly execsRunning = new Map<string, number>();
  private reaper: NodeJS.Timeout | undefined;
  private reconcileRetry: NodeJS.Timeout | undefined;
  /** Every sandbox's progress, as it happens; one listener per open event stream. */
  readonly progress = new EventEmitter<{ progress: [ProgressEvent] }>();
  /** Owner and template per sandbox, as the proxy reads them (see factsFor). */
  private readonly facts = new Map<string, { ownerId: number; templateID: string }>();
  /** Recent port-preview endpoints, by "<sandboxID>:<port>" (see portEndpoint). */
  private readonly portEndpoints = new Map<string, { endpoint: Endpoint; at: number }>();

  constructor(opts: SandboxServiceOptions) {
    this.opts = opts;
    this.supervision = opts.supervision ?? DEFAULT_SUPERVISION;
    this.progress.setMaxListeners(0);
  }

  private report(sandboxID: string, phase: ProgressEvent['phase'], message: string, extra: Pick<ProgressEvent, 'startSeconds' | 'classification'> = {}): void {
    this.progress.emit('progress', { sandboxID, phase, message, at: new Date().toISOString(), ...extra });
  }

  create(owner: User, input: CreateSandboxInput): SandboxRecord {
    const template = findTemplate(input.templateID);
    if (!template) {
      throw new InvalidInputError(`templateID: unknown template "${input.templateID}"; available: ${templateIDs().join(', ')}`);
    }
    const memoryMB = input.memoryMB ?? this.opts.defaults.memoryMB;
    const cpuCount = input.cpuCount ?? this.opts.defaults.cpuCount;
    checkSandboxSize({ memoryMB, cpuCount }, this.opts.limits?.sandbox);
    this.checkQuota(owner, { memoryMB, cpuCount });
    this.opts.admission?.admit(this.opts.store.sandboxes.list(), memoryMB, undefined, owner);
    const workspaceName = input.workspace === undefined ? template.defaultWorkspace : input.workspace;
    const workspace = workspaceName === null ? null : this.opts.workspaces.ensure(owner, workspaceName);
    const sandboxID = newSandboxID();
    const now = new Date();
    const record = this.opts.store.sandboxes.insert({
      sandboxID,
      templateID: template.templateID,
      name: input.name ?? `${template.templateID}-${sandboxID.slice(0, 6)}`,
      ownerId: owner.id,
      memoryMB,
      cpuCount,
      createdAt: now.toISOString(),
      endAt: input.timeout ? new Date(now.getTime() + input.timeout * 1000).toISOString() : null,
      metadata: input.metadata ?? {},
      envVars: input.envVars ?? {},
      workspaceId: workspace?.id ?? null,
    });
    this.opts.log.info({ sandboxID, owner: owner.username, templateID: template.templateID, workspace: workspace?.name ?? null }, 'sandbox created');
    this.report(sandboxID, 'created', 'sandbox created');
    this.serialize(sandboxID, () => this.bringUp(sandboxID)).catch(() => { /* recorded as state=error */ });
    return record;
  }

  /** Refuses up front (502, saying what to do) when the runtime cannot start anything now: its engine is down, its image missing. */
  async assertRuntimeAvailable(): Promise<void> {
    const down = await this.opts.runtime.available?.();
    if (down) throw new UpstreamUnavailableError(down);
  }

  /** Resolves when every operation queued for the sandbox so far has finished. */
  async settled(sandboxID: string): Promise<SandboxRecord> {
    await this.pending.get(sandboxID)?.catch(() => {});
    return this.mustGet(sandboxID);
  }

  /** The record if `user` may see it: 404 when missing, 403 when someone else's. */
  getFor(user: User, sandboxID: string): SandboxRecord {
    const record = this.opts.store.sandboxes.get(sandboxID);
    if (!record) throw new NotFoundError(`sandbox ${sandboxID} not found`);
    if (record.ownerId !== user.id && user.role !== 'admin') throw new ForbiddenError('you do not have access to this sandbox');
    return record;
  }

  /**
   * getFor for the proxy's every request: who owns a sandbox and what it runs never
   * change, so after the first look they come from memory, not the store.
   */
  factsFor(user: User, sandboxID: string): { ownerId: number; templateID: string } {
    let facts = this.facts.get(sandboxID);
    if (!facts) {
      const record = this.getFor(user, sandboxID);
      facts = { ownerId: record.ownerId, templateID: record.templateID };
      if (this.facts.size > 100_000) this.facts.clear();
      this.facts.set(sandboxID, facts);
    } else if (facts.ownerId !== user.id && user.role !== 'admin') {
      throw new ForbiddenError('you do not have access to this sandbox');
    }
    return facts;
  }

  listFor(user: User): SandboxRecord[] {
    return this.opts.store.sandboxes.list(user.role === 'admin' ? undefined : user.id);
  }

  /** Starts a stopped (or failed, or silently dead) sandbox on its existing files. */
  async start(user: User, sandboxID: string): Promise<SandboxRecord> {
    const record = this.getFor(user, sandboxID);
    if (record.state === 'starting') return record;
    this.cancelRestart(sandboxID);
    this.failures.delete(sandboxID);
    if (record.state === 'running' && (await this.opts.runtime.inspect(this.spec(record))).running) return record;
    checkSandboxSize(record, this.opts.limits?.sandbox, record.sandboxID);
    const owner = this.opts.store.users.byId(record.ownerId);
    if (owner) this.checkQuota(owner, record, record.sandboxID);
    this.opts.admission?.admit(this.opts.store.sandboxes.list(), record.memoryMB, record.sandboxID, owner);
    // A timeout that already passed would stop it again at once: starting clears it.
    const endAt = record.endAt && record.endAt <= new Date().toISOString() ? null : record.endAt;
    this.opts.store.sandboxes.update(sandboxID, { state: 'starting', error: null, endAt });
    this.endpoints.delete(sandboxID);
    this.serialize(sandboxID, () => this.bringUp(sandboxID)).catch(() => {});
    return this.mustGet(sandboxID);
  }

  async stop(user: User, sandboxID: string): Promise<SandboxRecord> {
    this.getFor(user, sandboxID);
    this.cancelRestart(sandboxID);
    this.starting.get(sandboxID)?.abort();
    await this.serialize(sandboxID, () => this.bringDown(sandboxID, 'stop'));
    return this.mustGet(sandboxID);
  }

  /** Stops and starts the sandbox again on the same files (same id, same URL). */
  async restart(user: User, sandboxID: string): Promise<SandboxRecord> {
    await this.stop(user, sandboxID);
    return this.start(user, sandboxID);
  }

  async delete(user: User, sandboxID: string): Promise<void> {
    this.getFor(user, sandboxID);
    this.cancelRestart(sandboxID);
    this.starting.get(sandboxID)?.abort();
    await this.serialize(sandboxID, async () => {
      await this.bringDown(sandboxID, 'remove');
      this.opts.store.sandboxes.delete(sandboxID);
      this.facts.delete(sandboxID);
    });
    this.opts.log.info({ sandboxID, by: user.username }, 'sandbox deleted');
    this.report(sandboxID, 'deleted', 'sandbox deleted');
  }

  async exec(user: User, sandboxID: string, req: ExecRequest): Promise<ExecResult> {
    const record = this.getFor(user, sandboxID);
    if (record.state !== 'running') {
      throw new ConflictError(`sandbox ${sandboxID} is ${record.state}, not running: ${record.state === 'starting' ? 'wait for it (GET it, or create with ?wait=true)' : 'start it first'}`);
    }
    // A command running through exec is use: idle stop waits for it.
    this.execsRunning.set(sandboxID, (this.execsRunning.get(sandboxID) ?? 0) + 1);
    this.touch(sandboxID);
    try {
      const result = await this.opts.runtime.exec(this.spec(record), req);
      const now = this.opts.store.sandboxes.get(sandboxID);
      if (now?.state !== 'running' && !result.timedOut && result.exitCode !== 0) {
        result.stderr += `\n[codeyard: the sandbox was ${now ? now.state : 'deleted'} while this command ran]\n`;
      }
      return result;
    } finally {
      this.touch(sandboxID);
      const left = (this.execsRunning.get(sandboxID) ?? 1) - 1;
      if (left > 0) this.execsRunning.set(sandboxID, left); else this.execsRunning.delete(sandboxID);
    }
  }

  /** A user's limits in force: their own where set, else users.defaultLimits (admins: none). */
  limitsOf(user: User): LimitsInForce {
    return limitsInForce(user, this.opts.limits?.userDefaults);
  }

  /** 403 naming the limit and the current use when `owner` may not hold `wants` more (see limits.ts). */
  private checkQuota(owner: User, wants: { memoryMB: number; cpuCount: number }, restarting?: string): void {
    checkUserQuota(owner, this.limitsOf(owner), this.opts.store.sandboxes.list(owner.id), wants, restarting);
  }

  /** What the sandbox is doing now: process, uptime, restarts, last crash, health, limits, usage. */
  async status(user: User, sandboxID: string) {
    const record = this.getFor(user, sandboxID);
    const spec = this.spec(record);
    const { running } = await this.opts.runtime.inspect(spec);
    const live = running && record.state === 'running';
    const init = (record.driverState as { init?: { pid: number } }).init;
    return {
      state: record.state,
      pid: live ? init?.pid ?? null : null,
      uptimeSeconds: live && record.startedAt ? Math.round((Date.now() - Date.parse(record.startedAt)) / 1000) : null,
      restarts: record.restarts,
      lastCrash: record.lastCrash,
      health: this.supervisors.get(sandboxID)?.health ?? { ok: live, checkedAt: null },
      limits: { memoryMB: record.memoryMB, cpuCount: record.cpuCount, enforced: record.limits === 'enforced' },
      usage: live ? await this.opts.runtime.usage(spec) : { memoryBytes: null, cpuSeconds: null },
    };
  }

  /**
   * Freezes every running sandbox that mounts the workspace, so its files can be
   * copied as they were at one instant; supervision waits until `resume`.
   * `paused` is false when some sandbox could not be frozen (no freezer cgroup).
   */
  async pauseWorkspace(workspaceId: number): Promise<{ paused: boolean; resume: () => Promise<void> }> {
    const running = this.opts.store.sandboxes.list().filter((r) => r.workspace?.id === workspaceId && r.state === 'running');
    const frozen: SandboxRecord[] = [];
    let paused = true;
    for (const record of running) {
      this.supervisors.get(record.sandboxID)?.stop();
      this.supervisors.delete(record.sandboxID);
      if (await this.opts.runtime.pause(this.spec(record)).catch(() => false)) {
        frozen.push(record);
      } else {
        paused = false;
        this.supervise(record.sandboxID);
      }
    }
    return {
      paused,
      resume: async () => {
        for (const record of frozen) {
          await this.opts.runtime.resume(this.spec(record)).catch((err) => this.opts.log.error({ sandboxID: record.sandboxID, err: (err as Error).message }, 'resuming a paused sandbox failed'));
          if (this.opts.store.sandboxes.get(record.sandboxID)?.state === 'running') this.supervise(record.sandboxID);
        }
      },
    };
  }

  /** Crashes, newest first (the last 20). */
  crashes(user: User, sandboxID: string): CrashRecord[] {
    this.getFor(user, sandboxID);
    return this.opts.store.crashes.list(sandboxID);
  }

  /** What running sandboxes hold together, for the host overview. */
  async hostUsage(): Promise<{ running: number; total: number; byState: Record<string, number>; reservedMemoryMB: number; memoryBytes: number }> {
    const all = this.opts.store.sandboxes.list();
    const running = all.filter((r) => r.state === 'running');
    const byState: Record<string, number> = {};
    for (const r of all) byState[r.state] = (byState[r.state] ?? 0) + 1;
    let memoryBytes = 0;
    for (const r of running) {
      try { memoryBytes += (await this.opts.runtime.usage(this.spec(r))).memoryBytes ?? 0; } catch { /* a record this version cannot run */ }
    }
    return { running: running.length, total: all.length, byState, reservedMemoryMB: running.reduce((sum, r) => sum + r.memoryMB, 0), memoryBytes };
  }

  /** The main process's output from `offset` on. */
  readLog(user: User, sandboxID: string, offset: number) {
    this.getFor(user, sandboxID);
    return this.opts.runtime.readLog(sandboxID, offset);
  }

  /**
   * The proxy saw a request or a WebSocket frame for the sandbox. Cheap: called per frame,
   * and in memory only: the reaper's tick writes it (flushActivity), off every request's
   * path, so a store that cannot write (a full disk) never fails a proxied request.
   */
  touch(sandboxID: string, now = Date.now()): void {
    this.activity.set(sandboxID, now);
  }

  /**
   * A browser opened the IDE of a sandbox that is not running: start it (as its
   * owner would), so the "starting" page turns into the IDE by itself.
   */
  async startOnOpen(user: User, sandboxID: string): Promise<SandboxRecord> {
    const record = this.getFor(user, sandboxID);
    if (record.state !== 'stopped') return record;
    this.opts.log.info({ sandboxID, by: user.username }, 'IDE opened while stopped: starting it');
    return this.start(user, sandboxID);
  }

  /**
   * The IDE sandbox on one of `user`'s workspaces, as a subdomain opened it: the
   * running one, else one starting, else a stopped one started now, else a new one.
   * Synchronous up to create(), so two requests at once cannot make two.
   */
  async openWorkspace(user: User, workspace: string): Promise<SandboxRecord> {
    const rank = (r: SandboxRecord) => ['running', 'starting', 'restarting', 'stopped', 'error'].indexOf(r.state);
    const candidates = this.opts.store.sandboxes.list(user.id)
      .filter((r) => r.workspace?.name === workspace && 'ide' in (findTemplate(r.templateID)?.services ?? {}) && rank(r) >= 0)
      .sort((a, b) => rank(a) - rank(b) || b.createdAt.localeCompare(a.createdAt));
    const found = candidates[0];
    if (!found) {
      this.opts.log.info({ owner: user.username, workspace }, 'workspace opened by its address: creating its VS Code sandbox');
      return this.create(user, { templateID: 'vscode', workspace });
    }
    return found.state === 'stopped' ? this.startOnOpen(user, found.sandboxID) : found;
  }

  /**
   * Where to dial `port` inside a running sandbox (a port preview). Finding it reads
   * /proc or asks the engine, which an asset-heavy page should not pay per request:
   * an answer is kept for a moment while the sandbox runs.
   */
  async portEndpoint(sandboxID: string, port: number): Promise<Endpoint> {
    const key = `${sandboxID}:${port}`;
    const cached = this.portEndpoints.get(key);
    if (cached && Date.now() - cached.at < PORT_ENDPOINT_CACHE_MS && this.endpoints.has(sandboxID)) return cached.endpoint;
    const record = this.mustGet(sandboxID);
    if (record.state !== 'running') throw new UpstreamUnavailableError(`sandbox ${sandboxID} is ${record.state}: start it, then reload`);
    if (!this.opts.runtime.portEndpoint) throw new NotFoundError(`the ${this.opts.runtime.name} runtime does not offer port previews`);
    const endpoint = await this.opts.runtime.portEndpoint(this.spec(record), port);
    if (this.portEndpoints.size > 10_000) this.portEndpoints.clear();
    this.portEndpoints.set(key, { endpoint, at: Date.now() });
    return endpoint;
  }

  /** Sets the timeout to `seconds` from now (E2B's semantics); 0 clears it. */
  setTimeout(user: User, sandboxID: string, seconds: number): SandboxRecord {
    this.getFor(user, sandboxID);
    return this.opts.store.sandboxes.update(sandboxID, { endAt: seconds > 0 ? new Date(Date.now() + seconds * 1000).toISOString() : null })!;
  }

  /**
   * Writes activity noted since the last write (lastActivityAt). Best-effort: a failed write
   * (a full disk) is reported, and the activity stays in memory for the next try.
   */
  flushActivity(): void {
    for (const [sandboxID, at] of this.activity) {
      if ((this.activityFlushed.get(sandboxID) ?? 0) >= at) continue;
      if (this.opts.store.bestEffort('recording sandbox activity', () => this.opts.store.sandboxes.update(sandboxID, { lastActivityAt: new Date(at).toISOString() }))) {
        this.activityFlushed.set(sandboxID, at);
      }
    }
  }

  /** Where a running sandbox's service listens; the proxy's only question to the service. */
  endpoint(sandboxID: string, service: string): Endpoint | undefined {
    return this.endpoints.get(sandboxID)?.[service];
  }

  /**
   * The proxy could not reach a running sandbox: if its processes are gone, record
   * that (state error, with the log tail) instead of pretending it still runs.
   */
  async reportUnreachable(sandboxID: string): Promise<void> {
    const record = this.opts.store.sandboxes.get(sandboxID);
    if (!record || record.state !== 'running' || this.pending.has(sandboxID)) return;
    if ((await this.opts.runtime.inspect(this.spec(record))).running) return;
    this.opts.log.warn({ sandboxID }, 'sandbox main process found dead by the proxy');
    this.crashed(sandboxID, 'exited');
  }

  /**
   * At startup: sandboxes whose processes outlived a gateway restart are adopted;
   * those that died are marked stopped (their files are kept). A record that cannot
   * be reconciled is marked error; it never stops the gateway from starting.
   */
  async reconcile(): Promise<void> {
    const down = await this.opts.runtime.available?.();
    if (down) {
      // Records stay as they are: adopting or restarting waits until the engine is back.
      this.opts.log.error({ reason: down }, `the ${this.opts.runtime.name} runtime is not available; sandboxes will be reconciled when it is (retrying every ${RECONCILE_RETRY_MS / 1000} s)`);
      clearTimeout(this.reconcileRetry);
      this.reconcileRetry = setTimeout(() => this.reconcile().catch((err) => this.opts.store.reportFault('reconciling sandboxes', err)), RECONCILE_RETRY_MS);
      this.reconcileRetry.unref();
      return;
    }
    for (const record of this.opts.store.sandboxes.list()) {
      if (record.state === 'stopped') continue;
      try {
        const spec = this.spec(record);
        const { running, endpoints } = await this.opts.runtime.inspect(spec);
        if (running && record.state === 'running') {
          this.endpoints.set(record.sandboxID, endpoints);
          this.supervise(record.sandboxID);
          this.opts.log.info({ sandboxID: record.sandboxID }, 'adopted running sandbox');
          continue;
        }
        if (running) await this.opts.runtime.stop(spec);
        if (record.state === 'running' || record.state === 'starting' || record.state === 'restarting') {
          // It was meant to run: bring it back (same id, same files, same URL).
          this.opts.store.sandboxes.update(record.sandboxID, { state: 'restarting' });
          this.serialize(record.sandboxID, () => this.bringUp(record.sandboxID)).catch(() => {});
          this.opts.log.info({ sandboxID: record.sandboxID, was: record.state }, 'sandbox was not running at startup; restarting it');
        } else {
          this.opts.store.sandboxes.update(record.sandboxID, { state: 'stopped' });
          this.opts.log.info({ sandboxID: record.sandboxID, was: record.state }, 'sandbox was not running at startup; marked stopped');
        }
      } catch (err) {
        // Best-effort: the store may be what failed (a full disk), and the gateway must start all the same.
        this.opts.store.bestEffort('recording a failed reconcile', () => this.opts.store.sandboxes.update(record.sandboxID, { state: 'error', error: `reconcile at startup failed: ${(err as Error).message}` }));
        this.opts.log.error({ sandboxID: record.sandboxID, err: (err as Error).message }, 'reconcile failed; sandbox marked error');
      }
    }
    const known = new Set(this.opts.store.sandboxes.list().map((s) => s.sandboxID));
    const orphans = (await this.opts.runtime.list()).filter((id) => !known.has(id));
    for (const id of orphans) {
      // Processes of a sandbox nobody knows are stopped; its files are kept for the operator to look at.
      const killed = await this.opts.runtime.stopOrphan(id).catch(() => 0);
      this.opts.log.warn({ sandboxID: id, processesStopped: killed }, 'orphaned sandbox (no record): processes stopped, files left in place');
    }
  }

  /** Stops sandboxes whose timeout (endAt) has passed, every few seconds. */
  startReaper(): void {
    clearInterval(this.reaper);
    this.reaper = setInterval(() => {
      // Nothing a tick meets (a full disk under the store) may end the gateway: reported, tried again next tick.
      try {
        this.flushActivity();
        this.reapExpired();
      } catch (err) {
        this.opts.store.reportFault('the reaper (expired and idle sandboxes)', err);
      }
    }, this.opts.reaperIntervalMs ?? REAPER_INTERVAL_MS);
    this.reaper.unref();
  }

  /** Stops tracking; sandboxes keep running so a restarted gateway adopts them (unless `stopSandboxes`). */
  async close(opts: { stopSandboxes?: boolean } = {}): Promise<void> {
    clearInterval(this.reaper);
    clearTimeout(this.reconcileRetry);
    this.flushActivity();
    for (const s of this.supervisors.values()) s.stop();
    this.supervisors.clear();
    for (const id of [...this.restartTimers.keys()]) this.cancelRestart(id);
    for (const c of this.starting.values()) c.abort();
    await Promise.allSettled([...this.pending.values()]);
    if (opts.stopSandboxes) {
      for (const r of this.opts.store.sandboxes.list()) {
        if (r.state === 'stopped') continue;
        await this.serialize(r.sandboxID, () => this.bringDown(r.sandboxID, 'stop')).catch(() => {});
      }
    }
  }

  private async bringUp(sandboxID: string): Promise<void> {
    const record = this.opts.store.sandboxes.get(sandboxID);
    if (!record || (record.state !== 'starting' && record.state !== 'restarting')) return; // deleted or stopped while queued
    const spec = this.spec(record);
    const abort = new AbortController();
    this.starting.set(sandboxID, abort);
    const started = Date.now();
    try {
      this.report(sandboxID, 'preparing', record.workspace ? `preparing workspace ${record.workspace.name}` : 'preparing a throwaway workspace');
      if (!record.workspace) this.opts.workspaces.prepareThrowaway(sandboxID);
      await this.opts.runtime.create(spec);
      this.report(sandboxID, 'starting', `starting ${record.templateID === 'vscode' ? 'code-server' : 'the sandbox'}`);
      spec.runFiles = this.opts.prepareRun?.(record);
      const result = await this.opts.runtime.start(spec);
      this.opts.store.sandboxes.update(sandboxID, { driverState: result.driverState, limits: result.limits });
      if (result.limitsReason) this.opts.log.warn({ sandboxID, reason: result.limitsReason }, 'memoryMB/cpuCount not enforced');
      spec.driverState = result.driverState;
      const [service, { healthPath }] = Object.entries(spec.services)[0]!;
      this.report(sandboxID, 'waiting', 'waiting for it to answer');
      const outcome = await waitForHealthy({
        endpoint: result.endpoints[service]!,
        path: healthPath,
        timeoutMs: this.opts.startTimeoutMs,
        isAlive: async () => (await this.opts.runtime.inspect(spec)).running,
        signal: abort.signal,
      });
      if (outcome === 'aborted') throw new StartCancelled();
      if (outcome !== 'healthy') {
        const why = outcome === 'exited' ? 'its main process exited' : `it did not answer its health check within ${this.opts.startTimeoutMs / 1000}s`;
        throw new UpstreamUnavailableError(`sandbox ${sandboxID} failed to start: ${why}. Last log lines:\n${this.opts.runtime.logTail(sandboxID, 1500)}`);
      }
      this.endpoints.set(sandboxID, result.endpoints);
      this.opts.store.sandboxes.update(sandboxID, { state: 'running', error: null, startedAt: new Date().toISOString() });
      this.activity.set(sandboxID, Date.now());
      this.supervise(sandboxID);
      this.opts.log.info({ sandboxID, ms: Date.now() - started }, 'sandbox running');
      this.report(sandboxID, 'running', `ready in ${((Date.now() - started) / 1000).toFixed(1)} s`, { startSeconds: (Date.now() - started) / 1000 });
    } catch (err) {
      if (err instanceof StartCancelled) return; // the stop or delete queued behind us finishes the job
      const message = (err as Error).message;
      this.opts.log.error({ sandboxID, err: message }, 'sandbox failed to start');
      await this.afterCrash(sandboxID, message).catch((e) => this.opts.store.reportFault('recording a failed start', e));
      throw err;
    } finally {
      this.starting.delete(sandboxID);
    }
  }

  /** Watches a running sandbox; its death goes through the crash path (record, back off, restart or give up). */
  private supervise(sandboxID: string): void {
    this.supervisors.get(sandboxID)?.stop();
    const record = this.mustGet(sandboxID);
    const spec = this.spec(record);
    const [service, { healthPath }] = Object.entries(spec.services)[0]!;
    const supervisor = new Supervisor({
      isAlive: async () => (await this.opts.runtime.inspect(this.spec(this.mustGet(sandboxID)))).running,
      isHealthy: async () => {
        const endpoint = this.endpoints.get(sandboxID)?.[service];
        return endpoint ? probe(endpoint, healthPath) : false;
      },
      onDeath: (reason) => this.crashed(sandboxID, reason),
      checkIntervalMs: this.supervision.checkIntervalMs,
      healthIntervalMs: this.supervision.healthIntervalMs,
      healthFailures: this.supervision.healthFailures,
    });
    this.supervisors.set(sandboxID, supervisor);
    supervisor.start();
  }

  /** A running sandbox's main process died or hung. */
  private crashed(sandboxID: string, reason: 'exited' | 'unhealthy'): void {
    this.supervisors.get(sandboxID)?.stop();
    this.supervisors.delete(sandboxID);
    this.endpoints.delete(sandboxID);
    this.serialize(sandboxID, async () => {
      const record = this.opts.store.sandboxes.get(sandboxID);
      if (!record || record.state !== 'running') return; // stopped or deleted meanwhile
      await this.afterCrash(sandboxID, reason === 'unhealthy' ? `its health check failed ${this.supervision.healthFailures} times in a row` : 'its main process exited');
    }).catch((err) => this.opts.log.error({ sandboxID, err: (err as Error).message }, 'handling a crash failed'));
  }

  /**
   * Records a crash (exit, signal, uptime, output, classification), cleans up
   * what is left of the run, then restarts after a back-off, or gives up into
   * `error` after too many failures in a row.
   */
  private async afterCrash(sandboxID: string, why: string): Promise<void> {
    const record = this.mustGet(sandboxID);
    const spec = this.spec(record);
    const down = await this.opts.runtime.available?.().catch((err: Error) => err.message);
    if (down) {
      // The engine is away (a dockerd restart): not the sandbox's fault, and no use counting
      // failures against it. Try again once it is back.
      this.opts.store.sandboxes.update(sandboxID, { state: 'restarting', startedAt: null, error: `${down}; restarting once it is back` });
      this.report(sandboxID, 'restarting', `the ${this.opts.runtime.name} runtime is not available; restarting once it is back`);
      this.scheduleRestart(sandboxID, RECONCILE_RETRY_MS);
      return;
    }
    const exit = (await this.opts.runtime.lastExit(spec).catch(() => undefined)) ?? { exitCode: null, signal: null };
    const logTail = this.opts.runtime.logTail(sandboxID, 16_384).split('\n').slice(-CRASH_LOG_LINES - 1).join('\n');
    const classification = classifyCrash({ ...exit, oomKilled: await this.opts.runtime.oomKilled(spec).catch(() => false), logTail });
    const uptimeSeconds = record.startedAt && record.state === 'running' ? Math.round((Date.now() - Date.parse(record.startedAt)) / 1000) : null;
    if (uptimeSeconds !== null && uptimeSeconds * 1000 >= this.supervision.resetAfterMs) this.failures.delete(sandboxID);
    const failures = (this.failures.get(sandboxID) ?? 0) + 1;
    this.failures.set(sandboxID, failures);
    const lastCrash: CrashRecord = { at: new Date().toISOString(), ...exit, uptimeSeconds, classification, logTail };
    this.opts.store.crashes.add(sandboxID, lastCrash);
    await this.opts.runtime.stop(spec).catch(() => {});
    this.opts.log.warn({ sandboxID, classification, exitCode: exit.exitCode, signal: exit.signal, failures, why }, 'sandbox crashed');
    if (failures >= this.supervision.maxFailures) {
      this.failures.delete(sandboxID);
      this.opts.store.sandboxes.update(sandboxID, {
        state: 'error', lastCrash, startedAt: null,
        error: `${withoutLog(why)}; it failed ${failures} times in a row (${classification}), so it was left stopped: fix the cause, then POST /api/sandboxes/${sandboxID}/start. Last log lines:\n${logTail.slice(-1500)}`,
      });
      this.report(sandboxID, 'error', `${withoutLog(why)}; failed ${failures} times in a row (${classification}): left stopped`, { classification });
      return;
    }
    const delay = this.supervision.backoffMs[Math.min(failures - 1, this.supervision.backoffMs.length - 1)]!;
    this.opts.store.sandboxes.update(sandboxID, { state: 'restarting', lastCrash, restarts: record.restarts + 1, startedAt: null, error: `${withoutLog(why)} (${classification}); restarting in ${Math.round(delay / 1000)} s` });
    this.scheduleRestart(sandboxID, delay);
    this.report(sandboxID, 'restarting', `${withoutLog(why)} (${classification}); restarting in ${Math.round(delay / 1000)} s`, { classification });
  }

  private scheduleRestart(sandboxID: string, delayMs: number): void {
    this.cancelRestart(sandboxID);
    const timer = setTimeout(() => {
      this.restartTimers.delete(sandboxID);
      this.serialize(sandboxID, () => this.bringUp(sandboxID)).catch(() => {});
    }, delayMs);
    timer.unref();
    this.restartTimers.set(sandboxID, timer);
  }

  private cancelRestart(sandboxID: string): void {
    clearTimeout(this.restartTimers.get(sandboxID));
    this.restartTimers.delete(sandboxID);
  }

  private async bringDown(sandboxID: string, how: 'stop' | 'remove'): Promise<void> {
    const record = this.mustGet(sandboxID);
    this.supervisors.get(sandboxID)?.stop();
    this.supervisors.delete(sandboxID);
    this.failures.delete(sandboxID);
    this.endpoints.delete(sandboxID);
    this.activity.delete(sandboxID);
    this.activityFlushed.delete(sandboxID);
    this.opts.store.sandboxes.update(sandboxID, { state: 'stopping' });
    this.report(sandboxID, 'stopping', how === 'remove' ? 'deleting' : 'stopping');
    try {
      await this.opts.runtime[how](this.spec(record));
    } catch (err) {
      this.opts.store.sandboxes.update(sandboxID, { state: 'error', error: (err as Error).message });
      this.report(sandboxID, 'error', (err as Error).message);
      throw err;
    }
    // A throwaway workspace with a size limit lives on the workspaces' filesystem, not under the sandbox's directory.
    if (how === 'remove' && !record.workspace) this.opts.workspaces.removeThrowaway(sandboxID);
    this.opts.store.sandboxes.update(sandboxID, { state: 'stopped', startedAt: null });
    if (how === 'stop') this.report(sandboxID, 'stopped', 'stopped; its files are kept');
  }

  private reapExpired(): void {
    const nowMs = Date.now();
    const now = new Date(nowMs).toISOString();
    const idleStopMs = this.opts.idleStopMs ?? 0;
    for (const record of this.opts.store.sandboxes.list()) {
      if (this.pending.has(record.sandboxID)) continue;
      const last = this.activity.get(record.sandboxID) ?? Date.parse(record.lastActivityAt ?? record.startedAt ?? record.createdAt);
      const expired = record.endAt !== null && record.endAt <= now;
      const idle = idleStopMs > 0 && record.state === 'running' && nowMs - last >= idleStopMs && !this.execsRunning.has(record.sandboxID);
      if (!expired && !idle) continue;
      const action = expired ? this.onExpiry(record) : 'stop';
      // A stopped throwaway sandbox past its timeout is deleted all the same; a stopped persistent one has nothing left to stop.
      const active = record.state === 'running' || record.state === 'starting' || record.state === 'restarting';
      if (!active && !(action === 'delete' && record.state !== 'stopping')) continue;
      this.opts.log.info({ sandboxID: record.sandboxID, endAt: record.endAt, idleSeconds: Math.round((nowMs - last) / 1000) },
        !expired ? 'sandbox idle; stopping (files kept; opening it starts it again)'
          : action === 'delete' ? `sandbox timeout reached; deleting it${record.workspace ? ` (workspace ${record.workspace.name} is kept)` : ' and its throwaway workspace'}` : 'sandbox timeout reached; stopping (files kept)');
      this.starting.get(record.sandboxID)?.abort();
      this.cancelRestart(record.sandboxID);
      this.serialize(record.sandboxID, async () => {
        await this.bringDown(record.sandboxID, action === 'delete' ? 'remove' : 'stop');
        if (action === 'delete') {
          this.opts.store.sandboxes.delete(record.sandboxID);
          this.facts.delete(record.sandboxID);
          this.report(record.sandboxID, 'deleted', 'timeout reached: deleted');
        }
      }).catch((err) => {
        this.opts.log.error({ sandboxID: record.sandboxID, err: (err as Error).message }, `${action === 'delete' ? 'deleting' : 'stopping'} expired sandbox failed`);
      });
    }
  }

  private onExpiry(record: SandboxRecord): 'stop' | 'delete' {
    return this.opts.onExpiry?.[record.templateID] ?? defaultOnExpiry(record.workspace !== null);
  }

  /** Runs `op` after any operation already in flight for the sandbox. */
  private serialize<T>(sandboxID: string, op: () => Promise<T>): Promise<T> {
    const before = this.pending.get(sandboxID) ?? Promise.resolve();
    const next = before.catch(() => {}).then(op);
    this.pending.set(sandboxID, next);
    const cleanup = () => { if (this.pending.get(sandboxID) === next) this.pending.delete(sandboxID); };
    next.then(cleanup, cleanup);
    return next;
  }

  private mustGet(sandboxID: string): SandboxRecord {
    const record = this.opts.store.sandboxes.get(sandboxID);
    if (!record) throw new NotFoundError(`sandbox ${sandboxID} not found`);
    return record;
  }

  private spec(record: SandboxRecord): SandboxSpec {
    const template = findTemplate(record.templateID);
    if (!template) throw new ConflictError(`sandbox ${record.sandboxID} uses template "${record.templateID}", which this version no longer has`);
    const owner = this.opts.store.users.byId(record.ownerId);
    return {
      sandboxID: record.sandboxID,
      templateID: record.templateID,
      seq: record.seq,
      ownerId: record.ownerId,
      owner: owner?.username ?? String(record.ownerId),
      network: template.network,
      workspace: record.workspace && owner ? { owner: owner.username, name: record.workspace.name } : null,
      memoryMB: record.memoryMB,
      cpuCount: record.cpuCount,
      envVars: record.envVars,
      command: (layout) => template.command(layout, this.opts.templateOptions?.(record) ?? {}),
      services: template.services,
      driverState: record.driverState,
      systemEnv: this.opts.systemEnv?.(record),
      gatewayPort: template.network === 'outbound' ? this.opts.gatewayPort?.() : undefined,
    };
  }
}
